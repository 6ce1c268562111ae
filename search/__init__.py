"""Proof search: whole-proof sampling and RMaxTS (DeepSeek-Prover-V1.5, arXiv 2408.08152)."""

from search.answer import search_with_answer
from search.attempt import SearchSetupError, Verifier
from search.checkpoint import CheckpointError, CheckpointStore, FileCheckpoint
from search.run import search_proof
from search.types import ALGORITHMS, SearchConfig, SearchProgress, SearchResult

__all__ = [
    "ALGORITHMS",
    "CheckpointError",
    "CheckpointStore",
    "FileCheckpoint",
    "SearchConfig",
    "SearchProgress",
    "SearchResult",
    "SearchSetupError",
    "Verifier",
    "search_proof",
    "search_with_answer",
]
