"""A statement's initial goal, computed by Lean in the environment that checks it, and cached.

The newer benchmarks ship `goal: ""` (no toolchain was at hand when they were built), and a goal
printed by one Lean is not the goal another prints (pretty-printing, notation and instance names
change between versions). So the goal is never taken on trust from a file: it is what the
checking environment reports for the statement with `sorry` as its proof, computed once per
(pool, header, statement) and shared by every caller that asks while it is computed: the
search's root state, every run of an evaluation, the web page.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import OrderedDict
from typing import Protocol

from prover.datasets import Problem
from prover.lean.checker import CheckRequest
from prover.lean.verdict import CheckResult, Verdict

CACHE_SIZE = 4096  # statements per pool
SORRY_BODY = "  sorry"


class _Checks(Protocol):
    async def check(self, request: CheckRequest) -> CheckResult: ...


class GoalError(RuntimeError):
    """The statement does not elaborate with `sorry` as its proof; says Lean's reason."""


_cache: weakref.WeakKeyDictionary[object, OrderedDict[str, asyncio.Future[CheckResult]]] = \
    weakref.WeakKeyDictionary()


def statement_code(problem: Problem) -> str:
    """The file whose `sorry` carries the goal (as `prompts.full_code` lays a proof out)."""
    return problem.header + problem.formal_statement + SORRY_BODY


async def sorry_check(verifier: _Checks, code: str, timeout: float | None = None
                      ) -> CheckResult:
    """`code` checked without a statement, cached per verifier. A timeout or system error is
    not cached: the next caller tries again."""
    table = _cache.setdefault(verifier, OrderedDict())
    pending = table.get(code)
    if pending is None or (pending.done() and (pending.cancelled() or pending.exception())):
        pending = asyncio.ensure_future(verifier.check(CheckRequest(code=code, timeout=timeout)))
        table[code] = pending
        while len(table) > CACHE_SIZE:
            table.popitem(last=False)
    table.move_to_end(code)
    result = await asyncio.shield(pending)
    if result.verdict in (Verdict.TIMEOUT, Verdict.SYSTEM_ERROR) and table.get(code) is pending:
        del table[code]
    return result


def goal_of(result: CheckResult) -> str | None:
    """The goal at the last `sorry`, or None."""
    return result.sorries[-1].goal.strip() if result.sorries else None


async def statement_goal(verifier: _Checks, problem: Problem,
                         timeout: float | None = None) -> str:
    """The goal of `problem`'s statement as the verifier's Lean prints it; GoalError when the
    statement does not elaborate."""
    result = await sorry_check(verifier, statement_code(problem), timeout)
    errors = [m.data for m in result.messages if m.is_error]
    goal = goal_of(result)
    if errors or goal is None:
        why = errors[0] if errors else result.error or result.rejection or "no goal reported"
        raise GoalError(f"the statement of {problem.name} does not elaborate with `sorry` as "
                        f"its proof ({result.verdict.value}): {why}")
    return goal
