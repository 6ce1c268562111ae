"""`POST /v1/complete`: proof and next-tactic candidates for the editor tactics.

Design choice: the completion runs as a short job on the worker queue, and the request waits for
its result. The API process has a Lean pool but no model, and giving it one would mean loading
weights (or holding a GPU) in every API replica; the workers already hold the model, the Lean
pool and the batching that makes many small requests cheap. So the API stays model-free: it
validates, queues a job of kind `complete` (registered by `register()`, which `prover worker`
loads through `server.worker.HANDLER_MODULES`), follows the job's events until the result or
the request's `timeout`, and cancels the job if it gives up or the client goes away. The cost is
one Redis round trip each way and a queue wait when every worker slot is busy with long searches
(size `PROVER_WORKER_JOBS`, or run a worker for editors only). Completion jobs are ordinary
jobs: visible at `/v1/jobs/{id}` and expiring with PROVER_JOB_TTL_DAYS.

The worker's side (`complete_job`) runs `search.complete.complete` on the worker's own model and
Lean pool, with the time left of the request's budget after the job waited in the queue.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import TYPE_CHECKING, Any, Literal, cast

from fastapi import APIRouter, Depends, Request
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from prover.config import Settings
from prover.lean.environments import (
    LeanEnvironment,
    UnknownEnvironment,
    environment,
    environments_of,
)
from prover.verify_items import Text
from server import errors
from server.disconnect import ClientGone, unless_client_leaves
from server.errors import ApiError
from server.jobs import JobStatus, JobStore

if TYPE_CHECKING:
    from server.app import Service  # app.py includes this router: a runtime import is a cycle

KIND = "complete"
MAX_SAMPLES = 64
MAX_TIMEOUT_S = 600.0
API_GRACE_S = 2.0  # the API waits this much past `timeout` for the worker's answer
WORKER_MARGIN_S = 1.0  # the worker finishes this much before the budget, for the write back


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class CompleteRequest(_Strict):
    """What the `prover?` / `prover_step?` tactics send (pinned in
    lean_workspace/ProverTacticTest/fixtures/complete_request.json)."""

    header: Text = Field("", description="the file before the declaration: imports, `open`s, "
                         "earlier declarations (an `import ProverTactic` line is ignored)")
    declaration: Text = Field(min_length=1, description="the declaration from its keyword up "
                              "to the tactic, e.g. `theorem t (n : Nat) : n + 0 = n := by\\n  `")
    goals: list[Text] = Field(default_factory=list, max_length=64,
                              description="the goals at the tactic, as Lean pretty-prints them")
    tactic_prefix: Text = Field("", description="`step`: the start of the next tactic, which "
                                "every candidate extends")
    kind: Literal["proof", "step"] = Field("proof", description="`proof`: the rest of the "
                                           "proof from the tactic; `step`: one next tactic")
    num_samples: int = Field(8, ge=1, le=MAX_SAMPLES, description="completions to sample")
    timeout: float = Field(60.0, gt=0, le=MAX_TIMEOUT_S, description="seconds for the whole "
                           "request: waiting for a worker, sampling and checking")
    verify: bool = Field(True, description="check candidates on the service's Lean pool")
    lean_version: Text | None = Field(None, description="the client's Lean, e.g. `4.9.0-rc1`")
    mathlib_version: Text | None = Field(None, description="the client's Mathlib revision")
    seed: int | None = Field(None, ge=0, le=2**63 - 1, description="sampling seed")
    lean_env: Text | None = Field(None, description="the Lean environment to check in (a name "
                                  "of PROVER_LEAN_ENVS); absent: the one whose Lean is the "
                                  "client's `lean_version`, else the default")

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "header": "import Mathlib\n\n",
        "declaration": "theorem t (n : Nat) : n + 0 = n := by\n  ",
        "goals": ["n : ℕ\n⊢ n + 0 = n"], "kind": "proof", "num_samples": 8, "timeout": 60,
        "lean_version": "4.9.0-rc1",
    }]})


class CompleteCandidate(_Open):
    text: str = Field(description="tactic text for the tactic's place; lines after the first "
                      "carry only their indentation relative to the first")
    verified: bool = Field(description="the service's Lean accepted it in the context sent "
                           "(advisory: the editor re-checks in the user's environment)")
    verdict: str | None = Field(description="verdict of the service's check (`proved`; for "
                                "steps `incomplete` = goals remain); null when not checked")
    samples: int = Field(description="samples that came out as this text")
    error: str | None = Field(None, description="first Lean error of a failed check")
    goals_after: str | None = Field(None, description="`step`: goals left after the tactic")


class CompleteResponse(_Open):
    candidates: list[CompleteCandidate] = Field(description="distinct candidates, checked "
                                                "ones first, then by how often sampled")
    samples: int = Field(description="completions sampled")
    time_s: float
    timed_out: bool = Field(description="the timeout cut sampling or checking short")
    notes: list[str] = Field(description="warnings, e.g. a Lean/Mathlib version mismatch")
    job_id: str
    server: dict[str, str | None] = Field(description="the Lean environment that checked "
                                          "(`lean_env`), its `lean_version` and "
                                          "`mathlib_version`")


# ---------------------------------------------------------------------- versions


def completion_env(body: CompleteRequest, settings: Settings) -> LeanEnvironment:
    """The environment that checks a completion: the one named, else the one running the
    client's Lean (an editor on 4.9 is best served by the 4.9 environment), else the default.
    Raises UnknownEnvironment for a name the service does not have."""
    if body.lean_env is not None:
        return environment(settings, body.lean_env)
    theirs = (body.lean_version or "").removeprefix("v")
    same = [e for e in environments_of(settings) if theirs and e.lean_version == theirs]
    return same[0] if same else environment(settings, None)


def version_notes(body: CompleteRequest, server: dict[str, str | None]) -> list[str]:
    """Say so when the client's Lean or Mathlib is not the service's: candidates the service
    checked may then fail in the editor (and the other way round)."""
    notes = []
    theirs = (body.lean_version or "").removeprefix("v")
    if theirs and server["lean_version"] and theirs != server["lean_version"]:
        notes.append(f"your Lean is {theirs}, the service checks with {server['lean_version']}")
    mathlib = body.mathlib_version
    ours = server["mathlib_version"]
    if mathlib and ours and not (ours.startswith(mathlib) or mathlib.startswith(ours)):
        notes.append(f"your Mathlib is {mathlib}, the service checks with {ours}")
    return notes


# ---------------------------------------------------------------------- the route


def router() -> APIRouter:
    r = APIRouter(prefix="/v1", dependencies=[Depends(HTTPBearer(auto_error=False))])

    @r.post(
        "/complete", response_model=CompleteResponse, tags=["editor"],
        summary="Proof or next-tactic candidates at a point of a proof",
        responses={
            502: {"model": errors.ErrorResponse, "description": "`completion_failed`: the "
                  "worker could not complete the request (the message says why)"},
            504: {"model": errors.ErrorResponse, "description": "`timeout`: no result within "
                  "`timeout` (no worker free, or none running)"},
            **errors.responses(401, 413, 422, 429, 503),
        },
    )
    async def complete(body: CompleteRequest, request: Request) -> Any:
        """Sample `num_samples` completions at the tactic's place with the prover model,
        cut them to a proof of the goal (`proof`) or one next tactic (`step`), and check the
        distinct ones on Lean. Runs as a short job on a `prover worker` (the API holds no
        model); waits at most `timeout` seconds."""
        service = cast("Service", request.app.state.service)
        try:
            env = completion_env(body, service.settings)
        except UnknownEnvironment as exc:
            raise errors.validation_error(["lean_env"], str(exc)) from None
        store = service.jobs()
        principal = str(getattr(request.state, "principal", ""))
        owner = principal if principal.startswith("key:") else ""
        job, _ = await store.submit(KIND, {**body.model_dump(), "lean_env": env.name},
                                    owner=owner)
        service.metrics.jobs_submitted.labels("created").inc()
        try:
            result = await unless_client_leaves(request, asyncio.wait_for(
                _result_of(store, job.id), body.timeout + API_GRACE_S))
        except TimeoutError:
            await store.cancel(job.id)
            depth = await store.queue_depth()
            raise ApiError(504, "timeout", f"no completion within {body.timeout:g} s (job "
                           f"{job.id}; {depth} job(s) waiting for a worker): is a `prover "
                           "worker` running, with a free slot?") from None
        except ClientGone:
            await store.cancel(job.id)
            raise ApiError(499, "client_closed_request", "the client went away") from None
        versions: dict[str, str | None] = {"lean_env": env.name, "lean_version": env.lean_version,
                                           "mathlib_version": env.mathlib_version}
        notes = [*result.get("notes", []), *version_notes(body, versions)]
        return {**result, "notes": notes, "job_id": job.id, "server": versions}

    return r


async def _result_of(store: JobStore, job_id: str) -> dict[str, Any]:
    outcome = await store.outcome(job_id)
    if outcome is None:
        raise ApiError(503, "unavailable",
                       f"the completion job {job_id} disappeared from Redis",
                       headers=errors.retry_after(1))
    if outcome.result is not None:
        return outcome.result
    if outcome.status is JobStatus.CANCELLED:
        raise ApiError(503, "unavailable", f"the completion job {job_id} was cancelled",
                       headers=errors.retry_after(1))
    raise ApiError(502, "completion_failed", outcome.error or "the completion job failed")


# ---------------------------------------------------------------------- the worker's side


async def complete_job(ctx: Any) -> dict[str, Any]:
    """A `complete` job: sample and check candidates within what is left of the request's
    timeout once the job has waited in the queue (clocks of API and worker may differ a
    little; the API allows API_GRACE_S)."""
    from prover.prompts import PromptMode
    from search.complete import CompletionRequest, complete

    request = CompletionRequest.from_json(ctx.job.request)
    waited = max(0.0, time.time() - ctx.job.created_at)
    budget = max(0.5, request.timeout - waited - WORKER_MARGIN_S)
    request = dataclasses.replace(request, timeout=budget)
    pool = ctx.runtime.environments.pool_for(ctx.job.request.get("lean_env"))
    result = await complete(request, ctx.runtime.generator, pool,
                            mode=cast(PromptMode, ctx.settings.model_prompt),
                            check_timeout=ctx.settings.lean_timeout)
    ctx.report_progress(samples=result.samples, budget=request.num_samples, tree_size=0)
    return result.to_json()


def register() -> None:
    from server.worker import register_handler

    register_handler(KIND, complete_job)

