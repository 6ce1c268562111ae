"""The cheat corpus: every file in tests/cheats/ is an attack on the verifier, and every file in
tests/cheats/honest/ a correct proof that must survive it.

Each file is a complete miniF2F-style Lean file whose leading `-- key: value` comments say what
the check must answer:

    -- cheat: <what the attack does>            (honest files: `-- honest: ...`)
    -- statement: theorem NAME ... := by         (the statement the checker is given)
    -- expect: rejected | incomplete | proved
    -- reason: <substring of the rejection>      (optional)
    -- known-gap: yes                            (optional: the checker misses it today)
    -- gap-in: fake-repl | checker               (with known-gap: where the gap lies)
    -- gap: <why it is missed>
    -- context: yes                              (optional: the file through its line
                                                  `-- context ends` is the statement's trusted
                                                  context, as a LeanDojo theorem's file before it)

The fake REPL (tests/fixtures/fake_repl.py) runs the corpus here; the `lean`-marked variant runs
the same files against the real REPL. A known gap is an xfail(strict=True) against the fake REPL,
so it stays visible, and the test fails loudly once the gap is closed (then drop the marker).
Against real Lean only `gap-in: checker` gaps are expected to fail; `gap-in: fake-repl` gaps are
things the toy Lean does not model and real Lean must get right.
"""

from __future__ import annotations

import re
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from prover.config import Settings
from prover.lean import CheckRequest, CheckResult, LeanPool, Verdict

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"
CHEATS = HERE / "cheats"
HONEST = CHEATS / "honest"

HEADER = (
    "import Mathlib\nimport Aesop\n\nset_option maxHeartbeats 400000\n\n"
    "open BigOperators Real Nat Topology Rat\n\n"
)
_META = re.compile(r"--\s*([\w-]+):\s?(.*)")
CONTEXT_ENDS = "-- context ends\n"


@dataclass(frozen=True)
class Case:
    path: Path
    text: str
    meta: dict[str, str]

    @property
    def id(self) -> str:
        return self.path.relative_to(CHEATS).as_posix()

    @property
    def statement(self) -> str:
        return self.meta["statement"]

    @property
    def context(self) -> str | None:
        if self.meta.get("context") != "yes":
            return None
        end = self.text.index(CONTEXT_ENDS) + len(CONTEXT_ENDS)
        return self.text[:end]

    def request(self) -> CheckRequest:
        return CheckRequest(code=self.text, statement=self.statement, context=self.context)

    @property
    def expect(self) -> Verdict:
        return Verdict(self.meta["expect"])

    @property
    def reason(self) -> str | None:
        return self.meta.get("reason")

    @property
    def known_gap(self) -> bool:
        return self.meta.get("known-gap", "").lower() == "yes"

    @property
    def gap_note(self) -> str:
        where = self.meta.get("gap-in", "?")
        return f"known gap ({where}) in {self.id}: {self.meta.get('gap', 'no note')}"


def load_case(path: Path) -> Case:
    text = path.read_text(encoding="utf-8")
    meta: dict[str, str] = {}
    for line in text.splitlines():
        m = _META.fullmatch(line.strip())
        if m is None:
            break
        meta[m.group(1).lower()] = m.group(2).strip()
    return Case(path, text, meta)


def cheat_files() -> list[Path]:
    return sorted(CHEATS.glob("*.lean"))


def honest_files() -> list[Path]:
    return sorted(HONEST.glob("*.lean"))


ALL_CASES = [load_case(p) for p in cheat_files() + honest_files()]


def params(real_lean: bool) -> list[object]:
    out: list[object] = []
    for case in ALL_CASES:
        marks: list[pytest.MarkDecorator] = []
        if case.known_gap and not real_lean:
            marks.append(pytest.mark.xfail(strict=True, reason=case.gap_note))
        elif case.known_gap and case.meta.get("gap-in") == "checker":
            # Unverified on a real toolchain: the exploit may also fail to elaborate there.
            marks.append(pytest.mark.xfail(strict=False, reason=case.gap_note))
        out.append(pytest.param(case, id=case.id, marks=marks))
    return out


