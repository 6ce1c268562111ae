"""The Lean 4 verifier: REPL protocol, sandboxed worker processes, the pool and verdicts."""

from prover.lean.checker import CheckRequest
from prover.lean.launch import LeanSetupError
from prover.lean.pool import LeanPool, PoolClosed
from prover.lean.source import StatementError
from prover.lean.verdict import CheckResult, Verdict

__all__ = [
    "CheckRequest",
    "CheckResult",
    "LeanPool",
    "LeanSetupError",
    "PoolClosed",
    "StatementError",
    "Verdict",
]
