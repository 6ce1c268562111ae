"""Tests of tests/fixtures/fake_repl.py, the scriptable toy Lean REPL, driven with raw bytes."""
import contextlib
import importlib.util
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import TRANSCRIPTS

FAKE = Path(__file__).resolve().parent / "fixtures" / "fake_repl.py"
# Processes start with -S (no site setup: the fake is stdlib-only) to keep the suite fast.


def frame(*reqs):
    return "".join(json.dumps(r, ensure_ascii=False) + "\n\n" for r in reqs).encode()


def fake_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAKE_REPL_")}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run(data, timeout=10, cwd=None, **env):
    if not isinstance(data, bytes):
        data = frame(*data)
    return subprocess.run([sys.executable, "-S", str(FAKE)], input=data, capture_output=True,
                          timeout=timeout, cwd=cwd, env=fake_env(**env))


def responses(stdout):
    text = stdout.decode()
    assert text == "" or text.endswith("\n\n")
    return [json.loads(chunk) for chunk in text.split("\n\n")[:-1]]


def ask(*reqs, **env):
    p = run(reqs, **env)
    assert p.returncode == 0, p.stderr
    assert p.stderr == b""
    return responses(p.stdout)


class Repl:
    """An interactive fake REPL process with a stdout reader thread."""

    def __init__(self, cwd=None, **env):
        self.p = subprocess.Popen([sys.executable, "-S", str(FAKE)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd,
                                  env=fake_env(**env), start_new_session=True)
        self.lines = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in iter(self.p.stdout.readline, b""):
            self.lines.put(line)
        self.lines.put(None)

    def send(self, req):
        self.p.stdin.write(frame(req))
        self.p.stdin.flush()

    def recv_raw(self, timeout=5.0):
        got, deadline = [], time.monotonic() + timeout
        while True:
            line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            if line is None:
                raise EOFError(b"".join(got))
            got.append(line)
            if line == b"\n":
                return b"".join(got)

    def ask(self, req, timeout=5.0):
        self.send(req)
        return json.loads(self.recv_raw(timeout))

    def close(self):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.p.pid, signal.SIGKILL)
        self.p.wait(timeout=5)
        for f in (self.p.stdin, self.p.stdout, self.p.stderr):
            f.close()


@pytest.fixture
def repl_factory():
    made = []

    def make(**kw):
        made.append(Repl(**kw))
        return made[-1]

    yield make
    for r in made:
        r.close()


# ---------------------------------------------------------------------------------- framing

def test_answers_as_soon_as_the_blank_line_arrives_multiline_response(repl_factory):
    r = repl_factory()
    r.send({"cmd": "def f : Nat := by sorry"})  # stdin stays open
    raw = r.recv_raw()
    assert raw.count(b"\n") > 3 and raw.endswith(b"}\n\n")
    assert b"\n\n" not in raw[:-2]
    assert raw.startswith(b'{"sorries":\n [{"proofState": 0,\n')
    assert json.loads(raw)["env"] == 0
    assert r.ask({"cmd": "def g := 2"}) == {"env": 1}


def test_comment_requests_get_no_response():
    data = b'# a comment\n\n-- another one\n\n{"cmd": "def f := 2"}\n\n'
    assert ask_raw(data) == [{"env": 0}]


def ask_raw(data):
    p = run(data)
    assert p.returncode == 0, p.stderr
    return responses(p.stdout)


def test_lines_are_right_trimmed_and_joined_without_separator():
    # the raw line break deletes itself and the spaces before it: `by⏎sorry` -> `bysorry`
    data = (b'{"cmd": "theorem foo : 1 = 1 := by   \nsorry"}\n  \t \n'
            b'{"cmd": "example : 2 = 2 := by\n  sorry"}')
    first, second = ask_raw(data)
    assert "sorries" not in first and "messages" not in first
    assert second["sorries"][0]["pos"] == {"line": 1, "column": 23}


