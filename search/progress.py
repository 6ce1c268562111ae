"""The progress bar of `prover prove`: samples against the budget, tree size and best depth
(RMaxTS, best-first) or the correction round (repair)."""

from __future__ import annotations

import sys

from tqdm import tqdm

from search.types import SearchConfig, SearchProgress


class ProgressBar:
    def __init__(self, config: SearchConfig, name: str, enabled: bool = True) -> None:
        # On a terminal only (tqdm's `disable=None`), so logs and pipes stay clean.
        self.bar = tqdm(total=config.budget, desc=name, unit="sample", file=sys.stderr,
                        disable=None if enabled else True, dynamic_ncols=True)
        self.rmaxts = config.algorithm in ("rmaxts", "bfs")  # a tree: RMaxTS's or best-first's
        self.repair = config.algorithm == "repair"
        self.done = 0

    def update(self, progress: SearchProgress) -> None:
        self.bar.update(progress.samples - self.done)
        self.done = progress.samples
        if self.rmaxts:
            self.bar.set_postfix(tree=progress.tree_size, depth=progress.best_depth,
                                 refresh=False)
        elif self.repair and progress.round is not None:
            self.bar.set_postfix(round=f"{progress.round}/{progress.rounds}", refresh=False)

    def close(self) -> None:
        self.bar.close()
