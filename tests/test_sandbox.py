"""What a proof running inside a worker can and cannot reach (bubblewrap is installed by setup)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from prover.lean import CheckRequest, LeanPool
from prover.lean.launch import bwrap_works
from tests.conftest import REPO, fake_settings

pytestmark = pytest.mark.skipif(
    not bwrap_works(), reason="bubblewrap is missing or unusable: run `make setup`"
)


async def probe(directive: str, **settings: object) -> list[str]:
    code = f"import Mathlib\ntheorem t : 1 = 1 := by\n  rfl -- {directive}\n"
    async with LeanPool(fake_settings(lean_workers=1, lean_sandbox="bwrap", **settings)) as pool:
        result = await pool.check(CheckRequest(code=code))
    return [m.data for m in result.messages if m.severity == "info"]


async def test_network_is_unreachable_from_a_worker() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    try:
        (answer,) = await probe(f"fake:net=127.0.0.1:{port}")
    finally:
        server.close()
    assert answer.startswith("net: blocked"), answer


async def test_file_system_is_read_only_except_a_private_tmp(tmp_path: Path) -> None:
    outside = REPO / "lean_workspace" / "sandbox-escape.txt"
    (denied,) = await probe(f"fake:write={outside}")
    assert denied.startswith("write: blocked") and not outside.exists()
    (allowed,) = await probe("fake:write=/tmp/scratch.txt")
    assert allowed == "write: ok"
    assert not Path("/tmp/scratch.txt").exists()  # the worker's /tmp is its own


async def test_secrets_in_the_environment_do_not_reach_lean(monkeypatch) -> None:
    monkeypatch.setenv("PROVER_API_KEYS", "sk-secret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "also-secret")
    (answer,) = await probe("fake:environ")
    names = json.loads(answer)
    assert "PROVER_API_KEYS" not in names and "AWS_SECRET_ACCESS_KEY" not in names
    assert "PATH" in names and names  # the REPL still gets what it needs


async def test_a_checkout_under_tmp_stays_visible_inside_the_sandbox(tmp_path: Path) -> None:
    # The sandbox's /tmp is a fresh tmpfs; a workspace or REPL living under /tmp must still work.
    workspace = Path("/tmp") / f"prover-ws-{tmp_path.name}"
    workspace.mkdir(exist_ok=True)
    fake = workspace / "fake_repl.py"
    fake.write_text((REPO / "tests/fixtures/fake_repl.py").read_text())
    try:
        cmd = f"{sys.executable} -S {fake}"
        settings = fake_settings(cmd, lean_workers=1, lean_sandbox="bwrap",
                                 lean_workspace=str(workspace))
        async with LeanPool(settings) as pool:
            result = await pool.check(CheckRequest(code="theorem t : 1 = 1 := by\n  rfl\n"))
        assert result.proved, result
    finally:
        shutil.rmtree(workspace)


def _bwrap_refusing(tmp_path: Path, flag: str) -> Path:
    """A `bwrap` on PATH that fails like an old or restricted bubblewrap when given `flag`."""
    real = shutil.which("bwrap")
    fake = tmp_path / "bin" / "bwrap"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\nfor a in "$@"; do [ "$a" = "{flag}" ] && '
                    f'{{ echo "bwrap: Unknown option {flag}" >&2; exit 1; }}; done\n'
                    f'exec {real} "$@"\n')
    fake.chmod(0o755)
    return fake.parent


def test_bwrap_mode_refuses_to_start_naming_the_restriction_that_failed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from prover.lean.launch import LeanSetupError, build_launch, sandbox_problem

    monkeypatch.setenv("PATH", f"{_bwrap_refusing(tmp_path, '--size')}:{os.environ['PATH']}")
    sandbox_problem.cache_clear()
    try:
        with pytest.raises(LeanSetupError, match=r"cannot apply a private /tmp of 256 MB"):
            build_launch(fake_settings(lean_sandbox="bwrap"))
    finally:
        sandbox_problem.cache_clear()


def test_auto_mode_without_a_full_sandbox_warns_which_protections_are_missing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from prover.lean import launch

    monkeypatch.setenv("PATH", f"{_bwrap_refusing(tmp_path, '--unshare-net')}:"
                               f"{os.environ['PATH']}")
    monkeypatch.setattr(launch, "_warned", False)
    launch.sandbox_problem.cache_clear()
    try:
        with caplog.at_level("WARNING"):
            result = launch.build_launch(fake_settings(lean_sandbox="auto"))
    finally:
        launch.sandbox_problem.cache_clear()
    assert not result.sandboxed
    text = caplog.text
    assert "WITHOUT a sandbox" in text and "no network (--unshare-net)" in text
    assert "the host's files" in text and "a cap on processes" in text


_INSIDE = """
import json, os, time
out = {"uid": os.getuid(), "gid": os.getgid(),
       "caps": [l.split()[1] for l in open("/proc/self/status") if l.startswith("CapEff")][0]}
try:
    open("/etc/shadow").read(); out["shadow"] = "read"
