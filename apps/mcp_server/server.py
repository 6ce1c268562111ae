"""The MCP server: six tools and the dataset and job resources, on a `Backend`.

Every tool validates its arguments against a JSON schema the SDK derives from the signature
(descriptions included, so an agent knows what to pass), and every failure an agent can act on
comes back as a tool error (`isError: true`) whose text says what was wrong and what to do, never
as a protocol error or a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.types import ToolAnnotations
from pydantic import Field, ValidationError

from apps.mcp_server.backends import Backend, BackendError, Progress, ProveSpec
from apps.mcp_server.explain import explain
from apps.mcp_server.roots import AllowedRoots, PathRefused
from prover.config import Settings
from prover.datasets import (
    DatasetError,
    indexed_problems,
    known_datasets,
    search_problems,
)
from prover.datasets import find_problem as problem_by_name
from prover.fill import FillError, commands
from prover.lean import CheckRequest, LeanSetupError, PoolClosed, StatementError
from prover.lean.process import ReplStartError
from prover.model.base import BackendUnavailable, GenerationError
from prover.problem_input import problem_from_statement
from search import SearchSetupError
from server.checkpoints import LatestWriter
from server.complete import CompleteRequest

NAME = "lean-prover"
PROGRESS_INTERVAL_S = 0.2  # progress notifications at most this often (the latest one wins)
_DATASET = re.compile(r"[A-Za-z0-9_\-]{1,64}")
_JOB_ID = re.compile(r"[A-Za-z0-9_.:\-]{1,128}")
_EXPECTED = (BackendError, PathRefused, StatementError, DatasetError, FillError,
             BackendUnavailable, GenerationError, LeanSetupError, ReplStartError,
             SearchSetupError, PoolClosed)

INSTRUCTIONS = """\
Lean 4 theorem proving (DeepSeek-Prover-V1.5: a prover model, RMaxTS tree search, a sandboxed
Lean 4 verifier). Check a proof with `verify` (give `statement` to be sure the theorem proved is
the one asked for); search for one with `prove` (long: it reports progress, cancel it to stop
it); replace the `sorry`s of a file with `fill_sorries`; ask for the next tactics at a point with
`complete`; find benchmark problems (miniF2F, ProofNet) with `find_problem`; turn a failed
answer into what to change with `explain_verdict`. Lean code is Lean 4 with Mathlib, as pinned by
the server (ask `verify` with `lean_env` omitted)."""

Search = Literal["rmaxts", "sampling"]  # fill_sorries: whole proofs in V1.5's format
ProveSearch = Literal["rmaxts", "sampling", "repair", "bfs"]
T = TypeVar("T")


@contextlib.contextmanager
def _tool_errors() -> Iterator[None]:
    """Failures the agent can act on, as tool errors with their own message."""
    try:
        yield
    except _EXPECTED as exc:
        raise ToolError(str(exc)) from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                             for e in exc.errors())
        raise ToolError(f"invalid arguments: {problems}") from None


def _principal(ctx: Context) -> str:
    """Who is calling, as the service's Guard put it on this HTTP request (`key:…` for an API
    key, `addr:…` without keys); `anonymous` on stdio."""
    request = getattr(ctx.request_context, "request", None)
    scope = getattr(request, "scope", None) or {}
    return str((scope.get("state") or {}).get("principal", "") or "anonymous")


def _owner(ctx: Context) -> str:
    """Whose jobs these are: the API key's identity; empty (everyone's) without keys, as for
    the HTTP API's jobs."""
    principal = _principal(ctx)
    return principal if principal.startswith("key:") else ""


async def _reporting(ctx: Context, describe: Callable[[dict[str, Any]], str],
                     work: Callable[[Progress], Awaitable[T]]) -> T:
    """Run `work` with a synchronous progress callback whose values go out as MCP progress
    notifications: in the background, coalesced, never holding the search up."""

    async def send(p: dict[str, Any]) -> None:
        budget = p.get("budget")
        await ctx.report_progress(float(p.get("samples") or 0),
                                  float(budget) if budget else None, describe(p))

    writer: LatestWriter[dict[str, Any]] = LatestWriter(send, PROGRESS_INTERVAL_S,
                                                        what="MCP progress")
    try:
        result = await work(writer.push)
    except BaseException:
        writer.close()
        raise
    await writer.flush()
    return result


def _one_of(a: object, b: object, names: str) -> None:
    if (a is None) == (b is None):
        raise ToolError(f"give exactly one of {names}")


