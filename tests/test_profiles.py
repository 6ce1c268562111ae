"""The prover profiles' prompt and correction formats, pinned byte for byte.

The expected strings (here and in tests/golden/) are written from the authors' published code,
never produced by the functions under test:
- deepseek-ai/DeepSeek-Prover-V2 README.md @ 24ec0822ed546234532e3c53e5f14cb0c35738c0
  ("Quick Start": user turn, statement ending `:= by\\n  sorry`, proof-plan instruction);
- Goedel-LM/Goedel-Prover-V2 src/utils.py @ 2e9036e118464aa96a8bebaf9f5b9d091aa3585c
  (`DeepSeekCoTHandler.prover_inference`, `DeepSeekNonCoTHandler.prover_inference`,
  `generate_correction_prompt`, `get_error_str`), scripts/pipeline.sh (8 samples, 2 corrections,
  2 rounds, temperature 1.0, 40,960 tokens);
- MoonshotAI/Kimina-Prover-Preview kimina_prover_demo/error_fix.py @
  d31a49e438a17a563b9f73d285b8c58a06b8d45a (system prompt, first user turn) and
  kimina_prover_demo/utils.py @ 3c46bc0a095e0c3c2072ab44530cab9f185a2ea0 (`create_tool_message`,
  `extract_proof_from_text`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from prover.datasets import find_problem
from prover.lean.protocol import Message, Pos, TacticInfo
from prover.lean.verdict import CheckResult, Verdict
from prover.model.base import ChatMessage
from prover.profiles import PROFILE_NAMES, ProfileError, get_profile

GOLDEN = Path(__file__).resolve().parent / "golden"
NAMES = ["mathd_algebra_478", "amc12a_2019_p21"]


def golden(name: str) -> str:
    return (GOLDEN / f"{name}.txt").read_bytes().decode("utf-8")


KIMINA_SYSTEM = ChatMessage("system", "You are an expert programmer and mathematician who "
                                      "helps formalizing mathematical problems in Lean 4.")

# profile, prompt mode, golden file stem, the turns before the user's (None: raw text, no chat)
FIRST_PROMPTS = [
    # DeepSeek-Prover-V2 CoT: one user turn with the proof-plan instruction
    ("deepseek-v2", "cot", "deepseek_v2_cot", ()),
    # DeepSeek-Prover-V2 non-CoT: raw text ending at `by`
    ("deepseek-v2", "non-cot", "deepseek_v2_non_cot", None),
    # Goedel-Prover-V2 has one format whatever PROVER_MODEL_PROMPT says
    ("goedel-v2", "non-cot", "goedel_v2", ()),
    # Kimina-Prover: its system turn first
    ("kimina-prover", None, "kimina_prover", (KIMINA_SYSTEM,)),
]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("profile_name", "mode", "stem", "before"), FIRST_PROMPTS,
                         ids=[stem for _, _, stem, _ in FIRST_PROMPTS])
def test_first_prompt_is_the_authors_layout(profile_name: str, mode: str | None, stem: str,
                                            before: tuple[ChatMessage, ...] | None,
                                            name: str) -> None:
    profile = get_profile(profile_name)
    prompt = profile.first_prompt(find_problem("minif2f", name), profile.mode(mode))
    text = golden(f"{stem}_{name}")
    assert prompt == (text if before is None else (*before, ChatMessage("user", text)))


def test_v15_profile_is_todays_prompt() -> None:
    problem = find_problem("minif2f", "mathd_algebra_478")
    profile = get_profile("deepseek-v1.5")
    assert profile.first_prompt(problem, "cot") == golden("cot_mathd_algebra_478")
    assert not profile.is_chat("cot")


def test_sampling_defaults_and_lean_versions() -> None:
    assert get_profile("goedel-v2").context == 40960
    assert get_profile("deepseek-v2").max_tokens >= 6800  # CoT answers average 4.5-6.8k
    assert get_profile("deepseek-v1.5").lean_version == "v4.9.0-rc1"
    assert get_profile("kimina-prover").temperature == 0.8


def test_unknown_profile_lists_the_known_ones() -> None:
    with pytest.raises(ProfileError) as info:
        get_profile("gpt-prover")
    for name in PROFILE_NAMES:
        assert name in str(info.value)


ANSWER = (
    "### Proof plan\nSubstitute, then compute.\n```lean4\ntheorem wrong : 1 = 1 := by rfl\n```\n"
    "Now the real one:\n"
    "```lean4\nimport Mathlib\n\n/-- the cone -/\n"
    "theorem mathd_algebra_478 (b h v : ℝ) (h₀ : 0 < b ∧ 0 < h ∧ 0 < v)"
    " (h₁ : v = 1 / 3 * (b * h))\n    (h₂ : b = 30) (h₃ : h = 13 / 2) : v = 65 := by\n"
    "  rw [h₂, h₃] at h₁\n  linarith\n```\nDone."
)


@pytest.mark.parametrize("name", ["goedel-v2", "kimina-prover", "deepseek-v2"])
def test_chat_answer_is_the_last_lean_block_after_its_statement(name: str) -> None:
    problem = find_problem("minif2f", "mathd_algebra_478")
    reading = get_profile(name).read(problem, ANSWER, "cot")
    assert reading.body == "  rw [h₂, h₃] at h₁\n  linarith"


def test_an_answer_without_code_is_a_reason_not_a_crash() -> None:
    problem = find_problem("minif2f", "mathd_algebra_478")
    reading = get_profile("goedel-v2").read(problem, "I think we should use linarith.", "cot")
    assert reading.body is None and "no ```lean4 code block" in (reading.why or "")


CODE = (
    "import Mathlib\nimport Aesop\n\nset_option maxHeartbeats 0\n\nopen Real\n\n"
    "theorem t (x : ℝ) (h : x = 2) : x ^ 2 = 4 := by\n"
    "  subst h\n"
    "  nlinarith [sq_nonneg x]\n"
)
ERROR = Message("error", Pos(10, 2), Pos(10, 25), "linarith failed to find a contradiction")


def test_goedel_round_quotes_the_error_in_place() -> None:
    result = CheckResult(Verdict.FAILED, messages=(ERROR,))
    history = (ChatMessage("user", "PROMPT"),)
    chat = get_profile("goedel-v2").correction(history, "ANSWER", CODE, result, 1)
    assert chat is not None
    assert chat[:2] == (ChatMessage("user", "PROMPT"), ChatMessage("assistant", "ANSWER"))
    # src/compile.py drops import/set_option/open lines before Lean runs, so the quoted code
    # (four lines before the error, the error, one after) starts after them.
    assert chat[2] == ChatMessage("user", (
        "The proof (Round 0) is not correct. Following is the compilation error message, where "
        "we use <error></error> to signal the position of the error.\n\n"
        "\nError 1:\n"
        "\nCorresponding Code:\n```lean4\n"
        "\n"
        "\n"
        "theorem t (x : ℝ) (h : x = 2) : x ^ 2 = 4 := by\n"
        "  subst h\n"
        "  <error>nlinarith [sq_nonneg x]</error>\n"
        "\n"
        "\n```\n"
        "\nError Message: linarith failed to find a contradiction\n"
        "\n\nBefore producing the Lean 4 code to formally prove the given theorem, provide a "
        "detailed analysis of the error message."
    ))


def test_goedel_round_keeps_eight_errors() -> None:
    errors = tuple(Message("error", Pos(9, 2), None, f"e{i}") for i in range(10))
    chat = get_profile("goedel-v2").correction(
        (), "A", CODE, CheckResult(Verdict.FAILED, messages=errors), 2)
    assert chat is not None
    text = chat[-1].content
    assert text.startswith("The proof (Round 1) is not correct.")
    assert "Error 8:" in text and "Error 9:" not in text
    assert "... [Omitted 2 more errors] ..." in text
    assert "  <error>subst h</error>\n" in text  # no end position: to the end of the line


def test_kimina_fix_turn_shows_the_goals_before_the_error() -> None:
    tactic = TacticInfo("nlinarith [sq_nonneg x]", 1, "x : ℝ\n⊢ 2 ^ 2 = 4", Pos(10, 2),
                        Pos(10, 25), ())
    result = CheckResult(Verdict.FAILED, messages=(ERROR,), tactics=(tactic,))
    chat = get_profile("kimina-prover").correction((), "ANSWER", CODE, result, 1)
    assert chat is not None
    assert chat[-1] == ChatMessage("user", (
        "# Error 1:\n"
        "Goals state before error position: \nx : ℝ\n⊢ 2 ^ 2 = 4\n\n"
        "Error message: \nlinarith failed to find a contradiction\n\n"
        "Lean 4 code snippet with error:\n```lean4\n"
        "006  | theorem t (x : ℝ) (h : x = 2) : x ^ 2 = 4 := by\n"
        "007  |   subst h\n"
        "008 >|   nlinarith [sq_nonneg x]\n"
        "```\n"
    ))
