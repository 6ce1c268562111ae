"""DeepSeek-Prover-V1.5's prompt layout, pinned byte for byte.

The expected strings are written out by hand (here and in tests/golden/) from DeepSeek's code:
`prover/utils.py` (instructions, fence, default header, output cut), `prover/algorithms/base.py`
(few-shot examples prepended), `prover/algorithms/rmax_tree_search.py` and `prover/lean/proof.py`
(prefix plus tactic-state comment). They are never produced by the functions under test.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from prover.datasets import Problem, find_problem, load_problems
from prover.prompts import (
    DEFAULT_HEADER,
    build_prompt,
    choose_few_shot,
    extract_proof,
    full_code,
    resume_prompt,
    tactic_state_comment,
)

GOLDEN = Path(__file__).resolve().parent / "golden"

HEADER_TEXT = (
    "import Mathlib\n"
    "import Aesop\n"
    "\n"
    "set_option maxHeartbeats 0\n"
    "\n"
    "open BigOperators Real Nat Topology Rat\n"
    "\n"
)
STATEMENT_478 = (
    "theorem mathd_algebra_478 (b h v : ℝ) (h₀ : 0 < b ∧ 0 < h ∧ 0 < v)"
    " (h₁ : v = 1 / 3 * (b * h))\n"
    "    (h₂ : b = 30) (h₃ : h = 13 / 2) : v = 65 := by\n"
)


def golden(name: str) -> str:
    # Bytes, not read_text: no newline translation may hide a difference.
    return (GOLDEN / f"{name}.txt").read_bytes().decode("utf-8")


@pytest.fixture(scope="module")
def p478() -> Problem:
    return find_problem("minif2f", "mathd_algebra_478")


@pytest.fixture(scope="module")
def p21() -> Problem:
    return find_problem("minif2f", "amc12a_2019_p21")


def test_default_header_is_deepseeks() -> None:
    assert DEFAULT_HEADER == HEADER_TEXT


@pytest.mark.parametrize("mode", ["non-cot", "cot"])
@pytest.mark.parametrize("name", ["mathd_algebra_478", "amc12a_2019_p21"])
def test_zero_shot_prompts(mode: str, name: str) -> None:
    problem = find_problem("minif2f", name)
    expected = golden(f"{mode.replace('-', '_')}_{name}")
    assert build_prompt(problem, mode) == expected  # type: ignore[arg-type]


def test_default_mode_is_non_cot(p478: Problem) -> None:
    assert build_prompt(p478) == golden("non_cot_mathd_algebra_478")


def test_prompt_ends_where_the_proof_begins(p478: Problem) -> None:
    prompt = build_prompt(p478, "cot")
    assert prompt.endswith("(h₂ : b = 30) (h₃ : h = 13 / 2) : v = 65 := by\n")
    assert prompt.count("```") == 1


def test_few_shot_cot_prompt(p21: Problem) -> None:
    pool = {p.name: p for p in load_problems("minif2f_valid_few_shot")}
    examples = [
        pool["mathd_numbertheory_101"],
        pool["algebra_manipexpr_apbeq2cceqiacpbceqm2"],
        pool["mathd_numbertheory_81"],
    ]
    assert build_prompt(p21, "cot", examples) == golden("few_shot_cot_amc12a_2019_p21")


def test_few_shot_non_cot_block(p478: Problem) -> None:
    example = find_problem("minif2f_valid_few_shot", "mathd_numbertheory_81")
    expected = (
        "Complete the following Lean 4 code:\n"
        "\n"
        "```lean4\n"
        + HEADER_TEXT
        + "/-- Determine the remainder of 71 (mod 3). Show that it is 2.-/\n"
        "theorem mathd_numbertheory_81 : 71 % 3 = 2 := by\n"
        "  /- $71 = 23 \\cdot 3 + 2 \\Rightarrow 71 \\equiv 2 \\pmod{3}$.\n"
        "  -/\n"
        "  apply Eq.refl\n"
        "```\n"
        "\n"
        "\n"
    )
    assert build_prompt(p478, "non-cot", [example]) == expected + golden(
        "non_cot_mathd_algebra_478"
    )


def test_few_shot_needs_a_proof(p478: Problem, p21: Problem) -> None:
    with pytest.raises(ValueError, match=r"amc12a_2019_p21.*formal_proof"):
        build_prompt(p478, "non-cot", [p21])


def test_unknown_mode_is_refused(p478: Problem) -> None:
    with pytest.raises(ValueError, match=r"'chat'.*non-cot, cot"):
        build_prompt(p478, "chat")  # type: ignore[arg-type]


def test_few_shot_choice_never_shows_the_problem_itself() -> None:
    pool = load_problems("minif2f_valid_few_shot")
    target = find_problem("minif2f", "mathd_algebra_182")  # also in the few-shot pool
    chosen = choose_few_shot(pool, target, k=len(pool) - 1, rng=random.Random(0))
    assert target.name not in {p.name for p in chosen}
    assert len({p.name for p in chosen}) == len(pool) - 1
    first = choose_few_shot(pool, target, rng=random.Random(7))
    assert len(first) == 3 and first == choose_few_shot(pool, target, rng=random.Random(7))
    with pytest.raises(ValueError, match="only 66"):
        choose_few_shot(pool, target, k=len(pool))


STATE_478 = (
    "b h v : ℝ\n"
    "h₀ : 0 < b ∧ 0 < h ∧ 0 < v\n"
    "h₁ : v = 1 / 3 * (30 * (13 / 2))\n"
    "h₂ : b = 30\n"
    "h₃ : h = 13 / 2\n"
    "⊢ v = 65"
)


def test_resume_without_state_appends_the_prefix(p478: Problem) -> None:
    prompt = build_prompt(p478, "cot")
    prefix = "  -- substitute the given values\n  rw [h₂, h₃] at h₁\n"
    assert resume_prompt(prompt, prefix) == golden("cot_mathd_algebra_478") + (
        "  -- substitute the given values\n  rw [h₂, h₃] at h₁\n"
    )


def test_resume_with_state_adds_deepseeks_comment(p478: Problem) -> None:
    prompt = build_prompt(p478, "cot")
    prefix = "  rw [h₂, h₃] at h₁\n"
    expected = golden("cot_mathd_algebra_478") + (
        "  rw [h₂, h₃] at h₁\n"
        "  /- tactic state:\n"
        "    b h v : ℝ\n"
        "    h₀ : 0 < b ∧ 0 < h ∧ 0 < v\n"
        "    h₁ : v = 1 / 3 * (30 * (13 / 2))\n"
        "    h₂ : b = 30\n"
        "    h₃ : h = 13 / 2\n"
        "    ⊢ v = 65\n"
        "  -/\n"
    )
    assert resume_prompt(prompt, prefix, STATE_478) == expected


def test_resume_nested_prefix_with_several_goals(p21: Problem) -> None:
    prompt = build_prompt(p21)
    prefix = "  have h₁ : z ^ 2 = Complex.I := by\n    rw [h₀]\n    constructor\n"
    state = "case left\nz : ℂ\n⊢ 0 < 2\n\ncase right\nz : ℂ\n⊢ 2 ≠ 0"
    expected = golden("non_cot_amc12a_2019_p21") + (
        "  have h₁ : z ^ 2 = Complex.I := by\n"
        "    rw [h₀]\n"
        "    constructor\n"
        "    /- tactic state:\n"
        "      case left\n"
        "      z : ℂ\n"
        "      ⊢ 0 < 2\n"
        "      \n"  # the blank line between goals keeps its indentation, as in DeepSeek's
        "      case right\n"
        "      z : ℂ\n"
        "      ⊢ 2 ≠ 0\n"
        "    -/\n"
    )
    assert resume_prompt(prompt, prefix, state, indent=4) == expected


def test_no_goals_comment() -> None:
    assert tactic_state_comment("no goals") == "  /- tactic state:\n    no goals\n  -/\n"


def test_state_comment_needs_a_line_of_its_own(p478: Problem) -> None:
    with pytest.raises(ValueError, match="start a line"):
        resume_prompt(build_prompt(p478), "  rw [h₂, h₃] at h₁", STATE_478)


def test_extract_proof_cuts_at_the_closing_fence() -> None:
    completion = (
        "  rw [h₂, h₃] at h₁\n"
        "  norm_num at h₁\n"
        "  linarith\n"
        "```\n"
        "\n"
        "This proof substitutes the values and simplifies. ```lean4\nexample : True := trivial\n```"
    )
    assert extract_proof(completion) == "  rw [h₂, h₃] at h₁\n  norm_num at h₁\n  linarith\n"


def test_extract_proof_keeps_a_cot_completion_whole_up_to_the_fence() -> None:
    completion = (
        "  /- Substituting $b = 30$ and $h = 13/2$ gives $v = 65$. -/\n"
        "  -- Substitute the base and height.\n"
        "  subst h₂ h₃\n"
        "  -- Simplify the arithmetic.\n"
        "  norm_num at h₁ ⊢\n"
        "  linarith```"
    )
    assert extract_proof(completion) == (
        "  /- Substituting $b = 30$ and $h = 13/2$ gives $v = 65$. -/\n"
        "  -- Substitute the base and height.\n"
        "  subst h₂ h₃\n"
        "  -- Simplify the arithmetic.\n"
        "  norm_num at h₁ ⊢\n"
        "  linarith"
    )


def test_extract_proof_without_a_fence_keeps_everything() -> None:
    truncated = "  nlinarith [sq_nonneg (z - 1), sq_nonneg (z + 1),\n    sq_nonn"
    assert extract_proof(truncated) == truncated
    assert extract_proof("```\n  simp") == ""
    assert extract_proof("") == ""


def test_full_code_is_header_statement_and_proof(p478: Problem) -> None:
    proof = extract_proof("  subst h₂ h₃\n  norm_num at h₁ ⊢\n  linarith\n\n```\n")
    assert full_code(p478, proof) == (
        HEADER_TEXT + STATEMENT_478 + "  subst h₂ h₃\n  norm_num at h₁ ⊢\n  linarith"
    )


def test_resumed_candidate_is_prefix_plus_completion_without_the_comment(p478: Problem) -> None:
    prefix = "  rw [h₂, h₃] at h₁\n"
    completion = "  norm_num at h₁\n  linarith\n```"
    assert full_code(p478, prefix + extract_proof(completion)) == (
        HEADER_TEXT + STATEMENT_478 + "  rw [h₂, h₃] at h₁\n  norm_num at h₁\n  linarith"
    )
