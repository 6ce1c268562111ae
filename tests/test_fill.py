"""`prover fill FILE.lean`: every `sorry` searched, the proved ones replaced, the rest left with
a comment naming the verdict; a backup, or a diff with --dry-run; safe to run twice.

In-process tests drive `prover.fill.Filler` with a scripted model; the CLI tests run
`python -m prover fill` against an OpenAI-compatible stub model over real HTTP. Lean is the fake
REPL: it accepts any proof without the word `fail` and without `sorry`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from prover.fill import Filler, FillError, FillOptions, commands, sorries
from prover.lean import LeanPool
from prover.model.scripted import ScriptedGenerator
from search import SearchConfig
from tests.openai_stub import openai_stub
from tests.server_support import settings
from tests.test_cli import prover

HEADER = "import Mathlib\nimport Aesop\n\nopen BigOperators Real Nat\n\n"

THREE = HEADER + """/-- The first one; this doc comment mentions sorry, which stays. -/
theorem easy_one (a : Nat) : a + 0 = a := by
  sorry

-- a comment about sorry
theorem größer_null (α : ℕ) (hα : 0 < α) : α ≠ 0 := sorry

theorem hard_one (a b : ℕ) (h₀ : a < b) : a ≤ b := by
  sorry

-- last: the fake REPL, unlike Lean, would read this string's sorry as a proof's
def greeting : String := "sorry, not a proof"
"""


def model(prompt: str) -> str:
    """A prover model that fails on theorems named `hard*` and proves everything else."""
    code = prompt.rsplit("```lean4\n", 1)[-1]
    last = re.findall(r"theorem (\S+)", code)
    if last and last[-1].startswith("hard"):
        return "  nlinarith [fail]\n```"
    return "  simp\n```"


def filler(generator: ScriptedGenerator, pool: LeanPool, budget: int = 2) -> Filler:
    config = SearchConfig(algorithm="sampling", budget=budget, concurrency=1)
    return Filler(generator, pool, FillOptions(search=config), settings())


# ---------------------------------------------------------------------- reading the file


def test_sorries_in_comments_and_strings_are_not_sorries() -> None:
    offsets = sorries(THREE)
    assert len(offsets) == 3
    assert all(THREE[o:o + 5] == "sorry" for o in offsets)
    kinds = [(c.keyword, c.name) for c in commands(THREE)]
    assert kinds == [("import", None), ("import", None), ("open", None),
                     ("theorem", "easy_one"), ("theorem", "größer_null"),
                     ("theorem", "hard_one"), ("def", "greeting")]


# ---------------------------------------------------------------------- in process


async def test_three_sorries_two_proved_and_a_second_run_changes_nothing() -> None:
    gen = ScriptedGenerator(lambda prompt, seed: model(prompt))
    async with LeanPool(settings()) as pool:
        report = await filler(gen, pool).fill(THREE)
        again = await filler(gen, pool).fill(report.text)
    assert report.proved == 2 and len(report.outcomes) == 3
    assert report.text == THREE.replace(
        "theorem easy_one (a : Nat) : a + 0 = a := by\n  sorry",
        "theorem easy_one (a : Nat) : a + 0 = a := by\n  simp",
    ).replace(
        "theorem größer_null (α : ℕ) (hα : 0 < α) : α ≠ 0 := sorry",
        "theorem größer_null (α : ℕ) (hα : 0 < α) : α ≠ 0 := by\n  simp",
    ).replace(
        "a ≤ b := by\n  sorry\n",
        "a ≤ b := by\n  sorry /- prover fill: not proved (failed, 2 samples) -/\n",
    )
    assert [(o.line, o.theorem, o.status) for o in report.outcomes] == [
        (8, "easy_one", "proved"), (11, "größer_null", "proved"),
        (14, "hard_one", "not_proved")]
    assert again.text == report.text and not again.changed  # no second comment
    assert [o.status for o in again.outcomes] == ["not_proved"]
    # later theorems were searched with the proved ones (not the unproved) in their context
    hard_prompt = next(p for p in gen.prompts if p.rstrip().endswith("a ≤ b := by"))
    assert "easy_one (a : Nat) : a + 0 = a := by\n  simp" in hard_prompt


async def test_sorries_inside_tactic_proofs() -> None:
    text = HEADER + (
        "theorem steps (a : Nat) : a + 0 = a := by\n"
        "  intro x\n"
        "  sorry\n\n"
        "theorem with_have (a : Nat) : a = a := by\n"
        "  have h : a = a := by sorry\n"
        "  exact h\n\n"
        "theorem two_holes (a : Nat) : a = a := by\n"
        "  have h : a = a := by\n"
        "    sorry\n"
        "  have hard_part : a = a := sorry\n"
        "  exact h\n"
    )

    def script(prompt: str, seed: int) -> str:
        if "hard_part : a = a := by\n" in prompt[-200:]:  # the block for `:= sorry`
            return "  fail\n```"
        return "  simp\n```"

    gen = ScriptedGenerator(script)
    async with LeanPool(settings()) as pool:
        report = await filler(gen, pool).fill(text)
    assert report.text == HEADER + (
        "theorem steps (a : Nat) : a + 0 = a := by\n"
        "  intro x\n"
        "  simp\n\n"
        "theorem with_have (a : Nat) : a = a := by\n"
        "  have h : a = a := by\n"
        "    simp\n"
        "  exact h\n\n"
        "theorem two_holes (a : Nat) : a = a := by\n"
        "  have h : a = a := by\n"
        "    simp\n"
        "  have hard_part : a = a := sorry /- prover fill: not proved (failed, 2 samples) -/\n"
        "  exact h\n"
    )
    details = [o.detail for o in report.outcomes]
    assert details[2] == "2 samples, 1 other sorry left in the theorem"
    # the model saw the goal at the sorry, as RMaxTS shows it
    assert any("  intro x\n  /- tactic state:\n    ⊢ a + 0 = a [after: intro x]\n  -/\n" in p
               for p in gen.prompts)


async def test_what_is_left_alone() -> None:
    text = HEADER + (
        "example (a : Nat) : a = a := by\n  sorry\n\n"
        "namespace Foo\n\ntheorem inner (a : Nat) : a = a := by\n  sorry\n\nend Foo\n\n"
        "theorem term_hole (a : Nat) : a = a ∧ True := ⟨sorry, trivial⟩\n"
    )
    gen = ScriptedGenerator(lambda prompt, seed: model(prompt))
    async with LeanPool(settings()) as pool:
        report = await filler(gen, pool).fill(text)
    assert [o.status for o in report.outcomes] == ["skipped"] * 3
    assert "example (a : Nat) : a = a := by\n  sorry /- prover fill: skipped: not inside a " \
        "theorem or lemma -/" in report.text
    assert "sorry /- prover fill: skipped: inside a namespace" in report.text
    assert "⟨sorry /- prover fill: skipped: a sorry inside a term" in report.text
    assert gen.prompts == []  # nothing was searched


async def test_a_file_that_does_not_parse_is_refused() -> None:
    text = HEADER + "this is junk text\n\ntheorem t (a : Nat) : a = a := by\n  sorry\n"
    gen = ScriptedGenerator(lambda prompt, seed: model(prompt))
    async with LeanPool(settings()) as pool:
        with pytest.raises(FillError, match=r"does not elaborate.*line 6: unexpected"):
            await filler(gen, pool).fill(text)
        no_sorry = await filler(gen, pool).fill(HEADER)
    assert gen.prompts == [] and not no_sorry.changed and no_sorry.outcomes == []


# ---------------------------------------------------------------------- the command line


@pytest.fixture
def stub_env() -> Iterator[dict[str, str]]:
    with openai_stub(model) as stub:
        yield {**stub.env(), "PROVER_LEAN_WORKERS": "1", "PROVER_LEAN_SANDBOX": "none"}


def test_cli_fill_writes_a_backup_and_is_idempotent(stub_env: dict[str, str],
                                                    tmp_path: Path) -> None:
    path = tmp_path / "Three.lean"
    path.write_text(THREE, encoding="utf-8")
    args = ("fill", str(path), "--search", "sampling", "--budget", "3", "-q")
    done = prover(*args, **stub_env)
    assert done.returncode == 1, done.stderr  # one sorry left
    filled = path.read_text(encoding="utf-8")
    assert (tmp_path / "Three.lean.bak").read_text(encoding="utf-8") == THREE
    assert "theorem größer_null (α : ℕ) (hα : 0 < α) : α ≠ 0 := by\n  simp\n" in filled
    assert "  sorry /- prover fill: not proved (failed, 3 samples) -/\n" in filled
    assert 'def greeting : String := "sorry, not a proof"' in filled
    assert f"{path}: 3 sorries: 2 proved, 1 left" in done.stdout
    assert "line 14 (hard_one): not proved: failed, 3 samples" in done.stdout
    assert f"backup: {path}.bak" in done.stdout

    again = prover(*args, **stub_env)
    assert again.returncode == 1, again.stderr
    assert path.read_text(encoding="utf-8") == filled  # unchanged, one comment
    assert "file unchanged" in again.stdout and "1 sorry: 0 proved, 1 left" in again.stdout
    assert (tmp_path / "Three.lean.bak").read_text(encoding="utf-8") == THREE


def test_cli_fill_dry_run_prints_a_diff(stub_env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "One.lean"
    original = HEADER + "theorem easy (a : Nat) : a = a := by\n  sorry\n"
    path.write_text(original, encoding="utf-8")
    done = prover("fill", str(path), "--dry-run", "--budget", "2", "-q", **stub_env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (f"--- {path}\n+++ {path}\n@@ -4,4 +4,4 @@\n open BigOperators Real "
                           "Nat\n \n theorem easy (a : Nat) : a = a := by\n-  sorry\n+  simp\n")
    assert "1 sorry: 1 proved, 0 left" in done.stderr
    assert path.read_text(encoding="utf-8") == original
    assert not (tmp_path / "One.lean.bak").exists()


@pytest.mark.parametrize("content,message", [
    (HEADER + "this is junk text\n\ntheorem t (a : Nat) : a = a := by\n  sorry\n",
     "does not elaborate, so nothing was changed: line 6: unexpected identifier"),
    (HEADER + "#eval IO.println \"hi\"\ntheorem t (a : Nat) : a = a := by\n  sorry\n",
     "the verifier refuses this file"),
])
def test_cli_fill_refuses_and_leaves_the_file(stub_env: dict[str, str], tmp_path: Path,
                                              content: str, message: str) -> None:
    path = tmp_path / "Broken.lean"
    path.write_text(content, encoding="utf-8")
    done = prover("fill", str(path), **stub_env)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert path.read_text(encoding="utf-8") == content
    assert not (tmp_path / "Broken.lean.bak").exists()


def test_cli_fill_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "Latin1.lean"
    path.write_bytes("theorem t : True := sorry -- \xe9".encode("latin-1"))
    done = prover("fill", str(path), PROVER_MODEL_BACKEND="openai",
                  PROVER_OPENAI_BASE_URL="http://127.0.0.1:9")
    assert done.returncode == 2 and "not UTF-8" in done.stderr
    missing = prover("fill", str(tmp_path / "nope.lean"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr
