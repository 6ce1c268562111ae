"""Checks that tests/fixtures/replay_repl.py replays every recorded REPL transcript faithfully."""
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import TRANSCRIPTS

REPLAY = Path(__file__).resolve().parent / "fixtures" / "replay_repl.py"


DIR = TRANSCRIPTS if TRANSCRIPTS.is_dir() else None
SKIP = "Lean REPL transcripts not found (looked in ../shared/data/repl-transcripts and " \
       "$PROVER_TRANSCRIPTS_DIR)"
NAMES = sorted(p.name[:-len(".expected.out")] for p in DIR.glob("*.expected.out")
               if (DIR / (p.name[:-len(".expected.out")] + ".in")).exists()) if DIR else []
needs_dir = pytest.mark.skipif(DIR is None, reason=SKIP)


def replay(name, data):
    # -S: the fixture is stdlib-only, and skipping site setup halves the start-up time
    return subprocess.run([sys.executable, "-S", str(REPLAY), str(DIR), name], input=data,
                          capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def replayed():
    """Every transcript replayed once, in parallel (process start-up dominates)."""
    with ThreadPoolExecutor(max_workers=2 * (os.cpu_count() or 2)) as pool:
        runs = pool.map(lambda n: replay(n, (DIR / (n + ".in")).read_bytes()), NAMES)
        return dict(zip(NAMES, runs, strict=False))


@pytest.mark.parametrize("name", NAMES or [pytest.param(None, marks=pytest.mark.skip(reason=SKIP))])
def test_replay_reproduces_transcript(name, replayed):
    p = replayed[name]
    assert p.stderr == b""
    assert p.returncode == 0
    assert p.stdout == (DIR / (name + ".expected.out")).read_bytes()


@needs_dir
def test_transcript_without_output_exits_2():
    missing = [p.stem for p in DIR.glob("*.in") if not (DIR / (p.stem + ".expected.out")).exists()]
    assert missing
    p = replay(missing[0], b"")
    assert p.returncode == 2 and b"no recorded output" in p.stderr


@needs_dir
def test_mismatch_and_overrun_exit_3():
    p = replay("dup_msg", b'{"cmd": "def f := 3"}\n\n')
    assert p.returncode == 3 and p.stderr.startswith(b"replay mismatch at request 0: expected")
    recorded = (DIR / "dup_msg.in").read_bytes()
    assert recorded.endswith(b"}\n")  # a single blank line ends its last request
    more = recorded + b'\n{"cmd": "#check f", "env": 2}\n\n'
    p = replay("dup_msg", more)
    assert p.returncode == 3 and p.stdout == (DIR / "dup_msg.expected.out").read_bytes()


@needs_dir
def test_client_style_requests_match_by_json_value():
    # one-line requests with different spacing and key order still match the recording
    p = replay("dup_msg", b'{"cmd":"def f := 2"}\n\n{"env":0,"cmd":"#check f"}\n\n')
    assert p.returncode == 0
    assert p.stdout.count(b"\n\n") == 2


@needs_dir
def test_runs_as_an_executable_via_its_shebang():
    assert os.access(REPLAY, os.X_OK)
    p = subprocess.run([str(REPLAY), str(DIR), "import_lean"], input=b'{"cmd" : "import Lean"}\n',
                       capture_output=True, timeout=10)
    assert (p.returncode, p.stdout) == (0, b'{"env": 0}\n\n')