def test_eof_without_request_exits_0():
    p = run(b"")
    assert (p.returncode, p.stdout, p.stderr) == (0, b"", b"")


def test_invalid_json_kills_the_process_with_uncaught_exception():
    p = run(frame({"cmd": "def f := 2"}) + b'{"cmd": "def g := 3",}\n\n' + frame({"cmd": "x"}))
    assert p.returncode == 1
    assert responses(p.stdout) == [{"env": 0}]
    assert p.stderr.decode().startswith('uncaught exception: {"message"')
    assert "Could not parse JSON:\\n" in p.stderr.decode()


def test_second_blank_line_is_an_empty_request_that_kills():
    p = run(frame({"cmd": "def f := 2"}) + b"\n")
    assert p.returncode == 1 and responses(p.stdout) == [{"env": 0}]
    assert b"Could not parse JSON" in p.stderr


@pytest.mark.parametrize("req", [{"cmd": 3}, {"cmd": "x", "allTactics": "yes"},
                                 {"cmd": "x", "env": -1}, {"tactic": "simp"}, [1]])
def test_no_matching_shape_kills(req):
    p = run([req])
    assert p.returncode == 1 and p.stdout == b""
    assert b"uncaught exception:" in p.stderr
    assert b"Could not parse as a valid JSON command" in p.stderr


def test_env_null_means_no_env_and_extra_fields_are_ignored():
    assert ask({"cmd": "def f := 2", "env": None, "timeout": 5}) == [{"env": 0}]


# ---------------------------------------------------------------------------------- toy Lean

def test_env_ids_increment_and_failures_allocate_nothing():
    out = ask({"cmd": "import Mathlib"}, {"cmd": "def a := 1", "env": 0},
              {"cmd": "def b := 1", "env": 9}, {"cmd": "def c := 1", "env": 0},
              {"pickleTo": "unused", "env": 7})
    assert out == [{"env": 0}, {"env": 1}, {"message": "Unknown environment."}, {"env": 2},
                   {"message": "Unknown environment."}]


@pytest.mark.parametrize("style,text", [("old", "declaration uses 'sorry'"),
                                        ("new", "declaration uses `sorry`")])
def test_sorry_and_warning_in_both_styles(style, text):
    cmd = "theorem foo (x : Nat) : x + 0 = x := by\n  sorry"
    out, step = ask({"cmd": cmd}, {"tactic": "simp", "proofState": 0}, FAKE_REPL_STYLE=style)
    assert out["sorries"] == [{"proofState": 0, "pos": {"line": 2, "column": 2},
                               "endPos": {"line": 2, "column": 7}, "goal": "⊢ x + 0 = x"}]
    assert out["messages"] == [{"severity": "warning", "pos": {"line": 1, "column": 8},
                                "endPos": {"line": 1, "column": 11}, "data": text}]
    expected = {"proofState": 1, "goals": []}
    if style == "new":
        expected["proofStatus"] = "Completed"
    assert step == expected


def test_print_axioms_normal_native_decide_user_axiom_and_sorry():
    header, out = ask({"cmd": "import Mathlib\nopen Real"}, {"env": 0, "cmd": "\n".join([
        "theorem ok : 1 + 1 = 2 := by norm_num",
        "theorem nd : 2 + 2 = 4 := by native_decide",
        "axiom cheat : False",
        "theorem bad : 1 = 2 := cheat.elim",
        "theorem sry : 1 = 2 := by admit",
        "def plain := 3",
        "#print axioms ok", "#print axioms _root_.nd", "#print axioms bad", "#print axioms sry",
        "#print axioms plain", "#print axioms nope"])})
    assert header == {"env": 0}
    data = [(m["severity"], m["data"]) for m in out["messages"]]
    assert data == [
        ("warning", "declaration uses 'sorry'"),
        ("info", "'ok' depends on axioms: [Classical.choice, Quot.sound, propext]"),
        ("info", "'nd' depends on axioms: [Classical.choice, Lean.ofReduceBool, Quot.sound, "
                 "propext]"),
        ("info", "'bad' depends on axioms: [Classical.choice, Quot.sound, cheat, propext]"),
        ("info", "'sry' depends on axioms: [Classical.choice, Quot.sound, propext, sorryAx]"),
        ("info", "'plain' does not depend on any axioms"),
        ("error", "unknown constant 'nope'")]
    assert out["messages"][1]["pos"] == {"line": 7, "column": 0}


