"""Configuration: defaults from interface.md, the TOML file, and one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from prover.config import ConfigError, Settings


def test_defaults_match_the_interface() -> None:
    s = Settings.load(environ={})
    assert s.lean_timeout == 300 and s.lean_memory_mb == 12288
    assert s.model_backend == "vllm" and s.model == "deepseek-ai/DeepSeek-Prover-V1.5-RL"
    assert s.redis_url == "redis://localhost:6379/0" and s.api_keys == ()
    assert s.lean_workspace.name == "lean_workspace" and s.lean_repl_cmd is None


def test_environment_overrides_the_config_file(tmp_path: Path) -> None:
    cfg = tmp_path / "prover.toml"
    cfg.write_text('lean_workers = 3\nPROVER_LEAN_TIMEOUT = 20\napi_keys = ["a", "b"]\n')
    s = Settings.load(environ={"PROVER_CONFIG": str(cfg), "PROVER_LEAN_WORKERS": "5"})
    assert s.lean_workers == 5 and s.lean_timeout == 20 and s.api_keys == ("a", "b")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PROVER_LEAN_WORKERS", "many"),
        ("PROVER_LEAN_WORKERS", "0"),
        ("PROVER_LEAN_TIMEOUT", "-1"),
        ("PROVER_MODEL_BACKEND", "gpt"),
        ("PROVER_LEAN_MEMORY_MB", "1.5"),
        ("PROVER_LEAN_SANDBOX", "docker"),
        ("PROVER_LEAN_SANDBOX_UID", "0"),  # the REPL must never run as root
        ("PROVER_LEAN_TMP_MB", "0"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.load(environ={name: value})


def test_cpu_budget_is_per_check_and_scales_with_each_requests_timeout() -> None:
    s = Settings.load(environ={"PROVER_LEAN_TIMEOUT": "100"})
    assert s.cpu_budget(100) == 200 and s.cpu_budget(900) == 1800  # twice the timeout
    s = Settings.load(environ={"PROVER_LEAN_TIMEOUT": "100", "PROVER_LEAN_CPU_S": "50"})
    assert s.cpu_budget(100) == 50 and s.cpu_budget(10) == 5


def test_cli_reports_a_bad_setting_in_one_line(tmp_path: Path) -> None:
    f = tmp_path / "a.lean"
    f.write_text("theorem t : True := trivial\n")
    done = subprocess.run(
        [sys.executable, "-m", "prover", "verify", str(f)],
        env={"PROVER_LEAN_WORKERS": "lots", "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "prover: PROVER_LEAN_WORKERS must be a positive integer, got 'lots'"
    ]
