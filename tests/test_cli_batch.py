"""`prover verify --batch FILE.jsonl` as a user runs it: one JSONL result per item, malformed
lines confined to their own result, a resumable `--out`, and a progress bar on a terminal."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

from tests.conftest import REPO, fake_cmd
from tests.test_cli import GOOD, STATEMENT, prover

BAD = GOOD.replace("  ring", "  linarith [fail]")
SORRY = GOOD.replace("  ring", "  sorry")


def write_jsonl(path: Path, lines: list[object]) -> None:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))


def results(path: Path) -> dict[object, dict[str, object]]:
    out = [json.loads(line) for line in path.read_text().splitlines()]
    by_id = {r["id"]: r for r in out}
    assert len(by_id) == len(out), "an id was written twice"
    return by_id


def test_batch_writes_one_result_per_item_and_resumes(tmp_path: Path) -> None:
    batch, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    first: list[object] = [
        {"id": "good", "code": GOOD, "statement": STATEMENT},
        {"id": 2, "code": BAD},
        {"id": "sorry", "code": SORRY},
        {"id": "changed", "code": GOOD.replace("21 * y + 14", "21 * y + 15"),
         "statement": STATEMENT},
        {"id": "nocode"},
        "{not json",
        "",
    ]
    write_jsonl(batch, first)
    done = prover("verify", "--batch", str(batch), "--out", str(out))
    assert done.returncode == 1, done.stderr
    got = results(out)
    assert {k: v.get("verdict") for k, v in got.items()} == {
        "good": "proved", 2: "failed", "sorry": "incomplete", "changed": "rejected",
        "nocode": None, None: None}
    assert got["nocode"]["error"]["code"] == "invalid_request"  # type: ignore[index]
    assert "line 6 is not JSON" in got[None]["error"]["message"]  # type: ignore[index]
    assert "1 failed" in done.stderr and "1 proved" in done.stderr
    assert "\r" not in done.stderr  # no progress bar when stderr is not a terminal

    # a rerun skips what is done; a new item is the only one checked
    write_jsonl(batch, [{"id": "good", "code": GOOD}, {"id": "new", "code": GOOD}])
    again = prover("verify", "--batch", str(batch), "--out", str(out))
    assert again.returncode == 0, again.stderr
    assert "skipped" in again.stderr
    assert results(out)["new"]["verdict"] == "proved" and len(results(out)) == 7

    # the first file again: its line that is not JSON was answered already, not written twice
    write_jsonl(batch, first)
    third = prover("verify", "--batch", str(batch), "--out", str(out))
    assert third.returncode == 0, third.stderr
    assert len(results(out)) == 7


def test_batch_to_stdout_and_refusals_of_the_whole_file(tmp_path: Path) -> None:
    batch = tmp_path / "in.jsonl"
    write_jsonl(batch, [{"id": i, "code": GOOD} for i in range(6)])
    done = prover("verify", "--batch", str(batch))
    assert done.returncode == 0, done.stderr
    assert sorted(json.loads(line)["id"] for line in done.stdout.splitlines()) == list(range(6))

    write_jsonl(batch, [{"id": "a", "code": GOOD}, {"id": "a", "code": BAD}])
    twice = prover("verify", "--batch", str(batch))
    assert twice.returncode == 2 and "repeated: 'a'" in twice.stderr
    missing = prover("verify", "--batch", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 2 and "cannot read the batch file" in missing.stderr
    both = prover("verify", "x.lean", "--batch", str(batch))
    assert both.returncode == 2


def test_batch_shows_a_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    batch = tmp_path / "in.jsonl"
    write_jsonl(batch, [{"id": i, "code": GOOD} for i in range(5)])
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    env = {**os.environ, "PROVER_LEAN_REPL_CMD": fake_cmd()}
    proc = subprocess.Popen([sys.executable, "-m", "prover", "verify", "--batch", str(batch),
                             "--out", str(tmp_path / "out.jsonl")], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=follower)
    os.close(follower)
    seen = b""
    with contextlib.suppress(OSError):  # EIO once the child has closed the terminal
        while chunk := os.read(leader, 4096):
            seen += chunk
    os.close(leader)
    assert proc.wait(timeout=120) == 0
    text = seen.decode(errors="replace")
    assert "5/5" in text and "proof" in text and "proved=5" in text, text
