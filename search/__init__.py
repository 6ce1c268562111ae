"""Proof search: whole-proof sampling and RMaxTS (built on prover.lean and the model backends)."""
