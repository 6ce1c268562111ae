"""Settings, progress and results of a proof search: the boundary the CLI, service and
evaluator see."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from prover.lean.verdict import CheckResult

Algorithm = Literal["sampling", "rmaxts", "repair", "bfs"]
ALGORITHMS: tuple[Algorithm, ...] = ("sampling", "rmaxts", "repair", "bfs")
# best-first search's prompt formats (search/bfs.py)
TacticPrompt = Literal["bfs-prover", "reprover"]
TACTIC_PROMPTS: tuple[TacticPrompt, ...] = get_args(TacticPrompt)


@dataclass(frozen=True)
class SearchConfig:
    """Defaults are DeepSeek-Prover-V1.5's RMaxTS settings except the budget (theirs: 6400 per
    run x 16 runs), which is left to the caller's patience."""

    algorithm: Algorithm = "rmaxts"
    budget: int = 128  # samples, i.e. model generations, each checked by Lean
    concurrency: int = 32  # samples in flight at once
    seed: int = 0
    gamma: float = 0.99  # discount of rewards and visits
    tactic_state_comment: bool = True
    probe: bool = True  # one extra `sorry` check per failed attempt for the last tactic state
    # Apply finished samples in the order they were started. Makes a run reproducible with
    # deterministic backends whatever their timing, at the price of head-of-line waiting.
    ordered: bool = False
    checkpoint: Path | None = None  # RMaxTS: resume from / save to this JSON file
    checkpoint_every: int = 32  # samples between checkpoint writes
    max_prefix_chars: int = 6000  # longer prefixes are not kept as resume points
    # repair (compiler-feedback correction): Goedel-Prover-V2's defaults (scripts/pipeline.sh)
    samples: int = 8  # first-round samples
    corrections: int = 2  # new answers asked for each failed attempt, per round
    rounds: int = 2  # correction rounds after the first samples
    # Best-first tactic search (`bfs`): the budget counts expansions, each samples K tactics.
    tactics_per_expansion: int = 8
    prompt_format: str = "bfs-prover"  # one of TACTIC_PROMPTS

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"unknown search {self.algorithm!r}; use one of {ALGORITHMS}")
        if self.budget < 1:
            raise ValueError(f"budget must be >= 1, got {self.budget}")
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {self.concurrency}")
        if self.tactics_per_expansion < 1:
            raise ValueError(f"tactics_per_expansion must be >= 1, got "
                             f"{self.tactics_per_expansion}")
        if self.prompt_format not in TACTIC_PROMPTS:
            raise ValueError(f"unknown tactic prompt format {self.prompt_format!r}; use one of "
                             f"{TACTIC_PROMPTS}")
        if not 0 < self.gamma <= 1:
            raise ValueError(f"gamma must be in (0, 1], got {self.gamma}")
        if self.samples < 1:
            raise ValueError(f"samples must be >= 1, got {self.samples}")
        if self.corrections < 0:
            raise ValueError(f"corrections must be >= 0, got {self.corrections}")
        if self.rounds < 0:
            raise ValueError(f"rounds must be >= 0, got {self.rounds}")


@dataclass(frozen=True)
class SearchProgress:
    samples: int
    budget: int
    tree_size: int
    best_depth: int
    proved: bool = False
    # What this sample did to the tree, for live views; see `search.tree.Tree.delta`.
    tree_delta: dict[str, Any] | None = None
    verdict: str | None = None  # of the sample just handled
    round: int | None = None  # repair: the round of the sample just handled (0: first samples)
    rounds: int | None = None  # repair: the last round there can be


@dataclass(frozen=True)
class SearchResult:
    proved: bool
    proof: str | None  # the whole checked Lean file
    verdict: str  # of the proof, or of the last attempt when none proved
    samples: int
    tree_size: int
    time_s: float
    best_depth: int = 0
    check: CheckResult | None = field(default=None, compare=False)
    resumed_from: int = 0  # samples already done by the checkpoint this run continued
    round: int | None = None  # repair: the round whose answer was the proof (0: first samples)

    def to_json(self) -> dict[str, Any]:
        """The prove object of interface.md (plus `best_depth`, and `round` after repair)."""
        extra = {} if self.round is None else {"round": self.round}
        return {
            "proved": self.proved,
            "proof": self.proof,
            "verdict": self.verdict,
            "samples": self.samples,
            "tree_size": self.tree_size,
            "time_s": round(self.time_s, 3),
            "best_depth": self.best_depth,
            **extra,
        }


ProgressCallback = Callable[[SearchProgress], None]
