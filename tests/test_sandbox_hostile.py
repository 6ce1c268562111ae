"""A hostile REPL (tests/fixtures/hostile_repl.py) attacks from inside the sandbox: through the
pool, through `prover verify` and through the service's /v1/verify. Every attack must fail, and
the pool must keep answering other checks.

The caps are small (8 MB of /tmp, 4 MB files, 32 processes) so that the fill and the fork bomb
hit them quickly on a shared machine; the hostile REPL also stops itself at 200 forks and 256 MB.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from prover.lean import CheckRequest, LeanPool, Verdict
from prover.lean.launch import bwrap_works
from tests.conftest import FAKE_REPL, FIXTURES, REPO, fake_settings
from tests.fixtures.hostile_repl import encode_plan
from tests.fixtures.redis_server import RedisServer

pytestmark = pytest.mark.skipif(
    not bwrap_works(), reason="bubblewrap is missing or unusable: run `make setup`"
)

HOSTILE = FIXTURES / "hostile_repl.py"
CAPS = {"lean_tmp_mb": 8, "lean_file_mb": 4, "lean_processes": 32}
PROOF = "import Mathlib\ntheorem t : 1 = 1 := by\n  rfl{comment}\n"


@dataclass
class Target:
    """A project with secrets next to its Lean workspace, and what the attacks aim at."""

    workspace: Path
    plan: dict[str, Any]
    token: str
    canary: Path


@pytest.fixture
def target(tmp_path: Path, redis_server: RedisServer) -> Iterator[Target]:
    project = tmp_path / "project"
    workspace = project / "lean_workspace"
    workspace.mkdir(parents=True)
    (project / "docker").mkdir()
    (project / "prover.toml").write_text('api_keys = ["sk-canary-toml"]\n')
    (project / "docker/.env").write_text("REDIS_PASSWORD=canary-env\n")
    token = f"hostile-daemon-{secrets.token_hex(6)}"
    canary = Path.home() / f".prover-sandbox-canary-{secrets.token_hex(4)}"
    canary.write_text("canary-home\n")
    canary.chmod(0o644)
    plan = {
        "read": [str(canary), "/etc/shadow", str(project / "prover.toml"),
                 str(project / "docker/.env"), str(Path.home() / ".ssh/id_ed25519"),
                 str(Path.home() / ".ssh/id_rsa"), "/proc/1/environ", str(REPO / "Makefile")],
        "list": [str(Path.home()), str(project), "/home"],
        "write": [str(workspace / "escape.txt"), "/escape.txt", "/etc/escape", "/dev/escape",
                  "/dev/shm/escape", "/var/tmp/escape", str(project / "escape.txt")],
        "connect": [f"127.0.0.1:{redis_server.port}", "192.0.2.1:80"],
        "fill": {"dir": "/tmp", "max_mb": 64},
        "fsize": {"path": "/tmp/big", "mb": 6},
        "unlimit": True,
        "fork": 150,
        "daemon": token,
    }
    try:
        yield Target(workspace, plan, token, canary)
    finally:
        canary.unlink()
        for proc in survivors(token):
            proc.kill()


def hostile_cmd() -> str:
    return shlex.join([sys.executable, "-S", str(HOSTILE), "--toy", str(FAKE_REPL)])


def survivors(token: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if token in (proc.info["cmdline"] or []):
            found.append(proc)
    return found


def hostile_code(target: Target) -> str:
    return PROOF.format(comment=f" -- fake:hostile={encode_plan(target.plan)}")


def report_of(messages: list[dict[str, Any]] | list[Any]) -> dict[str, str]:
    for m in messages:
        data = m["text"] if isinstance(m, dict) else m.data
        if data.startswith("hostile: "):
            report: dict[str, str] = json.loads(data.removeprefix("hostile: "))
            return report
    raise AssertionError(f"no hostile report among {messages}")


def assert_every_attack_failed(report: dict[str, str], target: Target) -> None:
    worked = {k: v for k, v in report.items() if v.startswith("ok")}
    # A listing may show the directories the sandbox made to reach what it binds (the
    # workspace inside the project, pyenv inside root's home here), never anything else.
    for key in [k for k in worked if k.startswith("list ")]:
        listed = json.loads(worked.pop(key).removeprefix("ok: "))
        secret = {target.canary.name, ".ssh", "prover.toml", "docker", "escape.txt"}
        assert not secret & set(listed), (key, listed)
    assert not worked, f"attacks that worked from inside the sandbox: {worked}"
    assert "ENOSPC" in report["fill"] or "No space" in report["fill"], report["fill"]
    assert int(report["fill"].rsplit(" after ", 1)[1].split()[0]) <= CAPS["lean_tmp_mb"]
    assert "File too large" in report["fsize"], report["fsize"]
    forked = int(report["fork"].rsplit(" after ", 1)[1])
    assert forked < CAPS["lean_processes"], report["fork"]
    assert not (target.workspace / "escape.txt").exists()
    assert not Path("/escape.txt").exists()


def settings_for(target: Target, **values: object) -> Any:
    return fake_settings(hostile_cmd(), lean_workers=1, lean_sandbox="bwrap",
                         lean_workspace=str(target.workspace), **CAPS, **values)


async def test_hostile_repl_in_the_pool_gets_nothing_and_the_pool_keeps_serving(
        target: Target) -> None:
    async with LeanPool(settings_for(target)) as pool:
        result = await pool.check(CheckRequest(code=hostile_code(target)))
        assert_every_attack_failed(report_of(list(result.messages)), target)
        assert result.verdict is Verdict.PROVED  # the toy Lean still answered the check
        # The daemon lives only as long as its sandbox: kill the worker, and it is gone.
        crashed = await pool.check(CheckRequest(code=PROOF.format(comment=" -- fake:crash")))
        assert crashed.verdict is Verdict.SYSTEM_ERROR
        _gone, alive = psutil.wait_procs(survivors(target.token), timeout=5)
        assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE], alive
        again = await pool.check(CheckRequest(code=PROOF.format(comment="")))
        assert again.verdict is Verdict.PROVED
    assert not survivors(target.token)


async def test_unsandboxed_hostile_repl_would_succeed_so_the_test_can_fail(
        target: Target) -> None:
    """Without the sandbox the same attacks reach the secrets: the assertions above have teeth."""
    plan = {"read": [str(target.canary), str(target.workspace.parent / "prover.toml")]}
    code = PROOF.format(comment=f" -- fake:hostile={encode_plan(plan)}")
    settings = fake_settings(hostile_cmd(), lean_workers=1, lean_sandbox="none",
                             lean_workspace=str(target.workspace))
    async with LeanPool(settings) as pool:
        report = report_of(list((await pool.check(CheckRequest(code=code))).messages))
    assert all(v.startswith("ok") for v in report.values()), report


def test_hostile_repl_through_prover_verify(target: Target, tmp_path: Path) -> None:
    proof = tmp_path / "hostile.lean"
    proof.write_text(hostile_code(target))
    environ = {**os.environ, "PROVER_LEAN_REPL_CMD": hostile_cmd(), "PROVER_LEAN_WORKERS": "1",
               "PROVER_LEAN_SANDBOX": "bwrap", "PROVER_LEAN_WORKSPACE": str(target.workspace),
               **{f"PROVER_{k.upper()}": str(v) for k, v in CAPS.items()}}
    done = subprocess.run([sys.executable, "-m", "prover", "verify", str(proof), "--json"],
                          env=environ, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert_every_attack_failed(report_of(answer["messages"]), target)
    psutil.wait_procs(survivors(target.token), timeout=5)
    assert not survivors(target.token)  # the CLI's pool ended every sandbox


async def test_hostile_repl_through_the_service(target: Target) -> None:
    from server.app import create_app
    from tests.server_support import asgi_client

    app = create_app(settings_for(target, redis_url="redis://127.0.0.1:1/0"))
    async with asgi_client(app) as client:
        r = await client.post("/v1/verify", json={"code": hostile_code(target)})
        assert r.status_code == 200, r.text
        assert_every_attack_failed(report_of(r.json()["messages"]), target)
        ok = await client.post("/v1/verify", json={"code": PROOF.format(comment="")})
        assert ok.json()["verdict"] == "proved"
    psutil.wait_procs(survivors(target.token), timeout=5)
    assert not survivors(target.token)


async def test_a_check_past_its_cpu_budget_is_a_timeout_and_the_pool_goes_on(
        target: Target) -> None:
    code = PROOF.format(comment=f" -- fake:hostile={encode_plan({'burn': 30})}")
    async with LeanPool(settings_for(target, lean_timeout=60, lean_cpu_s=0.5)) as pool:
        result = await pool.check(CheckRequest(code=code))
        assert result.verdict is Verdict.TIMEOUT, result
        assert "CPU seconds" in (result.error or "") and "PROVER_LEAN_CPU_S" in result.error
        again = await pool.check(CheckRequest(code=PROOF.format(comment="")))
        assert again.verdict is Verdict.PROVED


def test_a_daemon_dies_with_the_service_that_started_its_sandbox(
        target: Target, tmp_path: Path) -> None:
    """The service itself is killed (SIGKILL, no cleanup) while a check hangs: bubblewrap's
    --die-with-parent and the PID namespace take the double-forked daemon with it."""
    plan = {"daemon": target.token}
    proof = tmp_path / "daemon.lean"
    proof.write_text(PROOF.format(comment=f" -- fake:hostile={encode_plan(plan)} fake:hang"))
    environ = {**os.environ, "PROVER_LEAN_REPL_CMD": hostile_cmd(), "PROVER_LEAN_WORKERS": "1",
               "PROVER_LEAN_SANDBOX": "bwrap", "PROVER_LEAN_WORKSPACE": str(target.workspace)}
    service = subprocess.Popen([sys.executable, "-m", "prover", "verify", str(proof)],
                               env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               cwd=REPO)
    try:
        deadline = time.monotonic() + 60
        while not survivors(target.token):  # bounded wait for the daemon to exist
            assert service.poll() is None, service.stderr.read() if service.stderr else ""
            assert time.monotonic() < deadline, "the hostile REPL never started its daemon"
            time.sleep(0.1)
        daemons = survivors(target.token)
    finally:
        service.kill()
        service.wait(timeout=20)
    _, alive = psutil.wait_procs(daemons, timeout=10)
    assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE], alive


def test_no_inherited_descriptor_reaches_the_repl_under_uvloop(target: Target) -> None:
    """uvicorn runs the service on uvloop, whose subprocesses ignore close_fds: a descriptor the
    service inherited (here a pipe at fd 250, as a supervisor might leave one) must still not
    reach the sandboxed REPL."""
    uvloop = pytest.importorskip("uvloop", reason="uvicorn's fast loop; installed with uvicorn")
    plan = {"list": ["/proc/self/fd"]}
    code = PROOF.format(comment=f" -- fake:hostile={encode_plan(plan)}")
    read_end, write_end = os.pipe()
    leaked = 250
    os.dup2(write_end, leaked, inheritable=True)

    async def listing() -> list[str]:
        async with LeanPool(settings_for(target)) as pool:
            report = report_of(list((await pool.check(CheckRequest(code=code))).messages))
        return list(json.loads(report["list /proc/self/fd"].removeprefix("ok: ")))

    try:
        fds = uvloop.run(listing())
    finally:
        for fd in (read_end, write_end, leaked):
            os.close(fd)
    assert {"0", "1", "2"} <= set(fds)  # the REPL's own pipes: the listing has teeth
    assert str(leaked) not in fds, fds


async def test_the_repl_sees_its_own_host_name_not_the_machines(target: Target) -> None:
    plan = {"read": ["/proc/sys/kernel/hostname"]}
    code = PROOF.format(comment=f" -- fake:hostile={encode_plan(plan)}")
    async with LeanPool(settings_for(target)) as pool:
        report = report_of(list((await pool.check(CheckRequest(code=code))).messages))
    seen = report["read /proc/sys/kernel/hostname"]
    assert seen.startswith("ok") and "b'lean\\n'" in seen, seen
    assert socket.gethostname() == "lean" or socket.gethostname() not in seen.split(":", 2)[2]