def test_check_prints_canonical_signature():
    cmd = ("theorem t (x : Nat)   (h : 0 < x) :\n    x ≠ 0 := by omega\n"
           "set_option pp.all true in\n#check @_root_.t\n#check @t\n#check @missing")
    out = ask({"cmd": cmd}, FAKE_REPL_STYLE="old")[0]
    assert [m["data"] for m in out["messages"]] == [
        "@t : (x : Nat) (h : 0 < x) : x ≠ 0", "@t : (x : Nat) (h : 0 < x) : x ≠ 0",
        "unknown identifier 'missing'"]
    assert out["messages"][0]["pos"] == {"line": 4, "column": 0}
    assert ask({"cmd": "#check @missing"}, FAKE_REPL_STYLE="new")[0]["messages"][0]["data"] == \
        "Unknown identifier `missing`"


def test_namespaces_name_declarations_and_carry_over_to_later_commands():
    header, out = ask({"cmd": "import Mathlib\nnamespace A.B\nsection S\n"
                              "axiom helper : 1 = 1"},
                      {"env": 0, "cmd": "\n".join([
                          "theorem t : 2 = 2 := by exact helper",
                          "theorem _root_.top : 3 = 3 := by rfl",
                          "theorem C.d : 4 = 4 := by rfl",
                          "end S",
                          "#print axioms _root_.A.B.t", "#print axioms _root_.t",
                          "#check @_root_.A.B.C.d", "#check @t", "#print axioms top",
                          "end B", "end",
                      ])})
    assert header == {"env": 0}
    data = [(m["severity"], m["data"]) for m in out["messages"]]
    assert data == [
        ("info", "'A.B.t' depends on axioms: [A.B.helper, Classical.choice, Quot.sound, "
                 "propext]"),  # `helper` found in the open namespace
        ("error", "unknown constant 't'"),
        ("info", "@A.B.C.d : 4 = 4"),
        ("info", "@t : 2 = 2"),  # resolved in the open namespace A.B
        ("info", "'top' depends on axioms: [Classical.choice, Quot.sound, propext]"),
        ("error", "invalid 'end', name is missing (expected A)"),
    ]


def test_errors_still_add_the_declaration_with_sorry_ax():
    cmd = ("theorem a : 1 < 2 := by\n  linarith [fail]\ntheorem b : P := by\n  fake_unsolved\n"
           "theorem a : 0 = 0 := rfl\n#print axioms a\n#print axioms b")
    out = ask({"cmd": cmd})[0]
    assert [(m["severity"], m["data"], m["pos"]["line"]) for m in out["messages"]] == [
        ("error", "linarith failed to find a contradiction", 2),
        ("error", "unsolved goals\n⊢ P", 3),
        ("error", "'a' has already been declared", 5),
        ("info", "'a' depends on axioms: [Classical.choice, Quot.sound, propext, sorryAx]", 6),
        ("info", "'b' depends on axioms: [Classical.choice, Quot.sound, propext, sorryAx]", 7)]
    assert out["messages"][1]["pos"] == {"line": 3, "column": 17}


