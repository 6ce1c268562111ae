"""Several Lean environments in one service (PROVER_LEAN_ENVS): requests that name an environment
reach only its workers, unknown names are refused with the known ones listed.

Each environment is backed by its own fake REPL: `v4_9` speaks the old REPL's texts
(`declaration uses 'sorry'`), `v4_27` the new ones (backticks), and each appends its imports to
a file of its own (FAKE_REPL_STATS), so a test sees which environment's workers did the work.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from prover.cli import main
from prover.config import ConfigError, Settings
from prover.lean import CheckRequest, Verdict
from prover.lean.environments import (
    LeanEnvironments,
    UnknownEnvironment,
    environment,
    implicit_name,
)
from prover.model.scripted import ScriptedGenerator
from prover.runtime import Runtime
from server.app import create_app
from server.jobs import JobStatus, JobStore, connect
from server.worker import run_worker
from tests.conftest import REPO, fake_cmd, fake_settings
from tests.server_support import asgi_client

STATEMENT = "theorem t1 (a : Nat) : a = a := by"
SORRY = f"import Mathlib\n{STATEMENT}\n  sorry\n"
GOOD = f"import Mathlib\n{STATEMENT}\n  rfl\n"
ENVS = (("v4_9", "old", "v4.9.0-rc1"), ("v4_27", "new", "v4.27.0"))


def imports(stats: Path) -> int:
    """Header imports the environment's REPLs performed (0 if none of them ever started)."""
    if not stats.exists():
        return 0
    return sum(1 for line in stats.read_text().splitlines() if line.startswith("import "))


def env_table(tmp_path: Path) -> tuple[dict[str, dict[str, object]], dict[str, Path]]:
    table: dict[str, dict[str, object]] = {}
    stats: dict[str, Path] = {}
    for name, style, lean in ENVS:
        workspace = tmp_path / name
        workspace.mkdir()
        (workspace / "versions.env").write_text(
            f"LEAN_TOOLCHAIN=leanprover/lean4:{lean}\nMATHLIB_REV=mathlib-of-{name}\n")
        stats[name] = tmp_path / f"{name}.stats"
        table[name] = {"workspace": str(workspace), "workers": 1,
                       "repl_cmd": fake_cmd(stats=str(stats[name]), style=style)}
    return table, stats


def two_envs(tmp_path: Path, **values: object) -> tuple[Settings, dict[str, Path]]:
    table, stats = env_table(tmp_path)
    settings = fake_settings(None, lean_envs=json.dumps(table), lean_sandbox="none", **values)
    return settings, stats


# ------------------------------------------------------------------------------ configuration


def test_environments_from_json_and_from_a_toml_table(tmp_path: Path) -> None:
    table, _ = env_table(tmp_path)
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    from_env = Settings.load(environ={"PROVER_LEAN_ENVS": json.dumps(table),
                                      "PROVER_LEAN_DEFAULT_ENV": "v4_27"}, config_file=empty)
    toml = tmp_path / "prover.toml"
    lines = ['lean_default_env = "v4_27"']
    for name, entry in table.items():
        lines += [f"[lean_envs.{name}]", f'workspace = "{entry["workspace"]}"',
                  f"repl_cmd = {json.dumps(entry['repl_cmd'])}", "workers = 1"]
    toml.write_text("\n".join(lines) + "\n")
    from_toml = Settings.load(environ={}, config_file=toml)
    assert from_env.lean_envs == from_toml.lean_envs
    assert [e.name for e in from_toml.lean_envs] == ["v4_9", "v4_27"]
    assert from_toml.lean_envs[1].repl_cmd is not None and from_toml.lean_envs[1].workers == 1
    assert environment(from_toml).name == "v4_27"  # PROVER_LEAN_DEFAULT_ENV
    assert environment(from_toml, "v4_9").lean_version == "4.9.0-rc1"
    assert environment(from_toml, "default").mathlib_version == "mathlib-of-v4_27"


@pytest.mark.parametrize(("environ", "error"), [
    ({"PROVER_LEAN_ENVS": "{not json"}, "PROVER_LEAN_ENVS must be a JSON object"),
    ({"PROVER_LEAN_ENVS": '{"v4_9": {}}'}, r"PROVER_LEAN_ENVS\['v4_9'\]: \"workspace\""),
    ({"PROVER_LEAN_ENVS": '{"v4_9": {"workspace": "/x", "cmd": "y"}}'}, "unknown key"),
    ({"PROVER_LEAN_ENVS": '{"default": {"workspace": "/x"}}'}, "reserved"),
    ({"PROVER_LEAN_ENVS": '{"a": {"workspace": "/x"}}', "PROVER_LEAN_DEFAULT_ENV": "b"},
     r"PROVER_LEAN_DEFAULT_ENV='b' is not in PROVER_LEAN_ENVS \(known: a\)"),
])
def test_bad_environment_settings_name_the_variable(environ: dict[str, str], error: str,
                                                    tmp_path: Path) -> None:
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    with pytest.raises(ConfigError, match=error):
        Settings.load(environ=environ, config_file=empty)


