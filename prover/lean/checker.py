"""The check of one proof, from source text to verdict.

Order matters for both speed and safety: the policy scan refuses cheats before any Lean time is
spent; then one REPL command elaborates the statement under a private name before the proof (so
the proof cannot change its meaning), the proof, and the audit queries (`#print axioms` and a fully
explicit `pp.all` print of both types) after it, and Lean's answers are told apart by line
(prover/lean/fused.py). Only a proof without errors and sorries is judged by its audit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from prover.config import Settings
from prover.lean import fused, policy
from prover.lean.names import qualify, scan
from prover.lean.protocol import Message
from prover.lean.session import EnvFailure, ReplSession
from prover.lean.source import (
    ContextError,
    SplitSource,
    Statement,
    parse_statement,
    split_source,
    split_with_context,
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
    use_cache: bool = True  # False: never answer from the results cache (always run Lean)
    # The trusted text the file begins with, in which the statement is elaborated (a LeanDojo
    # theorem's file before it: its namespace, `open`s, `variable`s, earlier definitions).
    context: str | None = None


@dataclass(frozen=True)
class PreparedCheck:
    request: CheckRequest
    split: SplitSource
    statement: Statement | None
    targets: tuple[str, ...]
    timeout: float
    namespace: str = ""  # the namespace the header (a context) leaves open


def prepare(request: CheckRequest, settings: Settings) -> PreparedCheck | CheckResult:
    """Parse and scan without Lean. Returns a final result when no Lean run is needed.

    Raises `StatementError` when the given statement is not a theorem declaration: that is a
    caller's mistake, not a verdict about the proof.
    """
    if request.context:
        try:
            split = split_with_context(request.code, request.context)
        except ContextError as exc:
            return CheckResult(Verdict.REJECTED, rejection=str(exc))
    else:
        split = split_source(request.code)
    statement = parse_statement(request.statement) if request.statement is not None else None
    scanned = split.header_rest + split.body
    violation = policy.scan(scanned, allow_native_decide=settings.allow_native_decide)
    if violation is not None:
        return CheckResult(
            Verdict.REJECTED, rejection=violation.describe(split.header_line_offset)
        )
    open_end = fused.open_tail(split.body)
    if open_end is not None:
        return CheckResult(Verdict.REJECTED, rejection=open_end)
    # The namespace the header leaves open (a context's `namespace`, or none), then the body's
    # theorems under their full names.
    start = scan(split.header_rest).namespace
    declared = tuple(dict.fromkeys(d.name for d in scan(split.body, start).declared))
    if statement is not None:
        target = qualify(start, statement.name.rstrip("."))  # `t.{u}` stops at the dot
        if target not in declared:
            return CheckResult(Verdict.REJECTED, rejection=_not_declared(target, declared))
        targets: tuple[str, ...] = (target,)
    else:
        targets = declared
        if not targets:
            return CheckResult(
                Verdict.REJECTED,
                rejection="the file declares no named theorem to check "
                "(give --statement, or name the theorem instead of using `example`)",
            )
    timeout = request.timeout if request.timeout is not None else settings.lean_timeout
    return PreparedCheck(request, split, statement, targets, timeout, start)


def _not_declared(target: str, declared: tuple[str, ...]) -> str:
    """Why a file that lacks the asked theorem is refused, naming what it declares instead."""
    short = target.rpartition(".")[2]
    alike = [d for d in declared if d.rpartition(".")[2] == short]
    hint = (f"; it declares {', '.join(f'`{d}`' for d in alike)}: a theorem is named by its "
            "namespace too (write the statement as `theorem <Namespace>.<name>`, or give it with "
            "its context)") if alike else ""
    return f"theorem `{target}` is not declared in the file{hint}"


def _env_failure(failure: EnvFailure, what: str, started: float) -> CheckResult:
    messages = tuple(
        replace(m, pos=fused.move(m.pos, failure.line_offset) or m.pos,
                end_pos=fused.move(m.end_pos, failure.line_offset))
        for m in failure.messages
    )
    first = next((m.data for m in messages if m.is_error), "error")
    return CheckResult(
        Verdict.FAILED,
        messages=messages,
        error=f"{what} does not elaborate: {first}",
        time_s=time.monotonic() - started,
    )


def _one_answer(found: tuple[Message, ...]) -> Message | None:
    """The single info message on an audit line; warnings (linters) are ignored, and anything
    else (no answer, two answers) means the line cannot be attributed."""
    infos = [m for m in found if m.severity == "info"]
    return infos[0] if len(infos) == 1 else None


def judge_audit(
    audit: dict[int, tuple[Message, ...]], targets: tuple[str, ...], has_reference: bool,
    allow_native: bool,
) -> tuple[Verdict, tuple[str, ...], str | None]:
    """Verdict, axioms and rejection reason from the audit queries' answers, by query index."""
    all_axioms: set[str] = set()
    for i, name in enumerate(targets):
        found = audit.get(i, ())
        errors = [m.data for m in found if m.is_error]
        if errors:
            return (Verdict.REJECTED, (),
                    f"theorem `{name}` is not declared as `_root_.{name}` ({errors[0][:200]})")
        answer = _one_answer(found)
        parsed = parse_axioms(answer.data) if answer is not None else None
        if parsed is None:
            return Verdict.REJECTED, (), f"could not read the axioms of `{name}` from Lean"
        all_axioms.update(parsed)
    axioms = tuple(sorted(all_axioms))
    verdict, reason = judge_axioms(axioms, allow_native)
    if verdict is not Verdict.PROVED:
        return verdict, axioms, reason
    if has_reference:
        n = len(targets)
        lines = audit.get(n, ()) + audit.get(n + 1, ())
        got, want = _one_answer(audit.get(n, ())), _one_answer(audit.get(n + 1, ()))
        if any(m.is_error for m in lines) or got is None or want is None:
            return Verdict.REJECTED, axioms, "could not compare the statement with Lean"
        got_type, want_type = checked_type(got.data), checked_type(want.data)
        if got_type != want_type:
            return (
                Verdict.REJECTED,
                axioms,
                f"the theorem `{targets[0]}` that was proved is not the statement asked for "
                f"(Lean elaborated {got_type[:300]!r}, expected {want_type[:300]!r})",
            )
    return Verdict.PROVED, axioms, None