def test_header_imports_and_import_errors():
    bad, later, junk = ask({"cmd": "import Mathlib\nimport FooBar\ntheorem x : True := trivial"},
                           {"cmd": "import Mathlib", "env": 0},
                           {"cmd": "Here is the proof:\ntheorem y : True := trivial"})
    assert bad["messages"] == [{"severity": "error", "pos": {"line": 2, "column": 0},
                                "endPos": None, "data": "unknown module prefix 'FooBar'"}]
    assert later["messages"][0]["data"] == \
        "invalid 'import' command, it must be used in the beginning of the file"
    assert junk["messages"][0]["data"] == "unexpected identifier; expected command"


def test_comments_are_ignored_and_exit_stops():
    cmd = ("/-- doc with sorry and fail -/\ntheorem c : True := by\n  -- sorry fail\n"
           "  /- nested /- sorry -/ -/ trivial\n#exit\ntheorem d : True := sorry")
    out = ask({"cmd": cmd})[0]
    assert out == {"env": 0}


def test_all_tactics_entries_are_deterministic():
    out = ask({"cmd": "theorem t (n : Nat) : n + 0 = n := by\n  induction n\n  simp\n  omega",
               "allTactics": True})[0]
    assert [(t["tactic"], t["proofState"], t["goals"]) for t in out["tactics"]] == [
        ("induction n", 0, "⊢ n + 0 = n"), ("simp", 1, "⊢ n + 0 = n [after: induction n]"),
        ("omega", 2, "⊢ n + 0 = n [after: induction n; simp]")]
    assert out["tactics"][0]["pos"] == {"line": 2, "column": 2}
    assert out["tactics"][0]["endPos"] == {"line": 2, "column": 13}
    assert out["tactics"][0]["usedConstants"] == []


def test_tactic_requests():
    out = ask({"cmd": "example : 1 = 1 := by sorry"}, {"tactic": "rfl", "proofState": 7},
              {"tactic": "linarith [fail]", "proofState": 0}, {"tactic": "rfl", "proofState": 0},
              {"tactic": "rfl", "proofState": 0}, FAKE_REPL_STYLE="new")
    assert out[1:] == [{"message": "Unknown proof state."},
                       {"message": "Lean error:\n<input>:1:0: linarith failed"},
                       {"proofState": 1, "goals": [], "proofStatus": "Completed"},
                       {"proofState": 2, "goals": [], "proofStatus": "Completed"}]


def test_pickles_round_trip(tmp_path):
    out = ask({"cmd": "import Mathlib\ntheorem p : 1 = 1 := by sorry"},
              {"pickleTo": "e.olean", "env": 0}, {"pickleTo": "s.olean", "proofState": 0},
              {"pickleTo": "x.olean", "proofState": 9}, {"unpickleEnvFrom": "e.olean"},
              {"unpickleProofStateFrom": "s.olean", "env": 1},
              {"cmd": "#check @p", "env": 1}, FAKE_REPL_STYLE="new", cwd=tmp_path)
    assert out[1] == {"env": 0}
    assert out[2] == {"proofState": 1, "goals": ["⊢ 1 = 1"],
                      "proofStatus": "Incomplete: open goals remain"}
    assert out[3] == {"message": "Unknown proof State."}
    assert out[4] == {"env": 1}
    assert out[5]["proofState"] == 2 and out[5]["goals"] == ["⊢ 1 = 1"]
    assert out[6]["messages"][0]["data"] == "@p : 1 = 1"
    p = run([{"unpickleEnvFrom": "missing.olean"}], cwd=tmp_path)
    assert p.returncode == 1 and p.stderr.startswith(b"uncaught exception: ")


def test_path_requests_are_relative_to_cwd(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "f.lean").write_text("theorem q : True := by\n  sorry\n")
    out = ask({"path": "sub/f.lean", "allTactics": True}, {"path": "nope.lean"}, cwd=tmp_path)
    assert out[0]["sorries"][0]["pos"] == {"line": 2, "column": 2}
    assert out[1] == {"message": "no such file or directory (error code: 2, nope.lean)"}


# ---------------------------------------------------------------------------------- directives

