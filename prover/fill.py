"""`prover fill FILE.lean`: replace every `sorry` the prover can prove, in any editor.

The file is first checked as it is, so a file Lean cannot read is refused before anything is
searched (and never touched). Then, front to back, each `sorry` of a `theorem`/`lemma`:

- is the whole proof (`:= sorry`, `:= by sorry`, `:= by` + `sorry` on the next line): the
  theorem is searched with `search.search_proof`, DeepSeek-Prover's own setting (RMaxTS or
  sampling), and the proof found replaces `:= ... sorry`;
- stands inside a longer proof (after tactics, in a `have ... := by sorry`, a `·` case): the
  model continues the proof at that point (the text before it, with Lean's goal there as a
  `/- tactic state -/` comment, as `POST /v1/complete` does), each continuation is cut to the
  block it starts and spliced in, text after the `sorry` kept, and Lean checks the declaration.
  With the declaration's last `sorry` gone it must be `proved`; while others remain, it must
  elaborate without errors.

The context of a declaration is the file before it, minus earlier theorems that still contain a
`sorry`: a proof is never judged on top of an unproved lemma (which would make every check
`incomplete`), so a proof that needs one fails instead. A `sorry` that is not proved stays, with
a comment after it naming the verdict (`/- prover fill: ... -/`); a second run replaces that
comment instead of adding one, so running twice never stacks comments or changes a file whose
outcome did not change. `sorry`s in comments and strings are not touched; those outside
theorems (in a `def`, an `example`) or inside a `namespace` are reported and left alone (the
verifier checks top-level named theorems).
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from prover.config import Settings
from prover.datasets import Problem
from prover.lean import CheckRequest, CheckResult, Verdict, policy
from prover.lean.source import StatementError, mask_comments_and_strings, split_source
from prover.model.base import Generator, SamplingParams
from prover.problem_input import normalise_statement
from prover.prompts import PromptMode
from search import SearchConfig, SearchSetupError, Verifier, search_proof
from search.complete import CompletionRequest, complete, indent_block, locate

COMMENT_TAG = "prover fill:"
_SORRY = re.compile(r"(?<![\w'.!?])sorry(?![\w'!?])")
# Our comment right after a sorry (same line): replaced, never stacked, on the next run.
_OUR_COMMENT = re.compile(r"[ \t]*/- prover fill:[^\n]*?-/")
_ATTRS = re.compile(r"(@\[[^\]]*\]\s*)+")
_MODIFIERS = ("private", "protected", "noncomputable", "partial", "unsafe", "nonrec")
_THEOREM = ("theorem", "lemma")
_WHOLE = re.compile(r"\s*(by\s+)?sorry\s*")


class FillError(Exception):
    """The file cannot be filled at all (unreadable, does not elaborate); it is left as is."""


@dataclass(frozen=True)
class Command:
    """One top-level command: from a line starting at column 0 to the next such line."""

    start: int
    end: int
    keyword: str
    keyword_start: int
    name: str | None
    in_namespace: bool


@dataclass
class Outcome:
    line: int  # 1-based, in the original file
    theorem: str | None
    status: str  # proved | not_proved | skipped
    detail: str  # verdict and samples, or why skipped
    samples: int = 0


@dataclass
class FillReport:
    original: str
    text: str
    outcomes: list[Outcome] = field(default_factory=list)
    time_s: float = 0.0

    @property
    def changed(self) -> bool:
        return self.text != self.original

    @property
    def proved(self) -> int:
        return sum(o.status == "proved" for o in self.outcomes)

    def diff(self, path: str) -> str:
        return "".join(difflib.unified_diff(self.original.splitlines(keepends=True),
                                            self.text.splitlines(keepends=True),
                                            fromfile=path, tofile=path))

    def summary(self, path: str) -> str:
        n = len(self.outcomes)
        left = n - self.proved
        lines = [f"{path}: {n} sorr{'y' if n == 1 else 'ies'}: {self.proved} proved, "
                 f"{left} left ({self.time_s:.1f} s)"]
        for o in self.outcomes:
            where = f"  line {o.line}" + (f" ({o.theorem})" if o.theorem else "")
            lines.append(f"{where}: {o.status.replace('_', ' ')}: {o.detail}")
        return "\n".join(lines)


@dataclass(frozen=True)
class FillOptions:
    search: SearchConfig = field(default_factory=lambda: SearchConfig(budget=32))
    params: SamplingParams | None = None
    mode: PromptMode = "non-cot"
    check_timeout: float | None = None


# ---------------------------------------------------------------------- reading the file


def commands(text: str) -> list[Command]:
    """Top-level commands by layout (Lean 4 code puts them at column 0 and indents the rest),
    with the keyword after attributes and modifiers, and whether a `namespace` is open."""
    masked = mask_comments_and_strings(text)
    starts: list[int] = []
    offset = 0
    for line in masked.split("\n"):
        if line[:1].strip():
            starts.append(offset)
        offset += len(line) + 1
    out: list[Command] = []
    scopes: list[str] = []
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(text)
        head = masked[start:end]
        m = _ATTRS.match(head)
        pos = m.end() if m else 0
        words = head[pos:].split()
        k = 0
        while k < len(words) and words[k] in _MODIFIERS:
            k += 1
        keyword = words[k] if k < len(words) else ""
        keyword_start = start + head.find(keyword, pos) if keyword else start
        name = words[k + 1] if keyword in (*_THEOREM, "def", "abbrev", "instance") and \
            k + 1 < len(words) else None
        if name is not None:
            name = re.split(r"[\s(:{\[⦃]", name)[0] or None
        if keyword == "namespace":
            scopes.append("namespace")
        elif keyword == "section":
            scopes.append("section")
        elif keyword == "end" and scopes:
            scopes.pop()
        out.append(Command(start, end, keyword, keyword_start, name, "namespace" in scopes))
    return out


def sorries(text: str) -> list[int]:
    """Offsets of the `sorry` tokens outside comments and strings."""
    return [m.start() for m in _SORRY.finditer(mask_comments_and_strings(text))]


def _top_level_assign(masked: str, start: int, end: int) -> int | None:
    depth = 0
    for i in range(start, end - 1):
        ch = masked[i]
        if ch in "([{⟨⦃":
            depth += 1
        elif ch in ")]}⟩⦄":
            depth -= 1
        elif depth == 0 and masked.startswith(":=", i):
            return i
    return None


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _samples(n: int) -> str:
    return f"{n} sample" if n == 1 else f"{n} samples"


def _sanitize(text: str, limit: int = 120) -> str:
    text = " ".join(text.replace("-/", "- /").replace("/-", "/ -").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _context(text: str, cmds: list[Command], before: int) -> str:
    """The file before offset `before`, without earlier theorems that still contain `sorry`."""
    masked = mask_comments_and_strings(text)
    parts: list[str] = []
    cursor = 0
    for c in cmds:
        if c.start >= before:
            break
        if c.keyword in _THEOREM and _SORRY.search(masked, c.start, c.end):
            parts.append(text[cursor:c.start])
            cursor = c.end
    parts.append(text[cursor:before])
    return "".join(parts)


def _goal_at(check: CheckResult, text: str, offset: int) -> str | None:
    line = _line_of(text, offset)
    column = offset - (text.rfind("\n", 0, offset) + 1)
    for s in check.sorries:
        if s.pos is not None and s.pos.line == line and s.pos.column == column:
            return s.goal.strip() or None
    return None


# ---------------------------------------------------------------------- filling


async def _check(verifier: Verifier, code: str, statement: str | None,
                 timeout: float | None) -> CheckResult:
    try:
        return await verifier.check(CheckRequest(code=code, statement=statement, timeout=timeout))
    except StatementError:
        return await verifier.check(CheckRequest(code=code, statement=None, timeout=timeout))


class Filler:
    def __init__(self, generator: Generator, verifier: Verifier, options: FillOptions,
                 settings: Settings | None = None,
                 progress: Callable[[str], None] | None = None) -> None:
        self.generator = generator
        self.verifier = verifier
        self.options = options
        self.settings = settings or Settings()
        self.progress = progress or (lambda _: None)

    async def first_check(self, text: str) -> CheckResult:
        """The file as it is: refuses what Lean cannot read, and gives each sorry's goal."""
        split = split_source(text)
        violation = policy.scan(split.header_rest + split.body,
                                allow_native_decide=self.settings.allow_native_decide)
        if violation is not None:
            raise FillError("the verifier refuses this file: "
                            + violation.describe(split.header_line_offset))
        result = await self.verifier.check(CheckRequest(code=text, statement=None,
                                                        timeout=self.options.check_timeout))
        if result.verdict is Verdict.FAILED or any(m.is_error for m in result.messages):
            errors = [f"line {m.pos.line}: {m.data.splitlines()[0] if m.data else 'error'}"
                      for m in result.messages if m.is_error][:3]
            raise FillError("the file does not elaborate, so nothing was changed: "
                            + ("; ".join(errors) or result.error or "Lean reported an error"))
        if result.verdict in (Verdict.TIMEOUT, Verdict.SYSTEM_ERROR):
            raise FillError(f"checking the file ended in {result.verdict.value}: "
                            f"{result.error or 'no detail'}")
        return result

    async def fill(self, text: str) -> FillReport:
        started = time.monotonic()
        report = FillReport(original=text, text=text)
        if not sorries(text):
            return report
        first = await self.first_check(text)
        goals = {off: _goal_at(first, text, off) for off in sorries(text)}
        original_lines = {off: _line_of(text, off) for off in sorries(text)}
        # Offsets in the current text of sorries still to handle, in order; shifted by edits.
        pending = sorted(goals)
        shift_goal: dict[int, str | None] = dict(goals)
        shift_line: dict[int, int] = dict(original_lines)
        while pending:
            offset = pending.pop(0)
            goal, line = shift_goal.pop(offset), shift_line.pop(offset)
            new_text, outcome = await self._one(report.text, offset, goal, line)
            delta = len(new_text) - len(report.text)
            if delta:
                # Everything after the edited span moves; the edit never reaches a later sorry
                # (it ends at this sorry or at its old comment).
                pending = [p + delta for p in pending]
                shift_goal = {k + delta: v for k, v in shift_goal.items()}
                shift_line = {k + delta: v for k, v in shift_line.items()}
            report.text = new_text
            report.outcomes.append(outcome)
            self.progress(f"line {outcome.line}: {outcome.status.replace('_', ' ')}")
        report.time_s = time.monotonic() - started
        return report

    async def _one(self, text: str, offset: int, goal: str | None,
                   line: int) -> tuple[str, Outcome]:
        cmds = commands(text)
        cmd = next((c for c in cmds if c.start <= offset < c.end), None)
        end = offset + len("sorry")
        old = _OUR_COMMENT.match(text, end)
        span_end = old.end() if old else end

        def leave(status: str, detail: str, samples: int = 0) -> tuple[str, Outcome]:
            said = f"not proved ({detail})" if status == "not_proved" else f"skipped: {detail}"
            comment = f" /- {COMMENT_TAG} {_sanitize(said)} -/"
            new = text[:end] + comment + text[span_end:]
            return new, Outcome(line, cmd.name if cmd else None, status, detail, samples)

        if cmd is None or cmd.keyword not in _THEOREM or cmd.name is None:
            return leave("skipped", "not inside a theorem or lemma")
        if cmd.in_namespace:
            return leave("skipped", "inside a namespace (only top-level theorems are "
                         "filled)")
        masked = mask_comments_and_strings(text)
        assign = _top_level_assign(masked, cmd.keyword_start, offset)
        if assign is None:
            return leave("skipped", "the sorry is not in the proof")
        statement = text[cmd.keyword_start:assign]
        context = _context(text, cmds, cmd.start)
        # Our old comment is a comment, so masked away: `:= by sorry /- ... -/` is whole.
        if _WHOLE.fullmatch(masked[assign + 2:cmd.end]):
            return await self._whole(text, cmd, context, statement, assign, span_end, leave, line)
        return await self._inside(text, cmd, context, statement, offset, end, span_end, goal,
                                  leave, line)

    async def _whole(self, text: str, cmd: Command, context: str, statement: str, assign: int,
                     span_end: int, leave: Callable[..., tuple[str, Outcome]],
                     line: int) -> tuple[str, Outcome]:
        try:
            formal = normalise_statement(statement)
        except StatementError as exc:
            return leave("skipped", str(exc))
        problem = Problem(name=cmd.name or "", split="", header=context, informal_prefix="",
                          formal_statement=formal)
        try:
            result = await search_proof(problem, self.generator, self.verifier,
                                        self.options.search, params=self.options.params,
                                        mode=self.options.mode,
                                        check_timeout=self.options.check_timeout)
        except SearchSetupError as exc:
            return leave("skipped", str(exc))
        if not result.proved or result.proof is None:
            return leave("not_proved", f"{result.verdict}, {_samples(result.samples)}",
                         result.samples)
        body = result.proof[len(problem.header) + len(formal):]
        new = text[:assign] + ":= by\n" + body + text[span_end:]
        return new, Outcome(line, cmd.name, "proved", _samples(result.samples),
                            result.samples)

    async def _inside(self, text: str, cmd: Command, context: str, statement: str,
                      offset: int, end: int, span_end: int, goal: str | None,
                      leave: Callable[..., tuple[str, Outcome]],
                      line: int) -> tuple[str, Outcome]:
        masked = mask_comments_and_strings(text)
        line_start = text.rfind("\n", 0, offset) + 1
        before = masked[line_start:offset].rstrip()
        after_assign = before.endswith(":=")
        if not (before == "" or before.endswith(("by", "·", "=>", ".")) or after_assign):
            return leave("skipped", "a sorry inside a term (only whole proofs and "
                         "tactic positions are filled)")
        # The model continues the declaration where the sorry stands (`:= sorry` in a proof
        # becomes `:= by` and a block).
        lead = text[cmd.keyword_start:offset] + ("by " if after_assign else "")
        site = locate(lead)
        request = CompletionRequest(
            header=context, declaration=lead, goals=(goal,) if goal else (), kind="proof",
            num_samples=self.options.search.budget, verify=False,
            timeout=float(self.settings.lean_timeout) * 4, seed=self.options.search.seed)
        params = self.options.params or SamplingParams()
        result = await complete(request, self.generator, self.verifier, mode=self.options.mode,
                                params=params)
        others = [s for s in sorries(text) if cmd.start <= s < cmd.end and s != offset]
        norm_statement: str | None
        try:
            norm_statement = normalise_statement(statement)
        except StatementError:
            norm_statement = None
        last_verdict = "no candidate"
        for candidate in result.candidates:
            block = indent_block(candidate.text, site.indent)
            if before == "":  # the sorry began its line: the block takes its place
                new = text[:line_start] + block + text[span_end:]
            else:  # after `by`, `·`, `=>`, `:=` on its line: a block on the lines below
                head = text[:offset].rstrip() + (" by" if after_assign else "")
                new = head + "\n" + block + text[span_end:]
            decl_end = cmd.end + (len(new) - len(text))
            code = context + new[cmd.start:decl_end]
            check = await _check(self.verifier, code, norm_statement, self.options.check_timeout)
            last_verdict = check.verdict.value
            ok = check.proved if not others else (
                check.verdict is Verdict.INCOMPLETE
                and not any(m.is_error for m in check.messages))
            if ok:
                left = (f", {len(others)} other sorr{'y' if len(others) == 1 else 'ies'} "
                        "left in the theorem") if others else ""
                return new, Outcome(line, cmd.name, "proved", _samples(result.samples) + left,
                                    result.samples)
        return leave("not_proved", f"{last_verdict}, {_samples(result.samples)}",
                     result.samples)


# ---------------------------------------------------------------------- files


def read_lean(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise FillError(f"cannot read {path}: not UTF-8 ({exc.reason})") from None
    except OSError as exc:
        raise FillError(f"cannot read {path}: {exc.strerror or exc}") from None


def write_back(path: Path, report: FillReport) -> Path | None:
    """Write the filled file (atomically) and the original next to it as FILE.bak; nothing
    is written when nothing changed, so a second run keeps the first run's backup."""
    if not report.changed:
        return None
    backup = path.with_name(path.name + ".bak")
    backup.write_text(report.original, encoding="utf-8")
    tmp = path.with_name(f".{path.name}.fill-{os.getpid()}.tmp")
    tmp.write_text(report.text, encoding="utf-8")
    shutil.copymode(path, tmp)
    os.replace(tmp, path)
    return backup


def mode_of(value: str | None, settings: Settings) -> PromptMode:
    return cast(PromptMode, value or settings.model_prompt)
