"""`prover verify` as a user runs it: exit codes, JSON fields, stdin, and the pins check."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO, fake_cmd

STATEMENT = "theorem mathd_algebra_182 (y : ℂ) : 7 * (3 * y + 2) = 21 * y + 14 := by"
GOOD = f"import Mathlib\nimport Aesop\n\nopen BigOperators Real\n\n{STATEMENT}\n  ring\n"


def prover(*args: str, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "PROVER_LEAN_REPL_CMD": fake_cmd(), **env}
    return subprocess.run(
        [sys.executable, "-m", "prover", *args], input=stdin, env=environ,
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )


def test_verify_json_proved(tmp_path: Path) -> None:
    f = tmp_path / "p.lean"
    f.write_text(GOOD)
    done = prover("verify", str(f), "--statement", STATEMENT, "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert set(out) == {
        "verdict", "messages", "sorries", "axioms", "rejection", "error", "time_s", "cached"
    }
    assert out["verdict"] == "proved" and out["rejection"] is None
    assert set(out["axioms"]) <= {"propext", "Classical.choice", "Quot.sound"}


def test_verify_from_stdin_with_a_changed_statement_is_rejected() -> None:
    changed = GOOD.replace("21 * y + 14", "21 * y + 15")
    done = prover("verify", "-", "--statement", STATEMENT, "--json", stdin=changed)
    assert done.returncode == 1
    out = json.loads(done.stdout)
    assert out["verdict"] == "rejected" and "not the statement" in out["rejection"]


def test_verify_human_output_names_file_line_and_verdict(tmp_path: Path) -> None:
    f = tmp_path / "bad.lean"
    f.write_text(GOOD.replace("  ring", "  ring\n  linarith fail"))
    done = prover("verify", str(f))
    assert done.returncode == 1
    assert f"{f}:8:2: error: linarith failed" in done.stdout
    assert done.stdout.strip().splitlines()[-1].startswith("failed (")


def test_verify_statement_file_and_timeout(tmp_path: Path) -> None:
    f, s = tmp_path / "slow.lean", tmp_path / "statement.lean"
    f.write_text(GOOD.replace("  ring", "  ring -- fake:hang"))
    s.write_text(STATEMENT + "\n")
    done = prover("verify", str(f), "--statement-file", str(s), "--timeout", "0.5", "--json")
    assert done.returncode == 1
    assert json.loads(done.stdout)["verdict"] == "timeout"


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    missing = prover("verify", str(tmp_path / "nope.lean"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    bad_statement = prover("verify", "-", "--statement", "1 + 1 = 2", stdin=GOOD)
    assert bad_statement.returncode == 2 and "theorem NAME" in bad_statement.stderr
    broken_cmd = prover("verify", "-", stdin=GOOD, PROVER_LEAN_REPL_CMD="/no/such/repl")
    assert broken_cmd.returncode == 2
    assert len(broken_cmd.stderr.strip().splitlines()) == 1
    assert "PROVER_LEAN_REPL_CMD" in broken_cmd.stderr


def test_lean_pins_agree_in_one_place() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts/check_lean_pins.py")],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_installed_console_script_works_outside_the_checkout(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("prover")
    assert script.exists(), "`make setup` installs the `prover` command into the venv"
    for args in (["--help"], ["prove", "--help"], ["eval", "--help"]):
        done = subprocess.run([str(script), *args], cwd=tmp_path, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
