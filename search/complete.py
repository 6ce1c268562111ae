"""Editor completions: a short, bounded sampling search at one point of a proof.

The `prover?` and `prover_step?` tactics (lean_workspace/ProverTactic) send the file as it stands
up to the tactic: the header (everything before the declaration), the declaration so far, and the
goals Lean printed there. This module turns that into DeepSeek-Prover-V1.5's prompt layout (the
declaration continues where the tactic stands, with the RMaxTS `/- tactic state: -/` comment once
the proof has begun), samples `num_samples` continuations in one batched call, cuts each one to
what belongs at the tactic's place, and checks the distinct candidates on the Lean pool.

Two kinds:

- `proof`: the rest of the proof from the tactic on. A completion is cut at the end of the block
  it starts (the first line indented less than its first line), so text the model writes for
  enclosing blocks is not included.
- `step`: one tactic, starting with the user's `tactic_prefix`. A completion is cut at the end
  of its first tactic (its first line plus deeper-indented continuation lines).

The service's own check is advisory: it runs on the service's Mathlib, in the context the editor
sent, and for `proof` it can only say `proved` when the goal is the declaration's last one. The
editor re-checks every candidate in the user's environment, which is the check that counts.
Cutting heuristics only decide which texts are tried; whether one works is always Lean's call.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from prover.datasets import Problem
from prover.lean.checker import CheckRequest
from prover.lean.source import StatementError, mask_comments_and_strings, parse_statement
from prover.lean.verdict import CheckResult, Verdict
from prover.model.base import Generator, SamplingParams
from prover.prompts import PromptMode, build_prompt, extract_proof, resume_prompt
from search.attempt import Verifier

Kind = Literal["proof", "step"]
KINDS: tuple[Kind, ...] = ("proof", "step")

PROOF_MAX_TOKENS = 1024
STEP_MAX_TOKENS = 256
# The editor package is not needed to check a proof and is usually not installed where the
# service runs, so its import is dropped from headers before anything is checked.
_EDITOR_IMPORT = re.compile(r"^import\s+ProverTactic(\.\S+)?[ \t]*\n?", re.MULTILINE)
_SORRY = re.compile(r"(?<![\w'.])(?:sorry|admit)(?![\w'])")
_DECL = re.compile(r"(?:^|(?<=\s))(theorem|lemma|example)(?=[\s({\[⦃])", re.MULTILINE)
EXAMPLE_NAME = "_prover_complete_example"


@dataclass(frozen=True)
class CompletionRequest:
    header: str  # the file before the declaration: imports, opens, earlier declarations
    declaration: str  # the declaration from its keyword up to the tactic
    goals: tuple[str, ...]  # the goals at the tactic, as Lean pretty-prints them
    kind: Kind = "proof"
    tactic_prefix: str = ""  # step: the start of the tactic the user already typed
    num_samples: int = 8
    timeout: float = 60.0  # seconds for the whole request, generation and checks
    verify: bool = True
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {self.num_samples}")
        if self.timeout <= 0:
            raise ValueError(f"timeout must be positive, got {self.timeout}")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CompletionRequest:
        """From the (already validated) JSON of `POST /v1/complete` / a complete job."""
        return cls(
            header=data.get("header") or "",
            declaration=data["declaration"],
            goals=tuple(data.get("goals") or ()),
            kind=data.get("kind") or "proof",
            tactic_prefix=data.get("tactic_prefix") or "",
            num_samples=int(data.get("num_samples") or 8),
            timeout=float(data.get("timeout") or 60.0),
            verify=bool(data.get("verify", True)),
            seed=data.get("seed"),
        )


@dataclass(frozen=True)
class Candidate:
    text: str  # relative to the tactic's column: later lines carry only their extra indent
    samples: int  # how many of the samples came out as this text
    verified: bool = False
    verdict: str | None = None  # of the service's check; None when not checked
    error: str | None = None  # the first Lean error of a failed check
    goals_after: str | None = None  # step: the goals the tactic leaves, as Lean prints them

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "verified": self.verified, "verdict": self.verdict,
                "samples": self.samples, "error": self.error, "goals_after": self.goals_after}


@dataclass(frozen=True)
class CompletionResult:
    candidates: tuple[Candidate, ...]
    samples: int
    time_s: float
    timed_out: bool = False  # the deadline cut generation or checking short
    notes: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {"candidates": [c.to_json() for c in self.candidates], "samples": self.samples,
                "time_s": round(self.time_s, 3), "timed_out": self.timed_out,
                "notes": list(self.notes)}


# ---------------------------------------------------------------------- text handling


@dataclass(frozen=True)
class Site:
    """Where the tactic stands: the declaration up to the start of the tactic's line (ending
    with a line break), and the column the candidate's first line goes to."""

    body_prefix: str
    indent: int


