"""Lean 4 theorem proving service: DeepSeek-Prover-V1.5's search, a verifier pool, an API."""

__version__ = "0.1.0"