def _within_budget(settings: Settings, budget: int) -> None:
    if budget > settings.max_budget:
        raise ToolError(f"budget must be at most {settings.max_budget} "
                        "(the server's PROVER_MAX_BUDGET)")


def _search_note(p: dict[str, Any]) -> str:
    note = f"{p.get('samples', 0)}/{p.get('budget')} samples"
    if p.get("tree_size"):
        note += f", tree of {p['tree_size']} nodes"
    if p.get("round") is not None:
        note += f", correction round {p['round']}/{p.get('rounds')}"
    verdicts = p.get("verdicts") or {}
    if verdicts:
        note += ", " + ", ".join(f"{n} {v}" for v, n in sorted(verdicts.items()))
    return note


async def _dataset(dataset: str) -> tuple[tuple[str, Any], ...]:
    if not _DATASET.fullmatch(dataset):
        raise DatasetError("dataset must be a name such as `minif2f` or `proofnet`, not a path")
    return await asyncio.to_thread(indexed_problems, dataset)


def build_server(backend: Backend, roots: AllowedRoots) -> MCPServer:
    """The MCP server with its tools and resources; the transports are the caller's."""
    settings: Settings = backend.settings
    mcp: MCPServer = MCPServer(NAME, instructions=INSTRUCTIONS, version="0.1.0",
                               log_level="WARNING")
    read_only = ToolAnnotations(read_only_hint=True, open_world_hint=False)

    # ------------------------------------------------------------------ verify

    @mcp.tool(annotations=read_only)
    async def verify(
        ctx: Context,
        code: Annotated[str, Field(min_length=1, description=(
            "A complete Lean 4 file: header (`import Mathlib` ...) and the theorem with its "
            "proof."))],
        statement: Annotated[str | None, Field(description=(
            "The theorem that must be proved, e.g. `theorem t (a : ℕ) : a + 0 = a := by`. "
            "With it, a proof of a changed statement is rejected; without it, any theorem "
            "in `code` counts."))] = None,
        lean_env: Annotated[str | None, Field(description=(
            "The Lean environment (toolchain and Mathlib) to check in, by name; omitted: "
            "the server's default."))] = None,
        timeout: Annotated[float | None, Field(gt=0, description=(
            "Seconds for the check (at most the server's PROVER_LEAN_TIMEOUT)."))] = None,
    ) -> dict[str, Any]:
        """Check a Lean 4 proof with the server's sandboxed Lean. Answers `verdict` (`proved`,
        `incomplete` = uses sorry, `failed` = Lean errors, `rejected` = refused by the
        verifier's policy or not the statement asked for, `timeout`, `system_error`), Lean's
        `messages` (severity, line, column, text), the `sorries` with their goals, the
        `axioms` used and the `rejection` reason. `proved` is the only verdict that means the
        theorem is proved. Pass a non-proved answer to `explain_verdict` for what to change."""
        with _tool_errors():
            request = _check_request(settings, code, statement, timeout)
            result = await backend.check(request, lean_env, _principal(ctx))
        return {**result.to_json(), "proved": result.proved,
                "lean_env": lean_env or "default"}

    # ------------------------------------------------------------------ prove

    @mcp.tool(annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False))
    async def prove(
        ctx: Context,
        statement: Annotated[str | None, Field(description=(
            "The theorem to prove, up to `:= by`, e.g. `theorem t (a b : ℝ) (h : a < b) : "
            "a ≤ b := by`. Give this or `problem`."))] = None,
        problem: Annotated[str | None, Field(description=(
            "A benchmark problem's name in `dataset` (see `find_problem`), e.g. "
            "`mathd_algebra_478`."))] = None,
        dataset: Annotated[str, Field(description=(
            "Dataset of `problem`: `minif2f`, `proofnet` or another dataset name."))
        ] = "minif2f",
        header: Annotated[str | None, Field(description=(
            "Lean header for `statement` (imports, `open`s, helper lemmas); default "
            "`import Mathlib` and DeepSeek-Prover's opens."))] = None,
        search: Annotated[ProveSearch | None, Field(description=(
            "`rmaxts`: tree search that resumes from partial proofs (DeepSeek-Prover-V1.5); "
            "`sampling`: independent whole proofs; `repair`: Lean's errors go back to a chat "
            "prover for corrected proofs; `bfs`: best-first tactic search with a step prover. "
            "Default: the server's prover profile's (rmaxts for deepseek-v1.5, repair for "
            "goedel-v2 and kimina-prover, sampling for deepseek-v2)."))] = None,
        budget: Annotated[int, Field(ge=1, description=(
            "Samples to spend (each is one model completion checked by Lean, corrections "
            "included; expansions with `bfs`); more finds more proofs and takes longer."))
        ] = 64,
        seed: Annotated[int, Field(ge=0, description="Sampling seed.")] = 0,
        lean_env: Annotated[str | None, Field(description=(
            "The Lean environment (toolchain and Mathlib) to check proofs in, by name; "
            "omitted: the server's default."))] = None,
    ) -> dict[str, Any]:
        """Search for a proof with the prover model and Lean. Long-running: sends progress
        notifications (samples done of `budget`), and cancelling the call stops the search.
        Answers `proved`, the verified `proof` (a complete Lean file) when found, the last
        `verdict`, `samples` used, `tree_size`, `time_s` and the `job_id` (readable later as
        the resource `prover://jobs/{job_id}`)."""
        with _tool_errors():
            _one_of(statement, problem,
                    "`statement` (a theorem) and `problem` (a dataset problem's name)")
            _within_budget(settings, budget)
            if statement is not None:
                target = problem_from_statement(statement, header=header)
            else:
                found = [p for key, p in await _dataset(dataset) if key == problem]
                if not found:  # the lookup's own error names the close matches
                    await asyncio.to_thread(problem_by_name, dataset, str(problem))
                    raise ToolError(f"no problem {problem!r} in {dataset}")
                target = found[0]
                if header is not None:
                    target = dataclasses.replace(target, header=header)
            spec = ProveSpec(target, search, budget, seed=seed, lean_env=lean_env)
            return await _reporting(ctx, _search_note,
                                    lambda push: backend.prove(spec, _owner(ctx), push))

    # ------------------------------------------------------------------ fill_sorries

    @mcp.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False,
                                          idempotent_hint=True, open_world_hint=False))
    async def fill_sorries(
        ctx: Context,
        path: Annotated[str | None, Field(description=(
            "A .lean file to fill in place (a backup FILE.bak is kept). Only files under "
            "the directories the server was started with (--allow-root) may be given."))
        ] = None,
        text: Annotated[str | None, Field(description=(
            "The file's text instead of a path: the filled text comes back, nothing is "
            "written."))] = None,
        dry_run: Annotated[bool, Field(description=(
            "With `path`: answer the diff and the filled text, write nothing."))] = False,
        search: Annotated[Search, Field(description=(
            "Search for a `sorry` that is a whole proof."))] = "rmaxts",
        budget: Annotated[int, Field(ge=1, description="Samples per sorry.")] = 32,
        seed: Annotated[int, Field(ge=0, description="Sampling seed.")] = 0,
    ) -> dict[str, Any]:
        """Replace every `sorry` of a Lean 4 file that the prover can prove, each checked by
        Lean; unproved ones stay, followed by a comment naming the verdict. Long-running,
        with progress per sorry. Answers `proved` and `left` (line, theorem, detail for
        each sorry), a unified `diff`, `written` (the file was changed), `backup`, and the
        filled `text` when `text` or `dry_run` was given. A file Lean cannot read is
        reported and left untouched."""
        from prover.fill import read_lean

        with _tool_errors():
            _one_of(path, text, "`path` (a file under an allowed root) and `text` (the "
                    "file's contents)")
            _within_budget(settings, budget)
            file = roots.check(path) if path is not None else None
            original = read_lean(file) if file is not None else str(text)
            options = {"search": search, "budget": budget, "seed": seed}
            answer = await _reporting(
                ctx, lambda p: f"sorry {p.get('samples')}/{p.get('budget')}: {p.get('note')}",
                lambda push: backend.fill(original, options, _owner(ctx), push))
            return _fill_answer(file, original, answer, dry_run or file is None)

    # ------------------------------------------------------------------ complete

    @mcp.tool(annotations=read_only)
    async def complete(
        ctx: Context,
        line: Annotated[int, Field(ge=1, description=(
            "1-based line of the position where the next tactic goes (e.g. a `sorry`'s)."))],
        column: Annotated[int, Field(ge=0, description=(
            "0-based column of that position, as Lean reports it; a `sorry` starting there "
            "is replaced."))],
        code: Annotated[str | None, Field(description="The Lean file's text.")] = None,
        path: Annotated[str | None, Field(description=(
            "Or a .lean file under an allowed root (read only)."))] = None,
        goals: Annotated[list[str] | None, Field(description=(
            "The goals at the position as Lean prints them; omitted: the server asks Lean."))
        ] = None,
        kind: Annotated[Literal["proof", "step"], Field(description=(
            "`proof`: the rest of the proof from the position; `step`: one next tactic."))
        ] = "proof",
        tactic_prefix: Annotated[str, Field(description=(
            "`step`: the start of the tactic every candidate must extend."))] = "",
        num_samples: Annotated[int, Field(ge=1, le=64,
                                          description="Completions to sample.")] = 8,
        timeout: Annotated[float, Field(gt=0, le=600, description=(
            "Seconds for everything (sampling and checking)."))] = 60.0,
        lean_env: Annotated[str | None, Field(description=(
            "The Lean environment (toolchain and Mathlib) to read goals and check candidates "
            "in, by name; omitted: the server's default."))] = None,
    ) -> dict[str, Any]:
        """Proof or next-tactic candidates at a position of a Lean 4 proof, each checked by
        the server's Lean in the file's context. Answers `candidates` (`text`, `verified`:
        Lean accepted it there, `verdict`, `error`, `goals_after` for steps), checked ones
        first, plus the `goals` used."""
        from prover.fill import read_lean

        with _tool_errors():
            _one_of(code, path, "`code` (the file's text) and `path`")
            text = read_lean(roots.check(path)) if path is not None else str(code)
            header, declaration = _split_at(text, line, column)
            if goals is None:
                goals = await _goals_at(backend, header, declaration, _principal(ctx), lean_env)
            body = CompleteRequest.model_validate({
                "header": header, "declaration": declaration, "goals": goals, "kind": kind,
                "tactic_prefix": tactic_prefix, "num_samples": num_samples,
                "timeout": timeout, "lean_env": lean_env}).model_dump()
            result = await backend.complete(body, _owner(ctx))
        return {**result, "goals": goals}

    # ------------------------------------------------------------------ find_problem

    @mcp.tool(annotations=read_only)
    async def find_problem(
        query: Annotated[str, Field(max_length=200, description=(
            "Part of a problem's name (`algebra_4`, `imo_1959`) or of its statement's text "
            "(`Real.sqrt`); empty lists the first ones."))] = "",
        dataset: Annotated[str, Field(description=(
            "`minif2f` (244 test + 244 valid competition problems), `proofnet` (undergraduate "
            "textbook problems) or another dataset name of the server."))] = "minif2f",
        split: Annotated[str | None, Field(description="`test` or `valid`; omitted: both.")
                         ] = None,
        limit: Annotated[int, Field(ge=1, le=200, description="Most problems to list.")] = 20,
    ) -> dict[str, Any]:
        """Search a benchmark dataset by name or statement text: name matches first, then
        statement matches. Each problem has the `name` that `prove` takes as `problem`, its
        `split` and its `formal_statement` (also usable as `prove`'s `statement`)."""
        with _tool_errors():
            indexed = await _dataset(dataset)
            splits = sorted({p.split for _, p in indexed})
            if split is not None and split not in splits:  # else an empty list, unexplained
                raise ToolError(f"dataset {dataset} has no split {split!r}: give one of "
                                f"{', '.join(splits)}, or omit `split` to search them all")
            found = search_problems(indexed, query, split)
        return {"dataset": dataset, "total": len(found), "problems": [
            {"name": key, "split": p.split, "formal_statement": p.formal_statement}
            for key, p in found[:limit]]}

    # ------------------------------------------------------------------ explain_verdict

    @mcp.tool(annotations=read_only)
    async def explain_verdict(
        answer: Annotated[dict[str, Any], Field(description=(
            "The whole answer of `verify` (verdict, messages, sorries, rejection, error) or "
            "of `prove` (proved, verdict, samples)."))],
        code: Annotated[str | None, Field(description=(
            "The code that was checked, to quote the lines at fault."))] = None,
    ) -> dict[str, Any]:
        """Turn a verdict that is not `proved` into what to change: a `summary`, `changes`
        (concrete edits, each tied to a line where Lean gave one) and `locations` (line,
        error or goal, the code there)."""
        return explain(answer, code)

    # ------------------------------------------------------------------ resources

    @mcp.resource("prover://datasets", mime_type="application/json",
                  description="The benchmark datasets this server knows (for find_problem)")
    async def datasets() -> dict[str, Any]:
        return {"datasets": [{"name": d.name, "on_disk": d.on_disk}
                             for d in known_datasets()]}

    @mcp.resource("prover://datasets/{dataset}", mime_type="application/json",
                  description="Every problem of a dataset: name, split, formal_statement")
    async def dataset_problems(dataset: str) -> dict[str, Any]:
        try:
            indexed = await _dataset(dataset)
        except DatasetError as exc:
            raise ResourceError(str(exc)) from None
        return {"dataset": dataset, "total": len(indexed), "problems": [
            {"name": key, "split": p.split, "formal_statement": p.formal_statement}
            for key, p in indexed]}

    @mcp.resource("prover://jobs/{job_id}", mime_type="application/json",
                  description="A prove or fill job: status, progress, result")
    async def job(job_id: str) -> dict[str, Any]:
        found = await backend.job(job_id) if _JOB_ID.fullmatch(job_id) else None
        if found is None:
            raise ResourceError(f"no job {job_id!r} (unknown, or expired)")
        return found

    @mcp.resource("prover://jobs/{job_id}/tree", mime_type="application/json",
                  description="A prove job's RMaxTS or best-first search tree (nodes with "
                  "their tactic states, visit statistics, the proof path), as "
                  "GET /v1/jobs/{id}/tree")
    async def job_tree(job_id: str) -> dict[str, Any]:
        found = await backend.tree(job_id) if _JOB_ID.fullmatch(job_id) else None
        if found is None:
            raise ResourceError(f"no job {job_id!r} (unknown, or expired)")
        return found

    return mcp


