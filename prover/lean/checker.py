"""The check of one proof, from source text to verdict.

Order matters for both speed and safety: the policy scan refuses cheats before any Lean time is
spent; the statement is elaborated under a private name before the proof so the proof cannot
change its meaning; the proof runs on that env; and only a proof without errors and sorries is
audited, with `#print axioms` and a fully explicit (`pp.all`) print of both types, in a separate
command after the proof.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from prover.config import Settings
from prover.lean import policy
from prover.lean.protocol import CommandResponse, Message, Pos, Sorry, TacticInfo
from prover.lean.session import EnvFailure, ReplSession
from prover.lean.source import (
    SplitSource,
    Statement,
    declared_theorems,
    parse_statement,
    split_source,
)
from prover.lean.verdict import (
    CheckResult,
    Verdict,
    checked_type,
    judge_axioms,
    mentions_sorry,
    parse_axioms,
)

AUDIT_TIMEOUT_FLOOR_S = 30.0


@dataclass(frozen=True)
class CheckRequest:
    code: str  # a complete Lean file, header included
    statement: str | None = None  # the theorem that must be proved, as in `formal_statement`
    timeout: float | None = None  # seconds for the proof; the configured default when None
    all_tactics: bool = False  # also return per-tactic goals (for tree search)


@dataclass(frozen=True)
class PreparedCheck:
    request: CheckRequest
    split: SplitSource
    statement: Statement | None
    targets: tuple[str, ...]
    timeout: float


def prepare(request: CheckRequest, settings: Settings) -> PreparedCheck | CheckResult:
    """Parse and scan without Lean. Returns a final result when no Lean run is needed.

    Raises `StatementError` when the given statement is not a theorem declaration: that is a
    caller's mistake, not a verdict about the proof.
    """
    split = split_source(request.code)
    statement = parse_statement(request.statement) if request.statement is not None else None
    scanned = split.header_rest + split.body
    violation = policy.scan(scanned, allow_native_decide=settings.allow_native_decide)
    if violation is not None:
        return CheckResult(
            Verdict.REJECTED, rejection=violation.describe(split.header_line_offset)
        )
    if statement is not None:
        targets: tuple[str, ...] = (statement.name,)
    else:
        targets = tuple(dict.fromkeys(declared_theorems(split.body)))
        if not targets:
            return CheckResult(
                Verdict.REJECTED,
                rejection="the file declares no named theorem to check "
                "(give --statement, or name the theorem instead of using `example`)",
            )
    timeout = request.timeout if request.timeout is not None else settings.lean_timeout
    return PreparedCheck(request, split, statement, targets, timeout)


def _shift(pos: Pos | None, offset: int) -> Pos | None:
    return None if pos is None or pos.line == 0 else Pos(pos.line + offset, pos.column)


def _shift_message(m: Message, offset: int) -> Message:
    return replace(m, pos=_shift(m.pos, offset) or m.pos, end_pos=_shift(m.end_pos, offset))


def _shift_sorry(s: Sorry, offset: int) -> Sorry:
    return replace(s, pos=_shift(s.pos, offset), end_pos=_shift(s.end_pos, offset))


def _shift_tactic(t: TacticInfo, offset: int) -> TacticInfo:
    return replace(t, pos=_shift(t.pos, offset), end_pos=_shift(t.end_pos, offset))


def _env_failure(failure: EnvFailure, what: str, started: float) -> CheckResult:
    messages = tuple(_shift_message(m, failure.line_offset) for m in failure.messages)
    first = next((m.data for m in messages if m.is_error), "error")
    return CheckResult(
        Verdict.FAILED,
        messages=messages,
        error=f"{what} does not elaborate: {first}",
        time_s=time.monotonic() - started,
    )


def audit_command(targets: tuple[str, ...], reference: str | None) -> str:
    """One query per line so each answer can be told apart by its line number."""
    lines = [f"#print axioms _root_.{t}" for t in targets]
    if reference is not None:
        lines.append(f"set_option pp.all true in #check @_root_.{targets[0]}")
        lines.append(f"set_option pp.all true in #check @_root_.{reference}")
    return "\n".join(lines)


def _by_line(resp: CommandResponse) -> dict[int, list[Message]]:
    out: dict[int, list[Message]] = {}
    for m in resp.messages:
        out.setdefault(m.pos.line, []).append(m)
    return out


def judge_audit(
    resp: CommandResponse, targets: tuple[str, ...], has_reference: bool, allow_native: bool
) -> tuple[Verdict, tuple[str, ...], str | None]:
    """Verdict, axioms and rejection reason from the audit command's answer."""
    lines = _by_line(resp)
    all_axioms: set[str] = set()
    for i, name in enumerate(targets, start=1):
        found = lines.get(i, [])
        if any(m.is_error for m in found):
            return Verdict.REJECTED, (), f"theorem `{name}` is not declared at the top level"
        parsed = next((a for m in found if (a := parse_axioms(m.data)) is not None), None)
        if parsed is None:
            return Verdict.REJECTED, (), f"could not read the axioms of `{name}` from Lean"
        all_axioms.update(parsed)
    axioms = tuple(sorted(all_axioms))
    verdict, reason = judge_axioms(axioms, allow_native)
    if verdict is not Verdict.PROVED:
        return verdict, axioms, reason
    if has_reference:
        n = len(targets)
        got, want = lines.get(n + 1, []), lines.get(n + 2, [])
        if any(m.is_error for m in got + want) or not got or not want:
            return Verdict.REJECTED, axioms, "could not compare the statement with Lean"
        got_type, want_type = checked_type(got[0].data), checked_type(want[0].data)
        if got_type != want_type:
            return (
                Verdict.REJECTED,
                axioms,
                f"the theorem `{targets[0]}` that was proved is not the statement asked for "
                f"(Lean elaborated {got_type[:300]!r}, expected {want_type[:300]!r})",
            )
    return Verdict.PROVED, axioms, None


async def run_check(session: ReplSession, check: PreparedCheck, settings: Settings) -> CheckResult:
    """Run one prepared check on a session. ReplFailure propagates to the pool."""
    started = time.monotonic()
    split = check.split
    header = await session.header_env(split)
    if isinstance(header, EnvFailure):
        return _env_failure(header, "the header", started)
    env = header
    reference: str | None = None
    if check.statement is not None:
        ref = await session.reference_env(header, check.statement)
        if isinstance(ref, EnvFailure):
            return _env_failure(ref, "the statement asked for", started)
        env, reference = ref
    resp = await session.command(
        split.body, env, check.timeout, all_tactics=check.request.all_tactics
    )
    offset = split.body_line_offset
    messages = tuple(_shift_message(m, offset) for m in resp.messages)
    sorries = tuple(_shift_sorry(s, offset) for s in resp.sorries)
    tactics = tuple(_shift_tactic(t, offset) for t in resp.tactics)

    def result(verdict: Verdict, **kw: object) -> CheckResult:
        return CheckResult(
            verdict, messages=messages, sorries=sorries, tactics=tactics,
            time_s=time.monotonic() - started, **kw,  # type: ignore[arg-type]
        )

    if resp.errors:
        return result(Verdict.FAILED)
    if sorries or mentions_sorry(messages):
        return result(Verdict.INCOMPLETE)
    audit = await session.command(
        audit_command(check.targets, reference), resp.env,
        max(AUDIT_TIMEOUT_FLOOR_S, check.timeout),
    )
    verdict, axioms, rejection = judge_audit(
        audit, check.targets, reference is not None, settings.allow_native_decide
    )
    return result(verdict, axioms=axioms, rejection=rejection)