def test_sleep_directive(repl_factory):
    r = repl_factory()
    t0 = time.monotonic()
    assert r.ask({"cmd": "-- fake:sleep=0.3\ndef f := 1"}) == {"env": 0}
    assert time.monotonic() - t0 >= 0.3


def test_hang_directive_never_answers(repl_factory):
    r = repl_factory()
    r.send({"cmd": "def f := 1 -- fake:hang"})
    with pytest.raises(queue.Empty):
        r.recv_raw(timeout=0.4)
    assert r.p.poll() is None


def test_crash_directive():
    p = run([{"cmd": "def f := 1"}, {"cmd": "-- fake:crash\ndef g := 1"}, {"cmd": "x"}])
    assert p.returncode == 137
    assert p.stdout.startswith(b'{"env": 0}\n\n{"env":') and not p.stdout.endswith(b"\n\n")


def test_die_directive():
    p = run([{"cmd": "-- fake:die"}])
    assert (p.returncode, p.stdout) == (1, b"")
    assert p.stderr == b"uncaught exception: simulated failure\n"


def test_abort_directive():
    p = run([{"cmd": "-- fake:abort"}])
    assert p.returncode == -signal.SIGABRT and p.stdout == b""
    assert b"Stack overflow detected. Aborting." in p.stderr


def test_garbage_directive_then_continues():
    p = run([{"cmd": "-- fake:garbage"}, {"cmd": "def f := 1"}])
    assert p.returncode == 0
    garbage, rest = p.stdout.split(b"\n\n", 1)
    assert garbage.startswith(b"PANIC at ")
    with pytest.raises(ValueError):
        json.loads(garbage)
    assert responses(rest) == [{"env": 0}]


def _rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
@pytest.mark.parametrize("word", ["oom", "leak"])
def test_oom_and_leak_directives_keep_memory(repl_factory, word):
    r = repl_factory()
    r.ask({"cmd": "def f := 1"})
    before = _rss_kib(r.p.pid)
    assert r.ask({"cmd": f"-- fake:{word}=64", "env": 0}) == {"env": 1}
    assert r.ask({"cmd": "def g := 1", "env": 0}) == {"env": 2}
    assert _rss_kib(r.p.pid) - before >= 60 * 1024


def test_net_directive_ok_and_blocked():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    try:
        open_port = server.getsockname()[1]
        cmd = f"-- fake:net=127.0.0.1:{open_port}\n-- fake:net=127.0.0.1:{closed_port}"
        out = ask({"cmd": cmd})[0]
    finally:
        server.close()
    ok, blocked = out["messages"]
    assert ok["data"] == "net: ok" and ok["severity"] == "info"
    assert ok["pos"] == {"line": 1, "column": 3}
    assert blocked["data"].startswith("net: blocked: ConnectionRefusedError")


def test_write_directive(tmp_path):
    target = tmp_path / "w.txt"
    out = ask({"cmd": f"-- fake:write={target}\n-- fake:write={tmp_path}/no/such/dir/x"})
    ok, blocked = out[0]["messages"]
    assert ok["data"] == "write: ok" and target.exists()
    assert blocked["data"].startswith("write: blocked: FileNotFoundError")


def test_environ_directive():
    out = ask({"cmd": "-- fake:environ"}, FAKE_REPL_MARKER_X="1")[0]
    keys = json.loads(out["messages"][0]["data"])
    assert "FAKE_REPL_MARKER_X" in keys and keys == sorted(keys)


def test_spawn_directive(repl_factory):
    r = repl_factory()
    data = r.ask({"cmd": "-- fake:spawn"})["messages"][0]["data"]
    pid = int(data.split()[1])
    try:
        assert data == f"spawned {pid}"
        assert os.getpgid(pid) == os.getpgid(r.p.pid)  # killed with the group
    finally:
        os.kill(pid, signal.SIGKILL)