# ---------------------------------------------------------------------- helpers


def _check_request(settings: Settings, code: str, statement: str | None,
                   timeout: float | None) -> CheckRequest:
    if timeout is not None and timeout > settings.lean_timeout:
        raise ToolError(f"timeout must be at most {settings.lean_timeout:g} seconds "
                        "(the server's PROVER_LEAN_TIMEOUT)")
    return CheckRequest(code=code, statement=statement, timeout=timeout)


def _split_at(text: str, line: int, column: int) -> tuple[str, str]:
    """(header, declaration up to the position) of a position in a file; a `sorry` at the
    position is dropped (the candidates replace it)."""
    lines = text.split("\n")
    if line > len(lines):
        raise ToolError(f"line {line} is past the end of the file ({len(lines)} lines)")
    if column > len(lines[line - 1]):
        raise ToolError(f"column {column} is past the end of line {line} "
                        f"({len(lines[line - 1])} characters)")
    offset = sum(len(s) + 1 for s in lines[:line - 1]) + column
    cmd = next((c for c in commands(text) if c.start <= offset < max(c.end, c.start + 1)
                or c.end == offset == len(text)), None)
    if cmd is None or cmd.keyword not in ("theorem", "lemma", "example"):
        raise ToolError(f"line {line}, column {column} is not inside a theorem, lemma or "
                        "example")
    declaration = text[cmd.keyword_start:offset]
    if ":=" not in declaration:
        raise ToolError(f"line {line}, column {column} is in the statement, not in the proof")
    return text[:cmd.start], declaration