async def run_check(session: ReplSession, check: PreparedCheck, settings: Settings) -> CheckResult:
    """Run one prepared check on a session: one REPL command once the header is held (see
    prover/lean/fused.py). ReplFailure propagates to the pool."""
    started = time.monotonic()
    split = check.split
    header = await session.header_env(split)
    if isinstance(header, EnvFailure):
        return _env_failure(header, "the header", started)
    reference = session.ref_name if check.statement is not None else None
    lay = fused.layout(split, check.statement, reference, check.targets, check.namespace)
    resp = await session.command(
        lay.text, header, check.timeout, all_tactics=check.request.all_tactics
    )
    got = fused.attribute(resp, lay, split.body_line_offset)
    if any(m.is_error for m in got.prelude):
        return _env_failure(EnvFailure(got.prelude, 0), "the statement asked for", started)

    def result(verdict: Verdict, **kw: object) -> CheckResult:
        return CheckResult(
            verdict, messages=got.messages, sorries=got.sorries, tactics=got.tactics,
            time_s=time.monotonic() - started, **kw,  # type: ignore[arg-type]
        )

    if any(m.is_error for m in got.messages):
        return result(Verdict.FAILED)
    if got.sorries or mentions_sorry(got.messages):
        return result(Verdict.INCOMPLETE)
    verdict, axioms, rejection = judge_audit(
        got.audit, check.targets, reference is not None, settings.allow_native_decide
    )
    return result(verdict, axioms=axioms, rejection=rejection)
