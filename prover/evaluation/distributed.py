"""`prover eval --queue redis://...`: the evaluation's (problem, run) pairs as jobs on the
service's Redis queue, run by any number of `prover worker` processes on any machines.

Exactly once: each pair is submitted with an idempotency key derived from the evaluation's
settings, so rerunning a killed `prover eval` finds the jobs it already queued (finished or not)
instead of queueing them again; the consumer group gives each job to one worker at a time, and a
worker that dies mid-search is replaced by another that resumes its RMaxTS tree from Redis.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import Any, cast

from prover.config import Settings
from prover.datasets import Problem
from prover.evaluation.plan import EvalSpec, Item
from prover.evaluation.runner import Solver, eval_id, row_of
from prover.model.base import SamplingParams
from prover.prompts import PromptMode

KIND = "eval"


class EvalJobFailed(RuntimeError):
    """An evaluation job was cancelled by someone; the evaluation stops (rerun to continue)."""


def job_request(spec: EvalSpec, item: Item, params: SamplingParams | None = None
                ) -> dict[str, Any]:
    """The job of one (problem, run); `params`, the command line's sampling settings (the
    profile's defaults where it gave none), travel with it so that a worker samples as the local
    evaluator would."""
    request: dict[str, Any] = {
        "problem": dataclasses.asdict(item.problem),
        "key": item.key,
        "run": item.run,
        "mode": item.mode,
        "seed": item.seed,
        "search": spec.search,
        "budget": spec.budget,
        "concurrency": spec.concurrency,
        "lean_env": spec.lean_env,
        "profile": spec.profile,
        "samples": spec.samples,
        "corrections": spec.corrections,
        "rounds": spec.rounds,
    }
    if params is not None:
        request["sampling"] = {"temperature": params.temperature, "top_p": params.top_p,
                               "max_tokens": params.max_tokens}
    return request


@contextlib.asynccontextmanager
async def queue_solver(spec: EvalSpec, settings: Settings, params: SamplingParams | None = None
                       ) -> AsyncIterator[Solver]:
    from server.jobs import JobStatus, JobStore

    store = JobStore.from_settings(settings)
    if not await store.ping():
        await store.close()
        raise ConnectionError(f"cannot reach Redis at {settings.redis_url} (PROVER_REDIS_URL / "
                              "--queue): start it, or run without --queue")
    prefix = eval_id(spec)

    async def solve(item: Item) -> dict[str, Any]:
        job, _ = await store.submit(KIND, job_request(spec, item, params), owner="eval",
                                    idempotency_key=f"{prefix}:{item.key}:{item.run}")
        outcome = await store.outcome(job.id)
        if outcome is None:
            raise EvalJobFailed(f"job {job.id} ({item.key}, run {item.run}) disappeared from "
                                "Redis (expired?); rerun to queue it again")
        if outcome.result is not None:
            return outcome.result
        if outcome.status is JobStatus.CANCELLED:
            raise EvalJobFailed(f"job {job.id} ({item.key}, run {item.run}) was cancelled")
        return row_of(item, None, outcome.error)

    try:
        yield solve
    finally:
        await store.close()


async def eval_job(ctx: Any) -> dict[str, Any]:
    """The worker's side: search one (problem, run) and return its results.jsonl row."""
    from prover.evaluation.runner import search_config
    from prover.profiles import get_profile
    from search import SearchProgress, SearchSetupError, search_with_answer

    request = ctx.job.request
    problem = Problem(**request["problem"])
    item = Item(request["key"], problem, int(request["run"]),
                cast(PromptMode, request["mode"]), int(request["seed"]))
    # Jobs queued by an older `prover eval` carry no profile or repair settings: the defaults.
    known = {k: request[k] for k in ("profile", "samples", "corrections", "rounds")
             if k in request}
    spec = EvalSpec(dataset="", search=request["search"], budget=int(request["budget"]),
                    concurrency=int(request["concurrency"]), **known)
    config = search_config(spec, item.seed)
    profile = get_profile(spec.profile)
    # Jobs queued by an older `prover eval` carry no sampling settings: the profile's.
    sampling = request.get("sampling")
    params = SamplingParams(**sampling) if sampling else profile.sampling()

    def progress(p: SearchProgress) -> None:
        ctx.report_progress(samples=p.samples, budget=p.budget, tree_size=p.tree_size)

    try:
        pool = ctx.runtime.environments.pool_for(request.get("lean_env"))
        result = await search_with_answer(problem, ctx.runtime.generator, pool, config,
                                          params=params, mode=item.mode,
                                          progress=progress, checkpoint_store=ctx.checkpoint,
                                          profile=profile)
    except SearchSetupError as exc:
        return row_of(item, None, str(exc))
    return row_of(item, result)


def register() -> None:
    from server.worker import register_handler

    register_handler(KIND, eval_job)
