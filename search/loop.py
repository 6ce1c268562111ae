"""Keep K samples in flight and handle each result the moment it arrives.

DeepSeek's reference loop walks its job slots and sleeps 0.1 s between passes; here each sample
is an asyncio task and the loop wakes exactly when one finishes, so a fast verifier or an instant
backend is never held back by a timer (see benchmarks/search.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

R = TypeVar("R")


async def run_slots(
    issue: Callable[[int], Awaitable[R]],
    handle: Callable[[int, R], bool],
    *,
    first: int,
    budget: int,
    concurrency: int,
    ordered: bool = False,
) -> int:
    """Run sample indices `first, first+1, ...` until `budget` samples are handled or `handle`
    returns True (stop). Returns the number of samples handled.

    `issue(i)` is called synchronously when a slot frees, so the caller can make its choice
    (RMaxTS selection, virtual loss) against the state left by every handled result. With
    `ordered`, results are handled in index order whatever order they finish in, which makes a
    run reproducible; a slot then frees only when its result is handled.
    """
    tasks: dict[asyncio.Task[R], int] = {}
    finished: dict[int, R] = {}
    next_index, next_to_handle, handled = first, first, 0
    end = first + budget
    try:
        while True:
            while len(tasks) + len(finished) < concurrency and next_index < end:
                task = asyncio.ensure_future(issue(next_index))
                tasks[task] = next_index
                next_index += 1
            if not tasks:
                return handled
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in sorted(done, key=tasks.__getitem__):
                index = tasks.pop(task)
                finished[index] = task.result()  # a failed sample fails the search
            ready = sorted(finished) if not ordered else []
            if ordered:
                while next_to_handle in finished:
                    ready.append(next_to_handle)
                    next_to_handle += 1
            for index in ready:
                result = finished.pop(index)
                handled += 1
                if handle(index, result):
                    return handled
    finally:
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