except OSError as e:
    out["shadow"] = type(e).__name__
for name in ("/tmp/scratch", "/escape"):
    try:
        open(name, "w").write("x"); out[name] = "written"
    except OSError as e:
        out[name] = type(e).__name__
forked = 0
try:
    for _ in range(60):
        if os.fork() == 0:
            time.sleep(2); os._exit(0)
        forked += 1
except OSError:
    pass
out["forked"] = forked
print(json.dumps(out))
"""


def test_a_service_that_is_not_root_gets_a_user_namespace_with_the_same_limits() -> None:
    """The images run the service as uid 10001: bubblewrap then builds a user namespace of its own
    (--unshare-user --uid --cap-drop ALL --disable-userns) instead of dropping to a uid with
    setpriv. Run here as `nobody` with the system Python, which that user can read."""
    import dataclasses
    import tempfile

    from prover.lean.sandbox import SANDBOX_UID, build_sandbox

    python = Path("/usr/bin/python3")
    if not python.exists():
        pytest.skip("no system /usr/bin/python3 to run as an unprivileged user")
    workspace = Path(tempfile.mkdtemp(prefix="prover-ws-", dir="/tmp"))
    workspace.chmod(0o755)
    try:
        command = [str(python), "-S", "-c", _INSIDE]
        settings = fake_settings(lean_processes=16)
        sandbox = build_sandbox(settings, command, workspace, {"PATH": "/usr/bin"}, {})
        sandbox = dataclasses.replace(sandbox, setpriv=None)
        as_nobody = {"user": 65534, "group": 65534, "extra_groups": []} if os.geteuid() == 0 \
            else {}
        done = subprocess.run(sandbox.argv(command), capture_output=True, text=True,
                              timeout=60, cwd=workspace, **as_nobody)  # type: ignore[call-overload]
    finally:
        shutil.rmtree(workspace)
    assert done.returncode == 0, done.stderr
    inside = json.loads(done.stdout)
    assert inside["uid"] == inside["gid"] == SANDBOX_UID
    assert int(inside["caps"], 16) == 0
    assert inside["shadow"] == "FileNotFoundError"
    assert inside["forked"] < 16
    assert inside["/tmp/scratch"] == "written" and inside["/escape"] == "OSError"


@pytest.mark.parametrize("values", [
    {"lean_sandbox_bind": str(Path.home())},  # a home directory, named by the operator
    {"lean_sandbox_bind": "/etc"},
    {"lean_workspace": str(REPO)},  # the checkout, with prover.toml and docker/.env
])
def test_the_sandbox_never_shows_a_home_directory_etc_or_the_project_whole(
        values: dict[str, str]) -> None:
    from prover.lean.launch import LeanSetupError, build_launch

    with pytest.raises(LeanSetupError, match="would show all of"):
        build_launch(fake_settings(lean_sandbox="bwrap", **values))


def test_the_sandbox_binds_exactly_the_files_the_command_names(tmp_path: Path) -> None:
    from prover.lean.launch import build_launch

    launch = build_launch(fake_settings(lean_sandbox="bwrap"))
    assert launch.sandbox is not None
    binds = set(launch.sandbox.binds)
    assert REPO / "tests/fixtures/fake_repl.py" in binds  # the script, not its directory
    assert not any(p in binds for p in (REPO, REPO / "tests", REPO / "tests/fixtures"))
    venv = Path(sys.executable).parent.parent
    if (venv / "pyvenv.cfg").is_file():
        assert venv in binds  # the venv the interpreter lives in
    assert not any(Path.home() == p or Path.home().is_relative_to(p) for p in binds)


def test_a_lean_toolchain_is_bound_from_lake_env_and_nothing_around_it(tmp_path: Path) -> None:
    """Real Lean: the REPL binary in the workspace, the toolchain and packages `lake env` names
    (here under a fake elan home); neither the elan home nor anything beside it."""
    from prover.lean.sandbox import build_sandbox

    elan = tmp_path / "elan"
    toolchain = elan / "toolchains" / "leanprover--lean4---v4.9.0"
    (toolchain / "lib/lean").mkdir(parents=True)
    (elan / "settings.toml").write_text("secret-ish\n")
    workspace = tmp_path / "lean_workspace"
    repl = workspace / ".lake/packages/REPL/.lake/build/bin/repl"
    repl.parent.mkdir(parents=True)
    repl.write_bytes(b"\x7fELF")
    repl.chmod(0o755)
    packages = workspace / ".lake/packages/mathlib/.lake/build/lib"
    packages.mkdir(parents=True)
    lake_env = {"LEAN_SYSROOT": str(toolchain),
                "LEAN_PATH": f"{packages}:{toolchain / 'lib/lean'}",
                "LD_LIBRARY_PATH": f"{toolchain / 'lib'}:{toolchain / 'lib/lean'}"}
    sandbox = build_sandbox(fake_settings(), [str(repl)], workspace, {"PATH": "/usr/bin"},
                            lake_env)
    assert set(sandbox.binds) == {toolchain, workspace}