def locate(declaration: str) -> Site:
    """`... := by\\n  ` (the tactic alone on its line) keeps the line's indentation; a tactic
    after other text on its line (`:= by prover?`, `· prover?`) moves to a fresh line two
    columns right of that line's indentation, which Lean reads as the same block."""
    start = declaration.rfind("\n") + 1
    tail = declaration[start:]
    if not tail.strip():
        return Site(declaration[:start], len(tail.expandtabs(2)))
    line_indent = len(tail) - len(tail.lstrip(" "))
    return Site(declaration.rstrip() + "\n", line_indent + 2)


def _indent_of(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def cut_block(completion: str) -> str:
    """The block a completion starts: its lines until one is indented less than its first
    non-blank line, de-indented by that first line's indentation."""
    lines = extract_proof(completion).split("\n")
    base: int | None = None
    kept: list[str] = []
    for line in lines:
        if not line.strip():
            kept.append("")
            continue
        if base is None:
            base = _indent_of(line)
        elif _indent_of(line) < base:
            break
        kept.append(line[base:].rstrip())
    return "\n".join(kept).strip("\n")


def cut_step(tactic_prefix: str, completion: str, indent: int) -> str:
    """The first tactic of a completion that continues `tactic_prefix` on the tactic's line:
    that line, plus the lines indented deeper than `indent` that follow it (a `have ... := by`
    body, `calc` steps), de-indented by `indent`."""
    lines = extract_proof(completion).split("\n")
    first = (tactic_prefix + lines[0]).rstrip()
    kept = [first.lstrip(" ")]
    for line in lines[1:]:
        if not line.strip():
            break
        if _indent_of(line) <= indent:
            break
        kept.append(line[indent:].rstrip())
    return "\n".join(kept).strip()


def indent_block(text: str, indent: int) -> str:
    pad = " " * indent
    return "\n".join(pad + line if line.strip() else "" for line in text.split("\n"))


def clean_header(header: str) -> str:
    header = _EDITOR_IMPORT.sub("", header)
    if header and not header.endswith("\n"):
        header += "\n"
    return header


def proof_started(body_prefix: str) -> bool:
    """Whether the declaration already has proof text before the tactic (then the model is
    shown the goals, as RMaxTS does for every node but the root)."""
    masked = mask_comments_and_strings(body_prefix)
    assign = masked.find(":=")
    if assign < 0:
        return False
    after = masked[assign + 2:].lstrip()
    if after.startswith("by") and (len(after) == 2 or not after[2].isalnum()):
        after = after[2:]
    return bool(after.strip())


def checkable(body_prefix: str) -> tuple[str, str | None]:
    """The declaration text to check and the statement to hold it to (None when it is not a
    theorem). An `example` gets a name, since the verifier audits named theorems only."""
    masked = mask_comments_and_strings(body_prefix)
    m = _DECL.search(masked)
    if m is None:
        return body_prefix, None
    if m.group(1) == "example":
        body_prefix = (body_prefix[:m.start(1)] + "theorem " + EXAMPLE_NAME
                       + body_prefix[m.end(1):])
        masked = mask_comments_and_strings(body_prefix)
        m = _DECL.search(masked)
        assert m is not None
    assign = masked.find(":=", m.end())
    if assign < 0:
        return body_prefix, None
    try:
        parse_statement(body_prefix[m.start():assign])
    except StatementError:
        return body_prefix, None
    return body_prefix, body_prefix[m.start():assign].strip()


def build_completion_prompt(request: CompletionRequest, site: Site,
                            mode: PromptMode = "non-cot") -> str:
    problem = Problem(name="", split="", header=clean_header(request.header),
                      informal_prefix="", formal_statement=site.body_prefix)
    prompt = build_prompt(problem, mode)
    if proof_started(site.body_prefix) and request.goals:
        prompt = resume_prompt(prompt, "", "\n\n".join(request.goals), site.indent)
    if request.kind == "step":
        prompt += " " * site.indent + request.tactic_prefix
    return prompt


# ---------------------------------------------------------------------- the search


def _first_error(result: CheckResult) -> str | None:
    for m in result.messages:
        if m.is_error:
            return m.data
    return result.error or result.rejection


async def _check(verifier: Verifier, code: str, statement: str | None,
                 timeout: float) -> CheckResult:
    try:
        return await verifier.check(CheckRequest(code=code, statement=statement,
                                                 timeout=timeout))
    except StatementError:
        return await verifier.check(CheckRequest(code=code, statement=None, timeout=timeout))


async def _verify(request: CompletionRequest, site: Site, verifier: Verifier,
                  candidate: Candidate, timeout: float) -> Candidate:
    body, statement = checkable(site.body_prefix)
    context = clean_header(request.header) + body + indent_block(candidate.text, site.indent)
    if request.kind == "proof":
        result = await _check(verifier, context + "\n", statement, timeout)
        return Candidate(candidate.text, candidate.samples, result.proved,
                         result.verdict.value, None if result.proved else _first_error(result))
    probe = await _check(verifier, f"{context}\n{' ' * site.indent}sorry\n", statement, timeout)
    if not any(m.is_error for m in probe.messages) and probe.verdict is Verdict.INCOMPLETE:
        after = probe.sorries[-1].goal.strip() if probe.sorries else None
        return Candidate(candidate.text, candidate.samples, True, probe.verdict.value,
                         goals_after=after)
    closed = await _check(verifier, context + "\n", statement, timeout)
    if closed.proved:
        return Candidate(candidate.text, candidate.samples, True, closed.verdict.value,
                         goals_after="")
    return Candidate(candidate.text, candidate.samples, False, closed.verdict.value,
                     _first_error(probe) or _first_error(closed))


def _rank(c: Candidate) -> tuple[int, int]:
    if c.verified and c.verdict == Verdict.PROVED.value:
        return (0, -c.samples)
    return (1 if c.verified else 2, -c.samples)


async def complete(
    request: CompletionRequest,
    generator: Generator,
    verifier: Verifier,
    *,
    mode: PromptMode = "non-cot",
    params: SamplingParams | None = None,
    check_timeout: float | None = None,
) -> CompletionResult:
    """Sample, cut, deduplicate and (unless `verify` is off) check candidates, all within
    `request.timeout`; what is not done by then is returned unchecked, with `timed_out`."""
    started = time.monotonic()
    deadline = started + request.timeout
    site = locate(request.declaration)
    prompt = build_completion_prompt(request, site, mode)
    base = params or SamplingParams()
    sampling = SamplingParams(
        temperature=base.temperature, top_p=base.top_p, seed=request.seed, stop=base.stop,
        max_tokens=min(base.max_tokens,
                       PROOF_MAX_TOKENS if request.kind == "proof" else STEP_MAX_TOKENS))
    try:
        [row] = await asyncio.wait_for(
            generator.generate([prompt], request.num_samples, sampling), request.timeout)
    except TimeoutError:
        return CompletionResult((), 0, time.monotonic() - started, timed_out=True,
                                notes=("the model produced nothing before the timeout",))
    counts: dict[str, int] = {}
    for completion in row:
        text = (cut_block(completion.text) if request.kind == "proof"
                else cut_step(request.tactic_prefix, completion.text, site.indent))
        if not text.strip() or _SORRY.search(mask_comments_and_strings(text)):
            continue
        counts[text] = counts.get(text, 0) + 1
    candidates = [Candidate(text, n) for text, n in counts.items()]
    timed_out = False
    if request.verify and candidates:
        remaining = deadline - time.monotonic()
        per_check = remaining if check_timeout is None else min(remaining, check_timeout)
        checks = [asyncio.ensure_future(_verify(request, site, verifier, c, max(per_check, 1.0)))
                  for c in candidates]
        done, pending = await asyncio.wait(checks, timeout=max(remaining, 0.0))
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
            timed_out = True
        checked: list[Candidate] = []
        for c, task in zip(candidates, checks, strict=True):
            if task not in done:
                checked.append(c)  # out of time: returned unchecked
            elif (exc := task.exception()) is not None:
                checked.append(Candidate(c.text, c.samples, False, Verdict.SYSTEM_ERROR.value,
                                         f"{type(exc).__name__}: {exc}"))
            else:
                checked.append(task.result())
        candidates = checked
    candidates.sort(key=_rank)
    return CompletionResult(tuple(candidates), len(row), time.monotonic() - started, timed_out)
