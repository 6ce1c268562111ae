"""The web page (`GET /`) and the small JSON endpoints it needs beyond the job API.

The page is plain HTML, CSS and JavaScript in `server/static/` (no build step, no library, no
CDN), served from the installed package so a wheel or an image carries it. It watches a job by
reading `/v1/jobs/{id}/events` with `fetch` rather than `EventSource`, because only `fetch`
can send the `Authorization` header: API keys never travel in URLs (which proxies log and
browsers keep in their history).

Endpoints added here, all under `/v1` and so behind the same key check and rate limit:

- `GET /v1/jobs?limit=N`: the caller's recent jobs, newest first (per API key when keys are
  configured; everyone's when they are not, as every job id is then readable by anyone);
- `GET /v1/jobs/{id}/tree`: where a late viewer starts: the job, its full progress (with the
  verdict counts) and the RMaxTS tree as of event `event_id`, to be followed by the events
  after that id;
- `GET /v1/datasets`, `GET /v1/problems?dataset=minif2f&q=...` and
  `GET /v1/problems/{dataset}/{name}`: pick a problem of any dataset the service knows by name
  instead of pasting it.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import FileResponse
from fastapi.security import HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from prover.datasets import (
    DatasetError,
    Problem,
    find_problem,
    indexed_problems,
    known_datasets,
    search_problems,
)
from server import errors
from server.errors import ApiError
from server.jobs import Job, JobStore

if TYPE_CHECKING:
    from server.app import Service

STATIC_DIR = Path(__file__).resolve().parent / "static"
_DATASET = re.compile(r"[A-Za-z0-9_\-]{1,64}")  # a name in the data directory, never a path
_JOB_ID = re.compile(r"[A-Za-z0-9_.:\-]{1,128}")

# The page loads only its own files and talks only to this origin; no inline script or style,
# so injected markup could not run. No referrer: job URLs carry ids.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class JobSummary(_Out):
    job_id: str
    status: str
    kind: str
    created_at: float = Field(description="submission time, seconds since the epoch")
    finished_at: float | None
    search: str | None = Field(description="`sampling`, `rmaxts`, `repair` or `bfs` (none: "
                               "the workers' profile's default)")
    budget: int | None
    formal_statement: str | None
    progress: dict[str, Any] = Field(description="`samples`, `budget`, `tree_size`, `round` "
                                     "and `rounds` (repair), and `verdicts` (counts per "
                                     "verdict) once reported")
    proved: bool | None = Field(description="set once the job succeeded")
    verdict: str | None
    error: str | None


class JobList(_Out):
    jobs: list[JobSummary]


class LiveView(_Out):
    job_id: str
    status: str
    created_at: float
    started_at: float | None
    search: str | None
    budget: int | None
    formal_statement: str | None
    progress: dict[str, Any] = Field(description="the latest progress, with `verdicts`")
    result: dict[str, Any] | None
    error: str | None
    event_id: str = Field(description="follow `/v1/jobs/{id}/events?after=<event_id>` to "
                          "continue from this state; `0` when there is no tree yet")
    tree: dict[str, Any] | None = Field(description="the RMaxTS tree in the delta format "
                                        "(`reset`, `new_nodes`, `stats`, `proof_path`, "
                                        "`expanded`); null for sampling or before the first "
                                        "sample")


class DatasetBrief(_Out):
    name: str = Field(description="what `dataset` takes in `/v1/problems`")
    on_disk: bool = Field(description="false: a published benchmark fetched on first use")
    lean_env: str | None = Field(description="the Lean environment its statements target "
                                 "(published benchmarks only)")


class DatasetList(_Out):
    datasets: list[DatasetBrief]


class ProblemBrief(_Out):
    name: str = Field(description="the address to look the problem up by: NAME, or NAME#K "
                      "where a name repeats")
    split: str
    formal_statement: str


class ProblemList(_Out):
    dataset: str
    total: int = Field(description="problems matching `q`, before `limit`")
    problems: list[ProblemBrief]


class ProblemOut(_Out):
    dataset: str
    name: str
    split: str
    header: str
    informal_prefix: str
    formal_statement: str
    goal: str | None


def _store(request: Request) -> JobStore:
    service: Service = request.app.state.service
    return service.jobs()


def _owner(request: Request) -> str:
    """Whose jobs a request sees: its API key's identity, or everyone's ("") without keys
    (the owner the prove route records)."""
    principal = str(getattr(request.state, "principal", ""))
    return principal if principal.startswith("key:") else ""


def _summary(job: Job) -> JobSummary:
    result = job.result or {}
    return JobSummary(
        job_id=job.id, status=job.status.value, kind=job.kind, created_at=job.created_at,
        finished_at=job.finished_at, search=job.request.get("search"),
        budget=job.request.get("budget"), formal_statement=job.request.get("formal_statement"),
        progress={**job.to_public()["progress"], **(job.progress or {})},
        proved=result.get("proved") if job.result is not None else None,
        verdict=result.get("verdict"), error=job.error,
    )


def _problems(dataset: str) -> tuple[tuple[str, Problem], ...]:
    if not _DATASET.fullmatch(dataset):
        raise ApiError(422, "invalid_request", "dataset must be a dataset name such as "
                       "`minif2f` or `proofnet`, not a path")
    try:
        return indexed_problems(dataset)
    except DatasetError as exc:
        raise ApiError(404, "not_found", str(exc)) from None


async def _computed_goal(request: Request, dataset: str, problem: Problem) -> str | None:
    """The goal Lean reports for the statement (cached per pool); None when it cannot."""
    from prover.dataset_catalog import source_of
    from prover.lean import PoolClosed
    from prover.lean.goals import GoalError, statement_goal

    service: Service = request.app.state.service
    source = source_of(dataset)
    envs = service.environments
    name = source.lean_env if source and envs and source.lean_env in envs.names else None
    try:
        return await statement_goal(service.lean(name), problem)
    except (GoalError, PoolClosed, ApiError):
        return None


def _v1_router() -> APIRouter:
    router = APIRouter(prefix="/v1", dependencies=[Depends(HTTPBearer(auto_error=False))])
    answers = errors.responses(401, 404, 422, 429, 503)

    @router.get("/jobs", response_model=JobList, tags=["jobs"], summary="Recent jobs",
                responses=errors.responses(401, 422, 429, 503))
    async def list_jobs(request: Request, limit: Annotated[int, Query(
            ge=1, le=200, description="how many, newest first")] = 20) -> JobList:
        """The newest jobs submitted with the caller's API key (with no keys configured: all
        jobs), newest first; at most the last 200 per key are remembered."""
        jobs = await _store(request).recent(_owner(request), limit)
        return JobList(jobs=[_summary(job) for job in jobs])

    @router.get("/jobs/{job_id}/tree", response_model=LiveView, tags=["jobs"],
                summary="A job's live-view state (for viewers that join late)",
                responses=answers)
    async def job_tree(job_id: str, request: Request) -> LiveView:
        """The job with its full progress and, for RMaxTS, its search tree as of event
        `event_id` (kept in Redis whatever the event stream's length). Follow
        `/v1/jobs/{id}/events` with `after=event_id` (or `Last-Event-ID: event_id`) to
        continue from exactly this state."""
        view = await _store(request).live_view(job_id) if _JOB_ID.fullmatch(job_id) else None
        if view is None:
            raise ApiError(404, "not_found", f"no job {job_id!r}")
        job, event_id, tree = view
        public = job.to_public()
        return LiveView(
            job_id=job.id, status=job.status.value, created_at=job.created_at,
            started_at=job.started_at, search=job.request.get("search"),
            budget=job.request.get("budget"), formal_statement=job.request.get(
                "formal_statement"), progress={**public["progress"], **(job.progress or {})},
            result=job.result, error=job.error, event_id=event_id, tree=tree)

    @router.get("/datasets", response_model=DatasetList, tags=["problems"],
                summary="The datasets problems can be picked from",
                responses=errors.responses(401, 429, 503))
    async def list_datasets() -> DatasetList:
        """The published benchmarks (prover/dataset_catalog.py), then the data directory's
        other NAME.jsonl files."""
        found = await asyncio.to_thread(known_datasets)
        return DatasetList(datasets=[DatasetBrief(name=d.name, on_disk=d.on_disk,
                                                  lean_env=d.lean_env) for d in found])

    @router.get("/problems", response_model=ProblemList, tags=["problems"],
                summary="Search a dataset's problems by name", responses=answers)
    async def list_problems(
        dataset: Annotated[str, Query(description="`minif2f`, `proofnet`, or another "
                                      "NAME.jsonl of the data directory")],
        q: Annotated[str, Query(max_length=200, description="case-insensitive part of the "
                                "name (or of the statement)")] = "",
        split: Annotated[str | None, Query(max_length=32, description="`test`, `valid`")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    ) -> ProblemList:
        """Problems whose name contains `q` (those whose statement does come after), in file
        order. `name` is what `/v1/problems/{dataset}/{name}` looks up."""
        indexed = await asyncio.to_thread(_problems, dataset)
        found = search_problems(indexed, q, split)
        return ProblemList(dataset=dataset, total=len(found), problems=[
            ProblemBrief(name=key, split=p.split, formal_statement=p.formal_statement)
            for key, p in found[:limit]])

    @router.get("/problems/{dataset}/{name}", response_model=ProblemOut, tags=["problems"],
                summary="One dataset problem", responses=answers)
    async def get_problem(dataset: str, name: str, request: Request) -> ProblemOut:
        """The problem as `POST /v1/prove` wants it (`formal_statement`, `header`,
        `informal_prefix`), plus its split and goal (computed by Lean, in the environment the
        dataset targets when this service has it, when the file has none)."""
        indexed = await asyncio.to_thread(_problems, dataset)
        problem = next((p for key, p in indexed if key == name), None)
        if problem is None:
            try:  # for its message: which NAME#K exist, or the names close to this one
                await asyncio.to_thread(find_problem, dataset, name)
                message = f"no problem {name!r} in {dataset}"
            except DatasetError as exc:
                message = str(exc)
            raise ApiError(404, "not_found", message)
        goal = problem.goal or await _computed_goal(request, dataset, problem)
        return ProblemOut(dataset=dataset, name=name, split=problem.split, header=problem.header,
                          informal_prefix=problem.informal_prefix,
                          formal_statement=problem.formal_statement, goal=goal)

    return router


def _page_router() -> APIRouter:
    router = APIRouter(tags=["web"])

    @router.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html",
                            headers=PAGE_HEADERS)

    return router


def install_web(app: FastAPI) -> None:
    """Add the page, its static files and its endpoints to the app."""
    app.include_router(_v1_router())
    app.include_router(_page_router())
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
