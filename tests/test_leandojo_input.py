"""LeanDojo Benchmark 4 input (prover/leandojo.py, `prover eval --dataset leandojo:PATH`):
theorems whose repository is checked out at the commit become problems, the others are skipped
with the reason."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from prover.leandojo import DojoTheorem, find_checkout, load_benchmark, theorem_problem
from tests.conftest import REPO, fake_cmd
from tests.openai_stub import openai_stub

TOY_FILE = """import Mathlib

open Nat

theorem first_one (n : Nat) : n = n := by
  rfl

/-- A doc comment. -/
@[simp] theorem second_one (a b : Nat)
    (h : a = b) : b = a := by
  exact h.symm

theorem third_one : True := trivial

namespace Toy

section

variable (k : Nat)

/-- Namespaced, after a section variable, with a doc comment: as most of Mathlib. -/
@[simp]
theorem fourth_one : k = k := by
  rfl

end

end Toy
"""


def git_repo(path: Path) -> str:
    (path / "Toy").mkdir(parents=True)
    (path / "Toy" / "Basic.lean").write_text(TOY_FILE)
    git = ["git", "-C", str(path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "toy"], check=True)
    return subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True,
                          text=True).stdout.strip()


def row(url: str, commit: str, name: str, start: list[int] | None = None) -> dict[str, object]:
    return {"url": url, "commit": commit, "file_path": "Toy/Basic.lean", "full_name": name,
            "start": start or [1, 1], "end": [1, 1], "traced_tactics": []}


def test_a_theorem_becomes_its_file_context_and_statement(tmp_path: Path) -> None:
    commit = git_repo(tmp_path / "toyrepo")
    thm = DojoTheorem("https://github.com/someone/toyrepo", commit, "Toy/Basic.lean",
                      "second_one", start=(9, 1))
    checkout = find_checkout(thm, [tmp_path])
    assert checkout == tmp_path / "toyrepo"
    problem = theorem_problem(thm, checkout, "test")
    assert problem.header.endswith("/-- A doc comment. -/\n")
    assert "first_one" in problem.header and "second_one" not in problem.header
    assert problem.formal_statement == (
        "@[simp] theorem second_one (a b : Nat)\n    (h : a = b) : b = a := by\n")
    assert theorem_problem(DojoTheorem(thm.url, commit, thm.file_path, "third_one"),
                           checkout).formal_statement == "theorem third_one : True := by\n"
    elsewhere = DojoTheorem(thm.url, "0" * 40, thm.file_path, "second_one")
    assert "not at commit" in str(find_checkout(elsewhere, [tmp_path]))


def test_eval_proves_what_is_checked_out_and_says_what_it_skipped(tmp_path: Path) -> None:
    commit = git_repo(tmp_path / "toyrepo")
    url = "https://github.com/someone/toyrepo"
    bench = tmp_path / "random" / "test.json"
    bench.parent.mkdir()
    bench.write_text(json.dumps([
        row(url, commit, "first_one", [5, 1]),
        row(url, commit, "second_one", [9, 1]),
        row(url, commit, "Toy.fourth_one", [21, 1]),
        row("https://github.com/someone/absent", commit, "gone"),
        row(url, "f" * 40, "first_one"),
        row(url, commit, "no_such_theorem"),
    ]))
    problems, skipped = load_benchmark(f"leandojo:{bench}")
    assert [p.name for p in problems] == ["first_one", "second_one", "Toy.fourth_one"]
    reasons = {s.theorem.full_name + "@" + s.theorem.commit[:1]: s.reason for s in skipped}
    assert "not checked out locally" in reasons["gone@" + commit[0]]
    assert "not at commit" in reasons["first_one@f"]
    assert "no `theorem`/`lemma` named no_such_theorem" in reasons["no_such_theorem@" + commit[0]]

    out = tmp_path / "out"
    with openai_stub(lambda prompt: "  rfl\n```") as stub:
        env = {**os.environ, **stub.env(), "PROVER_LEAN_REPL_CMD": fake_cmd(),
               "PROVER_LEAN_WORKERS": "1", "PROVER_LEAN_SANDBOX": "none"}
        done = subprocess.run(
            [sys.executable, "-m", "prover", "eval", "--dataset", f"leandojo:{bench}",
             "--search", "sampling", "--budget", "2", "--out", str(out), "-q"],
            env=env, cwd=REPO, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["problems"] == 3 and summary["proved"] == 3  # Toy.fourth_one too
    assert "skipped gone: repository https://github.com/someone/absent" in done.stderr
    assert "3 LeanDojo theorem(s) skipped" in done.stderr
    listed = [json.loads(x) for x in (out / "skipped.jsonl").read_text().splitlines()]
    assert sorted(x["full_name"] for x in listed) == ["first_one", "gone", "no_such_theorem"]
