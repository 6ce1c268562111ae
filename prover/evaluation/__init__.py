"""`prover eval`: pass rates on miniF2F, ProofNet or any dataset in their JSONL format."""

from prover.evaluation.plan import EVAL_MODES, EvalSpec, Item, plan
from prover.evaluation.report import compare, summarize
from prover.evaluation.runner import evaluate, local_solver
from prover.evaluation.store import EvalDirError

__all__ = ["EVAL_MODES", "EvalDirError", "EvalSpec", "Item", "compare", "evaluate",
           "local_solver", "plan", "summarize"]