def test_without_lean_envs_the_workspace_is_the_one_environment(tmp_path: Path) -> None:
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    settings = Settings.load(environ={}, config_file=empty)
    assert implicit_name(REPO / "lean_workspace") == "v4_9"  # from versions.env's toolchain
    env = environment(settings)
    assert env.name == "v4_9" and env.settings == settings
    assert env.lean_version == "4.9.0-rc1" and env.mathlib_version is not None
    assert environment(settings, "default") == env
    with pytest.raises(UnknownEnvironment, match=r"'v4_15': known environments are v4_9"):
        environment(settings, "v4_15")


# ------------------------------------------------------------------------------ the pools


async def test_each_environment_checks_on_its_own_workers(tmp_path: Path) -> None:
    settings, stats = two_envs(tmp_path)
    async with LeanEnvironments(settings) as envs:
        assert envs.names == ["v4_9", "v4_27"] and envs.default == "v4_9"
        new = await envs.pool_for("v4_27").check(CheckRequest(SORRY, STATEMENT))
        assert new.verdict is Verdict.INCOMPLETE
        assert any("`sorry`" in m.data for m in new.messages)  # the new REPL's text
        assert (imports(stats["v4_27"]), imports(stats["v4_9"])) == (1, 0)
        old = await envs.pool_for(None).check(CheckRequest(SORRY, STATEMENT))
        assert any("'sorry'" in m.data for m in old.messages)  # the default: v4_9
        assert (imports(stats["v4_27"]), imports(stats["v4_9"])) == (1, 1)
        with pytest.raises(UnknownEnvironment) as refused:
            envs.pool_for("v4_15")
        assert refused.value.known == ["v4_9", "v4_27"]
        assert "known environments are v4_9, v4_27" in str(refused.value)
        assert [e["name"] for e in envs.describe()] == ["v4_9", "v4_27"]
        assert envs.describe()[1]["lean_version"] == "4.27.0"


# ------------------------------------------------------------------------------ HTTP


async def test_the_api_routes_lean_env_and_refuses_unknown_ones(tmp_path: Path) -> None:
    settings, stats = two_envs(tmp_path)
    async with asgi_client(create_app(settings)) as client:
        new = await client.post("/v1/verify", json={"code": SORRY, "statement": STATEMENT,
                                                    "lean_env": "v4_27"})
        assert new.status_code == 200, new.text
        assert any("`sorry`" in m["text"] for m in new.json()["messages"])
        assert (imports(stats["v4_27"]), imports(stats["v4_9"])) == (1, 0)
        old = await client.post("/v1/verify", json={"code": SORRY, "statement": STATEMENT,
                                                    "lean_env": "v4_9"})
        assert any("'sorry'" in m["text"] for m in old.json()["messages"])  # the old REPL
        assert (imports(stats["v4_27"]), imports(stats["v4_9"])) == (1, 1)
        default = await client.post("/v1/verify", json={"code": GOOD, "statement": STATEMENT})
        assert default.json()["verdict"] == "proved"  # no lean_env: the default, v4_9
        assert (imports(stats["v4_27"]), imports(stats["v4_9"])) == (1, 1)  # header reused
        for route, body in (("/v1/verify", {"code": GOOD}),
                            ("/v1/prove", {"formal_statement": STATEMENT})):
            refused = await client.post(route, json={**body, "lean_env": "v4_15"})
            assert refused.status_code == 422, refused.text
            error = refused.json()["error"]
            assert error["code"] == "invalid_request"
            assert error["details"][0]["loc"] == ["lean_env"]
            assert "known environments are v4_9, v4_27" in error["message"]
        health = (await client.get("/healthz")).json()  # 503 here: no Redis behind this app
        assert [(e["name"], e["lean_version"], e["mathlib_version"], e["default"])
                for e in health["environments"]] == [
            ("v4_9", "4.9.0-rc1", "mathlib-of-v4_9", True),
            ("v4_27", "4.27.0", "mathlib-of-v4_27", False)]
        assert health["lean_workers"] == 2


async def test_a_prove_job_searches_in_the_environment_it_names(tmp_path: Path,
                                                                redis_url: str) -> None:
    settings, stats = two_envs(tmp_path, redis_url=redis_url, worker_jobs=1)
    store = JobStore(connect(redis_url), ttl_s=3600)
    generator = ScriptedGenerator(lambda prompt, seed: "  rfl\n```\n")
    try:
        async with Runtime(settings, generator=generator) as runtime:
            stop = asyncio.Event()
            task = asyncio.create_task(run_worker(settings, "w-envs", runtime=runtime,
                                                  stop=stop))
            try:
                results = {}
                for env in ("v4_27", "v4_15"):
                    job, _ = await store.submit("prove", {
                        "formal_statement": STATEMENT, "search": "sampling", "budget": 1,
                        "concurrency": 1, "seed": 1, "lean_env": env})
                    results[env] = await asyncio.wait_for(store.outcome(job.id), 60)
            finally:
                stop.set()
                await asyncio.wait_for(task, 30)
    finally:
        await store.close()
    proved = results["v4_27"]
    assert proved is not None and proved.result is not None and proved.result["proved"]
    assert imports(stats["v4_27"]) >= 1 and imports(stats["v4_9"]) == 0
    unknown = results["v4_15"]
    assert unknown is not None and unknown.status is JobStatus.FAILED
    assert "known environments are v4_9, v4_27" in (unknown.error or "")