# ---------------------------------------------------------------------------------- env vars

def test_stats_file_and_import_delay(tmp_path):
    stats = tmp_path / "stats"
    t0 = time.monotonic()
    out = ask({"cmd": "import Mathlib\nimport Aesop"}, {"cmd": "def f := 1", "env": 0},
              {"cmd": "def g := 1"}, FAKE_REPL_STATS=stats, FAKE_REPL_IMPORT_DELAY=0.2)
    assert time.monotonic() - t0 >= 0.2
    assert out == [{"env": 0}, {"env": 1}, {"env": 2}]
    lines = stats.read_text().splitlines()
    pid = lines[0].split()[1]
    assert lines == [f"start {pid}", f"import {pid} Mathlib,Aesop"]


def test_cmd_delay():
    t0 = time.monotonic()
    ask({"cmd": "def f := 1"}, {"cmd": "def g := 1"}, FAKE_REPL_CMD_DELAY=0.15)
    assert time.monotonic() - t0 >= 0.3


def test_startup_crash_hang_and_delay(repl_factory):
    p = run([{"cmd": "def f := 1"}], FAKE_REPL_STARTUP="crash")
    assert (p.returncode, p.stdout) == (1, b"")
    assert p.stderr == b"uncaught exception: startup failure\n"
    r = repl_factory(FAKE_REPL_STARTUP="hang")
    r.send({"cmd": "def f := 1"})
    with pytest.raises(queue.Empty):
        r.recv_raw(timeout=0.3)
    t0 = time.monotonic()
    assert ask({"cmd": "def f := 1"}, FAKE_REPL_STARTUP="0.2") == [{"env": 0}]
    assert time.monotonic() - t0 >= 0.2


# ---------------------------------------------------------------------------------- rendering

def test_pretty_printer_matches_every_recorded_response():
    d = TRANSCRIPTS
    if not d.is_dir():
        pytest.skip("transcript directory not found (set PROVER_TRANSCRIPTS_DIR)")
    spec = importlib.util.spec_from_file_location("fake_repl", FAKE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    count = 0
    for f in sorted(d.glob("*.expected.out")):
        for chunk in f.read_text(encoding="utf-8").split("\n\n")[:-1]:
            assert mod.LeanJson.pretty(json.loads(chunk)) == chunk, f.name
            count += 1
    assert count > 100


def test_runs_as_an_executable_via_its_shebang():
    assert os.access(FAKE, os.X_OK)
    p = subprocess.run([str(FAKE)], input=frame({"cmd": "def f := 1"}), capture_output=True,
                       timeout=10, env=fake_env())
    assert (p.returncode, p.stdout) == (0, b'{"env": 0}\n\n')


def test_a_signature_may_mention_only_what_is_declared_before_it():
    """Lean reads a file top to bottom: a statement naming a definition the same text declares
    later does not elaborate, while one declared earlier (in the header's env or the command)
    is found, and its axioms reach the theorem through the type."""
    header, out = ask({"cmd": "import Mathlib\nabbrev ans : Nat := sorry"},
                      {"env": 0, "cmd": "\n".join([
                          "theorem early : later = 1 := by rfl",
                          "def later : Nat := 1",
                          "theorem late : later = 1 := by rfl",
                          "theorem uses_ans : ans = 1 := by rfl",
                          "#print axioms late", "#print axioms uses_ans",
                      ])})
    assert [(m["severity"], m["data"]) for m in header["messages"]] == [
        ("warning", "declaration uses 'sorry'")]
    assert [(m["severity"], m["data"], m["pos"]["line"]) for m in out["messages"]] == [
        ("error", "unknown identifier 'later'", 1),
        ("info", "'late' depends on axioms: [Classical.choice, Quot.sound, propext]", 5),
        ("info", "'uses_ans' depends on axioms: [Classical.choice, Quot.sound, propext, "
                 "sorryAx]", 6)]