async def _goals_at(backend: Backend, header: str, declaration: str, who: str,
                    lean_env: str | None = None) -> list[str]:
    """Lean's goals at the end of `declaration`: the declaration cut there and closed with
    `sorry` is checked, and the last sorry's goal is the one at the position."""
    stub = declaration if declaration.rstrip().endswith(("by", "·", "=>")) or \
        declaration.endswith(("\n", " ")) else declaration + " "
    result = await backend.check(CheckRequest(code=header + stub + "sorry\n"), lean_env, who)
    if not result.sorries:
        errors = [m.data.splitlines()[0] for m in result.messages if m.is_error][:2]
        raise ToolError("could not read the goals at that position (" + (
            "; ".join(errors) or f"verdict {result.verdict.value}") + "): pass `goals`")
    goal = result.sorries[-1].goal.strip()
    return [goal] if goal else []


def _fill_answer(file: Path | None, original: str, answer: dict[str, Any],
                 dry_run: bool) -> dict[str, Any]:
    from prover.fill import FillReport, Outcome, write_back

    outcomes = [Outcome(**o) for o in answer.get("outcomes", [])]
    report = FillReport(original=original, text=str(answer["text"]), outcomes=outcomes,
                        time_s=float(answer.get("time_s") or 0.0))
    name = str(file) if file is not None else "text"
    backup = None
    if file is not None and not dry_run:
        backup = write_back(file, report)
    out: dict[str, Any] = {
        "proved": [dataclasses.asdict(o) for o in outcomes if o.status == "proved"],
        "left": [dataclasses.asdict(o) for o in outcomes if o.status != "proved"],
        "summary": report.summary(name), "diff": report.diff(name),
        "written": backup is not None, "backup": str(backup) if backup else None,
        "path": str(file) if file is not None else None, "job_id": answer.get("job_id")}
    if dry_run:
        out["text"] = report.text
    return out
