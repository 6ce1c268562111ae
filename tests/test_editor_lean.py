"""The Lean side of the editor integration (lean_workspace/ProverTactic), against real Lean.

Needs the toolchain `make lean` installs (skipped, with the reason printed, where there is
none). Builds the package, then runs the Lean test files from lean_workspace/:

- ProverTacticTest/Offline.lean: `#guard_msgs` tests on recorded answers (`file:` endpoints):
  it must elaborate without any message;
- ProverTacticTest/Replay.lean: the messages of a replayed candidate are at the tactic;
- ProverTacticTest/Service.lean: the tactic against ProverTacticTest/mock_server.py over HTTP.
  What the tactic sent must be exactly the shared fixture
  ProverTacticTest/fixtures/complete_request.json (which tests/test_complete.py feeds to the
  service), with the API key in a header and never on a command line; answers are cached.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.lean

WORKSPACE = REPO / "lean_workspace"
TESTS = WORKSPACE / "ProverTacticTest"
API_KEY = "test-key-\"quoted\"-and-\\slashed"


def lake() -> str:
    return shutil.which("lake") or str(Path.home() / ".elan/bin/lake")


def run_lean(path: str, env: dict[str, str],
             timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([lake(), "env", "lean", path], cwd=WORKSPACE, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def built() -> None:
    done = subprocess.run([lake(), "build", "ProverTactic"], cwd=WORKSPACE,
                          capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout + done.stderr


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVER_")}
    env["PROVER_TACTIC_CONFIG"] = str(TESTS / "no-such-config.json")  # the user's is not read
    env.update(extra)
    return env


def mock_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mock_server", TESTS / "mock_server.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def mock(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    record = tmp_path / "requests.jsonl"
    server = mock_module().serve(record, 0, API_KEY)
    yield f"http://127.0.0.1:{server.server_address[1]}", record
    server.shutdown()


def test_offline_guard_msgs(built: None) -> None:
    # `set_option prover.endpoint` in the file wins over the environment
    done = run_lean("ProverTacticTest/Offline.lean",
                    clean_env(PROVER_ENDPOINT="http://127.0.0.1:1"))
    assert done.returncode == 0 and done.stdout.strip() == "", done.stdout + done.stderr


def test_replayed_messages_land_at_the_tactic(built: None) -> None:
    done = run_lean("ProverTacticTest/Replay.lean", clean_env())
    out = done.stdout
    positions = re.findall(r"^ProverTacticTest/Replay\.lean:(\d+):(\d+): ", out, re.MULTILINE)
    # the goal that `trace_state` logged, and the suggestion: both at `prover?` (line 14)
    assert positions == [("14", "2"), ("14", "2")], out + done.stderr
    assert "info: n : Nat" in out and "Try this: trace_state" in out, out


def manifest_mathlib() -> str | None:
    path = WORKSPACE / "lake-manifest.json"
    if not path.is_file():
        return None
    packages: list[dict[str, Any]] = json.loads(path.read_text())["packages"]
    return next((p.get("rev") for p in packages if p.get("name") == "mathlib"), None)


def logging_curl(directory: Path) -> tuple[str, Path]:
    """A `curl` first on PATH that logs its command line, then runs the real one."""
    real = shutil.which("curl")
    assert real is not None, "the tactic needs curl"
    log = directory / "curl-argv.log"
    wrapper = directory / "bin" / "curl"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {log}\nexec {real} "$@"\n')
    wrapper.chmod(0o755)
    return f"{wrapper.parent}{os.pathsep}{os.environ.get('PATH', '')}", log


def test_against_a_mock_service(built: None, mock: tuple[str, Path], tmp_path: Path) -> None:
    url, record = mock
    path, argv_log = logging_curl(tmp_path)
    env = clean_env(PROVER_ENDPOINT=url, PROVER_NUM_SAMPLES="4", PROVER_TIMEOUT_MS="20000",
                    PROVER_API_KEY=API_KEY, PATH=path)
    done = run_lean("ProverTacticTest/Service.lean", env)
    out = done.stdout
    assert "Service.lean:4:2: info: Try this: simp" in out, out + done.stderr
    assert ("Service.lean:7:2: error: prover?: the prover service refused the request (HTTP "
            "401, unauthorized: missing or wrong API key)") in out
    assert (f"Service.lean:11:2: error: prover?: no answer from the prover service at {url}"
            "/v1/complete within 6 s (prover.timeoutMs)") in out
    assert out.count("cache_probe: 1 candidate(s)") == 2
    requests = [json.loads(line) for line in record.read_text().splitlines()]
    assert all(r["auth_ok"] and r["path"] == "/v1/complete" for r in requests)
    assert all(r["content_type"] == "application/json" for r in requests)
    declarations = [r["body"]["declaration"].split(" ")[1] for r in requests]
    assert declarations == ["fixture_goal", "refused_goal", "slow_goal", "cache_probe"]  # cached
    pinned = json.loads((TESTS / "fixtures/complete_request.json").read_text(encoding="utf-8"))
    assert requests[0]["body"] == {**pinned, "mathlib_version": manifest_mathlib()}
    # the key went in a header, never on a command line
    argv = argv_log.read_text().splitlines()
    assert argv == ["-q --config -"] * 4


def test_settings_from_the_config_file(built: None, mock: tuple[str, Path],
                                       tmp_path: Path) -> None:
    url, record = mock
    config = tmp_path / "tactic.json"
    config.write_text(json.dumps({"endpoint": url, "num_samples": 3, "timeout_ms": 15000,
                                  "api_key": API_KEY}))
    done = run_lean("ProverTacticTest/ConfigFile.lean",
                    clean_env(PROVER_TACTIC_CONFIG=str(config)))
    assert "ConfigFile.lean:6:2: info: Try this: trivial" in done.stdout, done.stdout
    [request] = [json.loads(line) for line in record.read_text().splitlines()]
    assert request["auth_ok"] and request["body"]["num_samples"] == 3
    assert request["body"]["timeout"] == 15
