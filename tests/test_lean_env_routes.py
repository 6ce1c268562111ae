"""`lean_env` on everything that checks besides `/v1/verify`: the results cache, the batch and
Kimina-compatible routes, tactic sessions, prover.dojo, `prover verify --batch` and the MCP
backends.

Two environments whose Leans disagree: each is a fake REPL with its own stats file, and v4_9's
Mathlib lacks the tactic `positivity` (FAKE_REPL_MISSING), so the same proof is `proved` in v4_27
and `failed` in v4_9. A route that checked in the wrong environment gives the other verdict.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

from prover.config import Settings
from prover.lean import CheckRequest, Verdict
from prover.lean.environments import LeanEnvironments
from prover.lean.results import MemoryResultCache
from server.app import create_app
from tests.conftest import fake_cmd, fake_settings
from tests.server_support import asgi_client, live_server
from tests.test_lean_environments import env_table as base_table
from tests.test_lean_environments import imports

# lean_dojo reads these when imported (prover.dojo imports it): no $HOME cache, never online.
os.environ.setdefault("CACHE_DIR", tempfile.mkdtemp(prefix="lean-dojo-cache-"))
os.environ.setdefault("DISABLE_REMOTE_CACHE", "1")

STATEMENT = "theorem t1 (a : Nat) : 0 ≤ a := by"
POSITIVITY = f"import Mathlib\n{STATEMENT}\n  positivity\n"
KNOWN = "known environments are v4_9, v4_27"


def env_table(tmp_path: Path) -> tuple[dict[str, dict[str, object]], dict[str, Path]]:
    """test_lean_environments.py's two environments, v4_9's Mathlib without `positivity`."""
    table, stats = base_table(tmp_path)
    table["v4_9"]["repl_cmd"] = fake_cmd(stats=str(stats["v4_9"]), missing="positivity")
    return table, stats


def two_envs(tmp_path: Path, **values: object) -> tuple[Settings, dict[str, Path]]:
    table, stats = env_table(tmp_path)
    return fake_settings(None, lean_envs=json.dumps(table), lean_sandbox="none", **values), stats


def refused_with_known_names(response: Any) -> None:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and KNOWN in error["message"]
    assert error["details"][0]["loc"] == ["lean_env"]


# ------------------------------------------------------------------------------ results cache


async def test_a_shared_results_cache_keeps_each_environment_s_own_verdict(
        tmp_path: Path) -> None:
    settings, stats = two_envs(tmp_path)
    shared = MemoryResultCache(100)  # one store for both, as Redis is for a deployment
    async with LeanEnvironments(settings, cache=lambda _: shared) as envs:
        first = {name: await envs.pool_for(name).check(CheckRequest(POSITIVITY, STATEMENT))
                 for name in ("v4_9", "v4_27")}
        again = {name: await envs.pool_for(name).check(CheckRequest(POSITIVITY, STATEMENT))
                 for name in ("v4_9", "v4_27")}
    assert first["v4_9"].verdict is Verdict.FAILED and first["v4_27"].verdict is Verdict.PROVED
    assert not first["v4_9"].cached and not first["v4_27"].cached  # no verdict crossed over
    assert again["v4_9"].verdict is Verdict.FAILED and again["v4_9"].cached
    assert again["v4_27"].verdict is Verdict.PROVED and again["v4_27"].cached
    assert (imports(stats["v4_9"]), imports(stats["v4_27"])) == (1, 1)


async def test_every_environment_of_the_service_shares_verdicts_through_redis(
        tmp_path: Path, redis_url: str) -> None:
    import redis.asyncio as aioredis

    settings, _ = two_envs(tmp_path, redis_url=redis_url)
    body = {"code": POSITIVITY, "statement": STATEMENT}
    async with asgi_client(create_app(settings)) as client:
        for env, verdict in (("v4_9", "failed"), ("v4_27", "proved")):
            first = (await client.post("/v1/verify", json={**body, "lean_env": env})).json()
            assert (first["verdict"], first["cached"]) == (verdict, False)
    # A second service process (another replica) finds both verdicts in Redis.
    async with asgi_client(create_app(settings)) as client:
        for env, verdict in (("v4_9", "failed"), ("v4_27", "proved")):
            hit = (await client.post("/v1/verify", json={**body, "lean_env": env})).json()
            assert (hit["verdict"], hit["cached"]) == (verdict, True)
    store = aioredis.Redis.from_url(redis_url)
    try:
        assert await store.zcard("prover:results") == 2
    finally:
        await store.aclose()


# ------------------------------------------------------------------------------ batch, Kimina


async def test_a_batch_checks_in_its_lean_env(tmp_path: Path) -> None:
    settings, stats = two_envs(tmp_path)
    items = [{"id": "p", "code": POSITIVITY, "statement": STATEMENT}]
    async with asgi_client(create_app(settings)) as client:
        new = await client.post("/v1/verify/batch", json={"items": items, "lean_env": "v4_27"})
        assert new.status_code == 200, new.text
        assert new.json()["results"][0]["verdict"] == "proved"
        assert (imports(stats["v4_9"]), imports(stats["v4_27"])) == (0, 1)
        default = await client.post("/v1/verify/batch", json={"items": items},
                                    headers={"Accept": "application/x-ndjson"})
        line = json.loads(default.text.splitlines()[0])
        assert (line["id"], line["verdict"]) == ("p", "failed")  # no lean_env: v4_9
        refused_with_known_names(await client.post(
            "/v1/verify/batch", json={"items": items, "lean_env": "v4_15"}))
        refused_with_known_names(await client.post(
            "/v1/verify/batch", json={"items": items, "lean_env": "v4_15"},
            headers={"Accept": "application/x-ndjson"}))
    assert (imports(stats["v4_9"]), imports(stats["v4_27"])) == (1, 1)  # refusals ran nothing


async def test_kimina_routes_take_lean_env_as_an_extension(tmp_path: Path) -> None:
    settings, stats = two_envs(tmp_path)
    snippet = {"id": "s", "code": POSITIVITY}
    async with asgi_client(create_app(settings)) as client:
        new = await client.post("/api/check", json={"snippets": [snippet], "lean_env": "v4_27"})
        assert new.status_code == 200, new.text
        messages = new.json()["results"][0]["response"]["messages"]
        assert not any(m["severity"] == "error" for m in messages)
        old = await client.post("/verify", json={
            "codes": [{"custom_id": "c", "proof": POSITIVITY}], "lean_env": "v4_9"})
        messages = old.json()["results"][0]["response"]["messages"]
        assert any("positivity" in m["data"] for m in messages if m["severity"] == "error")
        refused_with_known_names(await client.post(
            "/api/check", json={"snippets": [snippet], "lean_env": "v4_15"}))
        refused_with_known_names(await client.post(
            "/verify", json={"codes": [{"custom_id": "c", "code": POSITIVITY}],
                             "lean_env": "v4_15"}))
    assert (imports(stats["v4_9"]), imports(stats["v4_27"])) == (1, 1)


# ------------------------------------------------------------------------------ sessions, dojo


async def test_a_tactic_session_runs_in_its_lean_env(tmp_path: Path) -> None:
    settings, stats = two_envs(tmp_path)
    opening = {"header": "import Mathlib\n", "statement": STATEMENT}
    async with asgi_client(create_app(settings)) as client:
        sessions = {}
        for env in ("v4_9", "v4_27"):
            r = await client.post("/v1/sessions", json={**opening, "lean_env": env})
            assert r.status_code == 201, r.text
            sessions[env] = r.json()["session_id"]
        old = (await client.post(f"/v1/sessions/{sessions['v4_9']}/tactics",
                                 json={"state": 0, "tactic": "positivity"})).json()
        assert "positivity" in old["error"]
        new = (await client.post(f"/v1/sessions/{sessions['v4_27']}/tactics",
                                 json={"state": 0, "tactic": "positivity"})).json()
        assert new["proved"] is True and "positivity" in new["proof"]
        for sid in sessions.values():  # each found in its own environment's manager
            assert (await client.delete(f"/v1/sessions/{sid}")).status_code == 204
        gone = await client.post(f"/v1/sessions/{sessions['v4_27']}/tactics",
                                 json={"state": 0, "tactic": "rfl"})
        assert gone.status_code == 410
        assert (await client.delete("/v1/sessions/never-opened")).status_code == 404
        refused_with_known_names(await client.post(
            "/v1/sessions", json={**opening, "lean_env": "v4_15"}))
    assert imports(stats["v4_9"]) >= 1 and imports(stats["v4_27"]) >= 1


def dojo_outcomes(settings: Settings, url: str | None = None) -> dict[str | None, object]:
    """What `positivity` gives in a Dojo of each environment (and of none named)."""
    from lean_dojo import DojoInitError

    from prover.datasets import Problem
    from prover.dojo import Dojo

    problem = Problem("t1", "test", "import Mathlib\n", "", STATEMENT)
    outcomes: dict[str | None, object] = {}
    for env in ("v4_27", None):
        with Dojo(problem, settings=settings, url=url, lean_env=env) as (dojo, state):
            outcomes[env] = dojo.run_tac(state, "positivity")
    with pytest.raises(DojoInitError, match=KNOWN):
        Dojo(problem, settings=settings, url=url, lean_env="v4_15").__enter__()
    return outcomes


def test_a_local_dojo_uses_the_environment_it_names(tmp_path: Path) -> None:
    from lean_dojo import LeanError, ProofFinished

    settings, stats = two_envs(tmp_path)
    outcomes = dojo_outcomes(settings)
    assert isinstance(outcomes["v4_27"], ProofFinished)
    assert isinstance(outcomes[None], LeanError)  # the default: v4_9
    assert imports(stats["v4_9"]) >= 1 and imports(stats["v4_27"]) >= 1


async def test_a_remote_dojo_opens_its_session_in_the_environment_it_names(
        tmp_path: Path) -> None:
    import asyncio

    from lean_dojo import LeanError, ProofFinished

    settings, _ = two_envs(tmp_path)
    async with live_server(create_app(settings), settings) as url:
        outcomes = await asyncio.to_thread(dojo_outcomes, settings, url)
    assert isinstance(outcomes["v4_27"], ProofFinished)
    assert isinstance(outcomes[None], LeanError)


# ------------------------------------------------------------------------------ CLI


def test_cli_verify_batch_checks_in_lean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from prover.cli import main

    table, stats = env_table(tmp_path)
    monkeypatch.setenv("PROVER_LEAN_ENVS", json.dumps(table))
    monkeypatch.setenv("PROVER_LEAN_SANDBOX", "none")
    batch = tmp_path / "items.jsonl"
    batch.write_text(json.dumps({"id": 1, "code": POSITIVITY, "statement": STATEMENT}) + "\n")
    assert main(["verify", "--batch", str(batch), "--lean-env", "v4_27"]) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "proved"
    assert main(["verify", "--batch", str(batch)]) == 1  # the default, v4_9
    assert json.loads(capsys.readouterr().out)["verdict"] == "failed"
    assert (imports(stats["v4_9"]), imports(stats["v4_27"])) == (1, 1)
    assert main(["verify", "--batch", str(batch), "--lean-env", "v4_15"]) == 2
    assert KNOWN in capsys.readouterr().err


# ------------------------------------------------------------------------------ MCP


async def test_the_mcp_local_backend_checks_on_the_environment_s_pool(tmp_path: Path) -> None:
    from apps.mcp_server.backends import BackendError, LocalBackend, ProveSpec

    settings, stats = two_envs(tmp_path)
    backend = LocalBackend(settings)
    try:
        new = await backend.check(CheckRequest(POSITIVITY, STATEMENT), "v4_27")
        assert new.verdict is Verdict.PROVED
        assert (imports(stats["v4_9"]), imports(stats["v4_27"])) == (0, 1)
        old = await backend.check(CheckRequest(POSITIVITY, STATEMENT))
        assert old.verdict is Verdict.FAILED
        with pytest.raises(BackendError, match=KNOWN):
            await backend.check(CheckRequest(POSITIVITY, STATEMENT), "v4_15")
        # The complete tool reads the goals in the environment it names.
        from apps.mcp_server.server import _goals_at

        header = "import Mathlib\nimport Lean\n"  # a header no worker has imported yet
        goals = await _goals_at(backend, header, f"{STATEMENT}\n  ", "me", "v4_27")
        assert goals and "0 ≤ a" in goals[0]
        assert (imports(stats["v4_9"]), imports(stats["v4_27"])) == (1, 2)
    finally:
        await backend.aclose()
    from prover.problem_input import problem_from_statement

    spec = ProveSpec(problem_from_statement(STATEMENT), lean_env="v4_27")
    assert spec.job_request()["lean_env"] == "v4_27"  # what the worker searches in
    assert "lean_env" not in ProveSpec(problem_from_statement(STATEMENT)).job_request()


async def test_the_mcp_service_backend_checks_on_the_environment_s_pool(tmp_path: Path) -> None:
    from apps.mcp_server.backends import BackendError, ProveSpec, ServiceBackend
    from prover.problem_input import problem_from_statement

    settings, stats = two_envs(tmp_path)
    app = create_app(settings)
    backend = ServiceBackend(settings)
    async with asgi_client(app), backend.attached(app.state.service):
        new = await backend.check(CheckRequest(POSITIVITY, STATEMENT), "v4_27", "agent")
        old = await backend.check(CheckRequest(POSITIVITY, STATEMENT), None, "agent")
        assert (new.verdict, old.verdict) == (Verdict.PROVED, Verdict.FAILED)
        with pytest.raises(BackendError, match=KNOWN):
            await backend.check(CheckRequest(POSITIVITY, STATEMENT), "v4_15", "agent")
        with pytest.raises(BackendError, match=KNOWN):  # refused before a job is queued
            await backend.prove(ProveSpec(problem_from_statement(STATEMENT), lean_env="v4_15"),
                                "agent", lambda _: None)
    assert (imports(stats["v4_9"]), imports(stats["v4_27"])) == (1, 1)
