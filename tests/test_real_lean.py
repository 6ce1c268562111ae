"""The verifier against a real Lean REPL with Mathlib (`make lean`, then `make test-lean`).

Skipped, with the reason printed in the summary, where no toolchain is installed.
"""

from __future__ import annotations

import pytest

from prover.config import Settings
from prover.lean import CheckRequest, LeanPool, Verdict

pytestmark = pytest.mark.lean

HEADER = (
    "import Mathlib\nimport Aesop\n\nset_option maxHeartbeats 400000\n\n"
    "open BigOperators Real Nat Topology Rat\n\n"
)
STATEMENT = "theorem mathd_algebra_182 (y : ℂ) : 7 * (3 * y + 2) = 21 * y + 14 := by"


@pytest.mark.parametrize(
    ("proof", "verdict"),
    [
        ("  ring", Verdict.PROVED),
        ("  sorry", Verdict.INCOMPLETE),
        ("  linarith", Verdict.FAILED),
    ],
)
async def test_real_repl_verdicts(proof: str, verdict: Verdict) -> None:
    settings = Settings.load().with_overrides(lean_timeout=300.0)
    async with LeanPool(settings, workers=1) as pool:
        result = await pool.check(
            CheckRequest(code=f"{HEADER}{STATEMENT}\n{proof}\n", statement=STATEMENT)
        )
    assert result.verdict is verdict, result


async def test_real_repl_rejects_a_changed_statement_by_elaboration() -> None:
    # The extra hypothesis makes the goal trivial; only the elaborated types tell them apart.
    weakened = STATEMENT.replace("(y : ℂ)", "(y : ℂ) (h : False)")
    code = f"{HEADER}{weakened}\n  exact h.elim\n"
    async with LeanPool(Settings.load(), workers=1) as pool:
        result = await pool.check(CheckRequest(code=code, statement=STATEMENT))
    assert result.verdict is Verdict.REJECTED and "not the statement" in (result.rejection or "")