def describe(result: CheckResult) -> str:
    errors = [m.data for m in result.messages if m.is_error][:3]
    return (
        f"verdict={result.verdict.value} rejection={result.rejection!r} "
        f"error={result.error!r} axioms={list(result.axioms)} errors={errors}"
    )


def assert_expected(case: Case, result: CheckResult) -> None:
    assert result.verdict is case.expect, f"{case.id}: expected {case.expect.value}, got " + (
        describe(result)
    )
    if case.reason is not None:
        assert case.reason in (result.rejection or ""), (
            f"{case.id}: the rejection should mention {case.reason!r}; {describe(result)}"
        )


# ---------------------------------------------------------------------- the corpus itself


def test_corpus_is_large_enough() -> None:
    cheats = [load_case(p) for p in cheat_files()]
    assert len(cheats) >= 25
    assert len(honest_files()) >= 5


@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: c.id)
def test_corpus_file_is_well_formed(case: Case) -> None:
    assert re.fullmatch(r"\d\d_[a-z0-9_]+\.lean", case.path.name), case.path.name
    honest = case.path.parent == HONEST
    assert ("honest" if honest else "cheat") in case.meta, "missing the description line"
    assert case.statement.startswith("theorem "), case.statement
    if honest:
        assert case.expect is Verdict.PROVED
    else:
        assert case.expect in (Verdict.REJECTED, Verdict.INCOMPLETE)
    if case.known_gap:
        assert case.meta.get("gap-in") in ("fake-repl", "checker")
        assert case.meta.get("gap"), "a known gap needs a `-- gap:` note"
    body = case.text.split(HEADER, 1)
    assert len(body) == 2, "the file must carry the miniF2F header right after the metadata"
    assert all(_META.fullmatch(line.strip()) for line in body[0].splitlines())


# ---------------------------------------------------------------------- against the fake REPL


def fake_settings(**extra: str) -> Settings:
    # The workspace only has to be a directory the sandbox can enter (bwrap puts a fresh
    # tmpfs on /tmp, so not a pytest tmp_path); the fake REPL reads nothing from it.
    environ = {
        "PROVER_LEAN_REPL_CMD": f"{sys.executable} -S {FIXTURES}/fake_repl.py",
        "PROVER_LEAN_WORKSPACE": str(FIXTURES),
        "PROVER_LEAN_WORKERS": "2",
        "PROVER_LEAN_TIMEOUT": "30",
    }
    environ.update(extra)
    return Settings.load(environ=environ)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fake_pool() -> AsyncIterator[LeanPool]:
    async with LeanPool(fake_settings()) as pool:
        yield pool


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("case", params(real_lean=False))
async def test_cheat_corpus(fake_pool: LeanPool, case: Case) -> None:
    result = await fake_pool.check(case.request())
    assert_expected(case, result)


async def test_native_decide_only_with_the_setting() -> None:
    """PROVER_ALLOW_NATIVE_DECIDE lets `native_decide` through, but nothing else with it."""
    settings = fake_settings(PROVER_LEAN_WORKERS="1", PROVER_ALLOW_NATIVE_DECIDE="1")
    native = load_case(CHEATS / "07_native_decide.lean")
    swapped = load_case(CHEATS / "08_implemented_by.lean")
    async with LeanPool(settings) as pool:
        allowed = await pool.check(CheckRequest(code=native.text, statement=native.statement))
        assert allowed.verdict is Verdict.PROVED, describe(allowed)
        assert "Lean.ofReduceBool" in allowed.axioms
        still = await pool.check(CheckRequest(code=swapped.text, statement=swapped.statement))
        assert still.verdict is Verdict.REJECTED, describe(still)
        assert "implemented_by" in (still.rejection or "")


# ---------------------------------------------------------------------- against real Lean


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def real_pool() -> AsyncIterator[LeanPool]:
    settings = Settings.load()  # the real REPL, as configured in the environment
    async with LeanPool(settings, workers=min(2, settings.lean_workers)) as pool:
        yield pool


@pytest.mark.lean
@pytest.mark.timeout(1800)
@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("case", params(real_lean=True))
async def test_cheat_corpus_real_lean(real_pool: LeanPool, case: Case) -> None:
    result = await real_pool.check(case.request())
    assert_expected(case, result)