# ------------------------------------------------------------------------------ CLI


def test_cli_lean_env_picks_the_environment_and_refuses_unknown_names(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    table, stats = env_table(tmp_path)
    monkeypatch.setenv("PROVER_LEAN_ENVS", json.dumps(table))
    monkeypatch.setenv("PROVER_LEAN_SANDBOX", "none")
    proof = tmp_path / "proof.lean"
    proof.write_text(SORRY)
    assert main(["verify", str(proof), "--statement", STATEMENT, "--lean-env", "v4_27",
                 "--json"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["verdict"] == "incomplete"
    assert any("`sorry`" in m["text"] for m in result["messages"])
    assert (imports(stats["v4_27"]), imports(stats["v4_9"])) == (1, 0)
    assert main(["verify", str(proof), "--lean-env", "v4_15"]) == 2
    err = capsys.readouterr().err
    assert "unknown Lean environment 'v4_15'" in err and "v4_9, v4_27" in err


# ------------------------------------------------------------------------------ pins


def test_every_shipped_environment_keeps_its_pins_in_one_file(tmp_path: Path) -> None:
    import shutil
    import subprocess
    import sys

    script = REPO / "scripts/check_lean_pins.py"
    done = subprocess.run([sys.executable, str(script), "--all"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    checked = {line.split("(")[1].split(")")[0].rsplit("/", 1)[-1]
               for line in done.stdout.splitlines()}
    assert {"lean_workspace", "v4_15", "v4_24", "v4_27", "v4_28"} <= checked
    drifted = tmp_path / "v4_27"
    shutil.copytree(REPO / "lean_workspace/envs/v4_27", drifted)
    lakefile = drifted / "lakefile.lean"
    lakefile.write_text(lakefile.read_text().replace("a3a10db0", "00000000"))
    done = subprocess.run([sys.executable, str(script), "--workspace", str(drifted)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "versions.env MATHLIB_REV=a3a10db0" in done.stderr


# ------------------------------------------------------------------------------ editor, web


def test_a_completion_is_checked_where_the_editor_s_lean_is(tmp_path: Path) -> None:
    from server.complete import CompleteRequest, completion_env

    settings, _ = two_envs(tmp_path)
    ask = {"declaration": "theorem t : True := by\n  "}
    assert completion_env(CompleteRequest(**ask, lean_version="4.27.0"), settings).name == "v4_27"
    assert completion_env(CompleteRequest(**ask, lean_version="4.9.0-rc1"),
                          settings).name == "v4_9"
    assert completion_env(CompleteRequest(**ask, lean_version="4.12.0"), settings).name == "v4_9"
    assert completion_env(CompleteRequest(**ask, lean_version="4.27.0", lean_env="v4_9"),
                          settings).name == "v4_9"
    with pytest.raises(UnknownEnvironment):
        completion_env(CompleteRequest(**ask, lean_env="v4_15"), settings)


async def test_the_web_page_gets_goals_from_the_environment_the_dataset_targets(
        tmp_path: Path) -> None:
    settings, stats = two_envs(tmp_path)
    async with asgi_client(create_app(settings)) as client:
        r = await client.get("/v1/problems/putnambench/putnam_1962_a1")
        assert r.status_code == 200, r.text
        assert "⊢" in r.json()["goal"]  # the file has none: computed by Lean
    assert (imports(stats["v4_27"]), imports(stats["v4_9"])) == (1, 0)


async def test_a_pool_passed_to_the_app_is_the_default_one_and_the_others_are_started(
        tmp_path: Path) -> None:
    from prover.lean import LeanPool

    settings, stats = two_envs(tmp_path)
    async with LeanPool(environment(settings).settings) as pool:
        async with asgi_client(create_app(settings, pool=pool)) as client:
            r = await client.post("/v1/verify", json={"code": GOOD, "statement": STATEMENT,
                                                      "lean_env": "v4_27"})
            assert r.json()["verdict"] == "proved"
            assert imports(stats["v4_27"]) == 1
        assert pool.stats()["pids"]  # the caller's pool is left running for the caller


async def test_metrics_count_the_workers_of_every_environment(tmp_path: Path) -> None:
    settings, _ = two_envs(tmp_path)
    async with asgi_client(create_app(settings)) as client:
        await client.post("/v1/verify", json={"code": GOOD, "statement": STATEMENT,
                                              "lean_env": "v4_27"})
        text = (await client.get("/metrics")).text
    assert 'prover_lean_workers{state="idle"} 2.0' in text
    assert 'prover_lean_checks_total{verdict="proved"} 1.0' in text
