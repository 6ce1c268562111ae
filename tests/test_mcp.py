"""The MCP server (`prover mcp`, `/mcp` of `prover serve`) driven by the real `mcp` client.

Over stdio the server is a `python -m prover mcp` subprocess on the fake REPL and an
OpenAI-compatible stub model; over streamable HTTP it is `/mcp` of the service app on a real
uvicorn with a real Redis and an in-process worker on a scripted model. The same agent session
runs against both: list the tools, call each one, prove with progress notifications, fill a file
under an allowed root and be refused outside it, get tool errors for bad arguments. HTTP adds a
cancelled prove (its job is cancelled in Redis) and API keys.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, ClassVar

import anyio
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.types import TextResourceContents

from apps.mcp_server.command import register_worker_kinds
from apps.mcp_server.mount import mcp_addon
from prover.model.scripted import ScriptedGenerator
from server.app import create_app
from server.auth import key_identity
from server.jobs import JobStatus, JobStore
from tests.conftest import fake_cmd
from tests.openai_stub import openai_stub
from tests.server_support import HeldGenerator, live_server, settings, worker
from tests.test_cli import prover
from tests.test_fill import HEADER, model

REPO = Path(__file__).resolve().parent.parent
TOOLS = {"verify", "prove", "fill_sorries", "complete", "find_problem", "explain_verdict"}
STATEMENT = "theorem easy (a : Nat) : a + 0 = a := by"
ONE_SORRY = HEADER + f"{STATEMENT}\n  sorry\n"
PROBLEMS = [
    {"name": "toy_algebra_1", "split": "test", "informal_prefix": "",
     "formal_statement": "theorem toy_algebra_1 (x : ℝ) (h : x = 2) : x + 1 = 3 := by",
     "goal": "x : ℝ\nh : x = 2\n⊢ x + 1 = 3", "header": HEADER},
    {"name": "toy_numbers_2", "split": "valid", "informal_prefix": "",
     "formal_statement": "theorem toy_numbers_2 : Nat.gcd 4 6 = 2 := by",
     "goal": "⊢ Nat.gcd 4 6 = 2", "header": HEADER},
]


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    data = tmp_path / "data"
    data.mkdir()
    (data / "toyset.jsonl").write_text("".join(json.dumps(p) + "\n" for p in PROBLEMS),
                                       encoding="utf-8")
    monkeypatch.setenv("PROVER_DATA_DIR", str(data))
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    allowed.mkdir()
    outside.mkdir()
    (allowed / "One.lean").write_text(ONE_SORRY, encoding="utf-8")
    (outside / "Two.lean").write_text(ONE_SORRY, encoding="utf-8")
    (allowed / "escape.lean").symlink_to(outside / "Two.lean")
    return {"data": data, "allowed": allowed, "outside": outside}


def data(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content[0].text
    return dict(result.structured_content)


def tool_error(result: Any) -> str:
    assert result.is_error, result.structured_content
    return str(result.content[0].text)


async def resource(client: Client, uri: str) -> dict[str, Any]:
    (content,) = (await client.read_resource(uri)).contents
    assert isinstance(content, TextResourceContents) and content.mime_type == "application/json"
    return dict(json.loads(content.text))


async def agent_session(client: Client, allowed: Path, outside: Path) -> str:
    """What an agent does with the server; returns the prove job's id."""
    listed = (await client.list_tools()).tools
    assert {t.name for t in listed} == TOOLS
    for tool in listed:
        assert tool.description and len(tool.description) > 80, tool.name
        assert tool.input_schema["type"] == "object" and tool.input_schema["properties"]
        for name, prop in tool.input_schema["properties"].items():
            assert prop.get("description"), (tool.name, name)

    good = HEADER + f"{STATEMENT}\n  simp\n"
    answer = data(await client.call_tool("verify", {"code": good, "statement": STATEMENT}))
    assert answer["verdict"] == "proved" and answer["proved"] is True
    failed = data(await client.call_tool("verify", {"code": good.replace("simp", "simp [fail]")}))
    assert failed["verdict"] == "failed" and failed["messages"]
    advice = data(await client.call_tool("explain_verdict", {"answer": failed, "code": good}))
    assert advice["verdict"] == "failed" and advice["changes"]
    assert advice["locations"][0]["line"] == failed["messages"][0]["line"]

    # bad arguments are tool errors, and the server goes on answering
    assert "code" in tool_error(await client.call_tool("verify", {"code": 5}))
    assert "code" in tool_error(await client.call_tool("verify", {}))
    assert "default" in tool_error(await client.call_tool(
        "verify", {"code": good, "lean_env": "lean-4.30-mathlib-2026"}))
    assert "exactly one" in tool_error(await client.call_tool("prove", {"budget": 2}))
    assert "budget" in tool_error(await client.call_tool(
        "prove", {"statement": STATEMENT, "budget": 0}))
    assert "theorem" in tool_error(await client.call_tool(
        "prove", {"statement": "def x := 1", "budget": 2}))
    assert "toy_algebra_1" in tool_error(await client.call_tool(
        "prove", {"problem": "toy_algebra_9", "dataset": "toyset", "budget": 2}))

    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    proved = data(await client.call_tool(
        "prove", {"statement": STATEMENT, "search": "sampling", "budget": 4},
        progress_callback=on_progress))
    assert proved["proved"] is True and STATEMENT in proved["proof"]
    assert seen and seen[-1][0] == proved["samples"] and seen[-1][1] == 4
    assert "samples" in (seen[-1][2] or "")
    job = await resource(client, f"prover://jobs/{proved['job_id']}")
    assert job["status"] == "succeeded" and job["result"]["proved"] is True

    by_name = data(await client.call_tool(
        "prove", {"problem": "toy_numbers_2", "dataset": "toyset", "search": "rmaxts",
                  "budget": 3}))
    assert by_name["proved"] is True and "Nat.gcd 4 6 = 2" in by_name["proof"]
    tree = await resource(client, f"prover://jobs/{by_name['job_id']}/tree")
    assert tree["tree"]["new_nodes"][0]["id"] == 0

    found = data(await client.call_tool("find_problem", {"query": "gcd", "dataset": "toyset"}))
    assert [p["name"] for p in found["problems"]] == ["toy_numbers_2"]  # by statement text
    assert "give one of test, valid" in tool_error(await client.call_tool(
        "find_problem", {"query": "gcd", "dataset": "toyset", "split": "train"}))
    listing = await resource(client, "prover://datasets")
    assert {"name": "toyset", "on_disk": True} in listing["datasets"]

    line = ONE_SORRY.split("\n").index("  sorry") + 1
    candidates = data(await client.call_tool(
        "complete", {"code": ONE_SORRY, "line": line, "column": 2, "num_samples": 2}))
    assert candidates["goals"] and "a + 0 = a" in candidates["goals"][0]
    assert candidates["candidates"][0] == {**candidates["candidates"][0], "text": "simp",
                                           "verified": True, "verdict": "proved"}

    # fill: under the allowed root it writes (with a backup); elsewhere it is refused
    filled = data(await client.call_tool(
        "fill_sorries", {"path": str(allowed / "One.lean"), "search": "sampling",
                         "budget": 2}))
    assert filled["written"] is True and len(filled["proved"]) == 1 and not filled["left"]
    assert (allowed / "One.lean").read_text(encoding="utf-8") == ONE_SORRY.replace(
        "  sorry", "  simp")
    assert (allowed / "One.lean.bak").read_text(encoding="utf-8") == ONE_SORRY
    for path in (outside / "Two.lean", allowed / ".." / "outside" / "Two.lean",
                 allowed / "escape.lean"):
        message = tool_error(await client.call_tool("fill_sorries", {"path": str(path)}))
        assert "outside the allowed roots" in message and str(allowed) in message
    assert (outside / "Two.lean").read_text(encoding="utf-8") == ONE_SORRY
    dry = data(await client.call_tool(
        "fill_sorries", {"text": ONE_SORRY.replace("easy", "hard_one"), "budget": 2,
                         "search": "sampling"}))
    assert dry["written"] is False and dry["left"][0]["theorem"] == "hard_one"
    assert "/- prover fill: not proved" in dry["text"]
    return str(proved["job_id"])


# ---------------------------------------------------------------------- stdio


@pytest.fixture
def stub_env() -> Iterator[dict[str, str]]:
    with openai_stub(model) as stub:
        yield {**stub.env(), "PROVER_LEAN_WORKERS": "1", "PROVER_LEAN_SANDBOX": "none",
               "PROVER_LEAN_REPL_CMD": fake_cmd()}


async def test_stdio_agent_session(files: dict[str, Path], stub_env: dict[str, str]) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "prover", "mcp", "--allow-root", str(files["allowed"])],
        env={**os.environ, **stub_env, "PYTHONPATH": str(REPO)}, cwd=str(REPO))
    async with Client(params, read_timeout_seconds=60) as client:
        await agent_session(client, files["allowed"], files["outside"])


async def test_stdio_prove_with_best_first_search() -> None:
    """`search: bfs` (docs/tactics.md) through the tool, on the fake REPL's stairs world with a
    tactic-level model: progress per expansion, the proof checked as a whole file, the tree."""
    with openai_stub(lambda prompt: "step" if prompt.endswith(":::") else "sorry") as stub:
        params = StdioServerParameters(
            command=sys.executable, args=["-m", "prover", "mcp"],
            env={**os.environ, **stub.env(), "PROVER_LEAN_WORKERS": "1",
                 "PROVER_LEAN_SANDBOX": "none", "PROVER_LEAN_REPL_CMD": fake_cmd(),
                 "PYTHONPATH": str(REPO)}, cwd=str(REPO))
        seen: list[float] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            seen.append(progress)

        async with Client(params, read_timeout_seconds=60) as client:
            answer = data(await client.call_tool(
                "prove", {"statement": "theorem climb (n : Nat) : stairs 2",
                          "header": "import Mathlib", "search": "bfs", "budget": 5},
                progress_callback=on_progress))
            assert answer["proved"] is True and answer["samples"] == 2
            assert answer["proof"].endswith("stairs 2 := by\n  step\n  step")
            assert seen and seen[-1] == 2
            tree = await resource(client, f"prover://jobs/{answer['job_id']}/tree")
            assert tree["tree"]["proof_path"] == [0, 1, 2]
    assert stub.prompts and all(p.endswith(":::") for p in stub.prompts)


def test_prover_mcp_refuses_a_root_that_is_not_a_directory(tmp_path: Path) -> None:
    done = prover("mcp", "--allow-root", str(tmp_path / "missing"))
    assert done.returncode == 2
    assert f"--allow-root {tmp_path / 'missing'}: not a directory" in done.stderr


# ---------------------------------------------------------------------- streamable HTTP


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[JobStore]:
    s = JobStore.from_settings(settings(redis_url))
    yield s
    await s.close()


def http_client(url: str, key: str | None = None, mode: str = "auto") -> Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    transport = streamable_http_client(f"{url}/mcp", http_client=httpx2.AsyncClient(
        headers=headers, timeout=httpx2.Timeout(60, read=300)))
    return Client(transport, read_timeout_seconds=60, mode=mode)


async def test_http_agent_session(files: dict[str, Path], redis_url: str,
                                  store: JobStore) -> None:
    register_worker_kinds()
    s = settings(redis_url, worker_jobs=2)
    app = create_app(s, addons=[mcp_addon(s, [str(files["allowed"])])])
    gen = ScriptedGenerator(lambda prompt, seed: model(prompt))
    async with live_server(app, s) as url, worker(s, gen), http_client(url) as client:
        job_id = await agent_session(client, files["allowed"], files["outside"])
        async with httpx.AsyncClient(base_url=url) as api:  # the same job, over the HTTP API
            assert (await api.get(f"/v1/jobs/{job_id}")).json()["status"] == "succeeded"
    kinds = sorted(job.kind for job in await store.recent("", 50))
    assert {"prove", "complete", "fill"} <= set(kinds)


async def test_http_cancelled_prove_cancels_its_job(redis_url: str, store: JobStore) -> None:
    s = settings(redis_url, worker_jobs=1, job_claim_idle_s=3)
    app = create_app(s, addons=[mcp_addon(s)])
    gen = HeldGenerator(["  linarith [fail]"], hold_at=1)  # the second sample never comes
    async with live_server(app, s) as url, worker(s, gen), http_client(url) as client:
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.call_tool, "prove",
                          {"statement": STATEMENT, "search": "sampling", "budget": 5})
            await gen.holding.wait()
            tg.cancel_scope.cancel()
        (job,) = await store.recent("", 10)
        outcome = await asyncio.wait_for(store.outcome(job.id), 30)
        assert outcome is not None and outcome.status is JobStatus.CANCELLED
        # the worker's only slot is free again: the session goes on and a new prove finishes
        gen.replies, gen.hold_at = ["  rfl"], None
        again = data(await client.call_tool(
            "prove", {"statement": STATEMENT, "search": "sampling", "budget": 2}))
        assert again["proved"] is True


async def test_http_needs_an_api_key_when_keys_are_set(redis_url: str, store: JobStore) -> None:
    s = settings(redis_url, api_keys="k1,k2")
    app = create_app(s, addons=[mcp_addon(s)])
    gen = ScriptedGenerator(lambda prompt, seed: model(prompt))
    async with live_server(app, s) as url, worker(s, gen):
        async with httpx.AsyncClient(base_url=url) as raw:
            r = await raw.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                               headers={"Accept": "application/json, text/event-stream"})
            assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
            assert r.json()["error"]["code"] == "unauthorized"
            r = await raw.post("/mcp", json={}, headers={"Authorization": "Bearer nope"})
            assert r.status_code == 401
        async with http_client(url, key="k2") as client:
            assert {t.name for t in (await client.list_tools()).tools} == TOOLS
            proved = data(await client.call_tool(
                "prove", {"statement": STATEMENT, "search": "sampling", "budget": 2}))
        (job,) = await store.recent(key_identity("k2"), 10)  # the job belongs to the key
        assert job.id == proved["job_id"] and not await store.recent("", 10)


async def test_http_mcp_requests_count_against_the_rate_limit_and_body_limit(
        redis_url: str) -> None:
    s = settings(redis_url, api_rate_limit=3, api_max_body_kb=1)
    app = create_app(s, addons=[mcp_addon(s)])
    headers = {"Accept": "application/json, text/event-stream"}
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    async with live_server(app, s) as url, httpx.AsyncClient(base_url=url) as raw:
        big = await raw.post("/mcp", headers=headers, json={**ping, "pad": "x" * 2048})
        assert big.status_code == 413
        statuses = [(await raw.post("/mcp", headers=headers, json=ping)).status_code
                    for _ in range(3)]
        assert statuses[-1] == 429 and 429 not in statuses[:-1]  # the 413 took a token too
        assert (await raw.get("/healthz")).status_code == 200  # open, as for /v1


async def test_prover_serve_mounts_mcp_and_stops_cleanly_with_a_session_open(
        redis_url: str, files: dict[str, Path]) -> None:
    from tests.fixtures.redis_server import free_port
    from tests.test_server_serve import serve_env

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "prover", "serve", "--host", "127.0.0.1",
         "--mcp-allow-root", str(files["allowed"])],
        cwd=REPO, env=serve_env(redis_url, port), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)

    def wait_listening() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            if "Uvicorn running on" in line:
                return
        pytest.fail("prover serve exited before listening")

    try:
        await asyncio.to_thread(wait_listening)
        async with http_client(f"http://127.0.0.1:{port}", mode="legacy") as client:
            assert {t.name for t in (await client.list_tools()).tools} == TOOLS
            good = HEADER + f"{STATEMENT}\n  simp\n"
            assert data(await client.call_tool("verify", {"code": good}))["proved"] is True
            # a handshake-era client (mode="legacy") with its session open: SIGTERM still drains
            proc.send_signal(signal.SIGTERM)
            _, err = await asyncio.to_thread(proc.communicate, timeout=60)
        assert proc.returncode == 0, err
        # the SDK's own logging setup did not take over: the service logs JSON lines only
        assert all(json.loads(line)["logger"] for line in err.splitlines() if line.strip())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def test_local_cancelled_prove_stops_its_search() -> None:
    """`prover mcp`'s backend: cancelling the call cancels the model call in flight and the
    server goes on (the SDK's in-memory transport, so the test holds the generator)."""
    from apps.mcp_server.backends import LocalBackend
    from apps.mcp_server.roots import AllowedRoots
    from apps.mcp_server.server import build_server
    from prover.lean import LeanPool

    class Watched(HeldGenerator):
        cancelled = asyncio.Event()

        async def _generate(self, *args: Any) -> Any:
            try:
                return await super()._generate(*args)
            except asyncio.CancelledError:
                self.cancelled.set()
                raise

    s = settings()
    gen = Watched(["  linarith [fail]"], hold_at=1)
    async with LeanPool(s) as pool:
        backend = LocalBackend(s, generator=gen, pool=pool)
        async with Client(build_server(backend, AllowedRoots([]))) as client:
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.call_tool, "prove",
                              {"statement": STATEMENT, "search": "sampling", "budget": 5})
                await gen.holding.wait()
                tg.cancel_scope.cancel()
            await asyncio.wait_for(gen.cancelled.wait(), 30)
            gen.replies, gen.hold_at = ["  rfl"], None
            again = data(await client.call_tool(
                "prove", {"statement": STATEMENT, "search": "sampling", "budget": 2}))
            assert again["proved"] is True


async def test_local_prove_defaults_to_the_profile_s_search_and_sampling() -> None:
    """With PROVER_MODEL_PROFILE=goedel-v2 and no `search`, `prove` repairs: the chat model's
    failed proof goes back to it with Lean's error, at the profile's answer length."""
    from apps.mcp_server.backends import LocalBackend
    from apps.mcp_server.roots import AllowedRoots
    from apps.mcp_server.server import build_server
    from prover.lean import LeanPool
    from prover.model.base import SamplingParams

    def answer(prompt: Any, seed: int) -> str:
        assert not isinstance(prompt, str), "a chat profile sends conversations"
        tactic = "simp" if len(prompt) > 1 else "simp [fail]"  # a correction turn: fixed
        return f"Plan: simp.\n```lean4\n{STATEMENT}\n  {tactic}\n```"

    class Recording(ScriptedGenerator):
        params: ClassVar[list[SamplingParams]] = []

        async def _generate(self, prompts: Any, n: int, params: SamplingParams) -> Any:
            self.params.append(params)
            return await super()._generate(prompts, n, params)

    s = settings(model_profile="goedel-v2")
    gen = Recording(answer)
    notes: list[str | None] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        notes.append(message)

    async with LeanPool(s) as pool:
        backend = LocalBackend(s, generator=gen, pool=pool)
        async with Client(build_server(backend, AllowedRoots([]))) as client:
            proved = data(await client.call_tool(
                "prove", {"statement": STATEMENT, "budget": 10}, progress_callback=on_progress))
            job = await resource(client, f"prover://jobs/{proved['job_id']}")
    assert proved["proved"] is True and proved["round"] == 1 and proved["proof"].endswith("simp")
    assert job["request"]["search"] == "repair"
    # 8 first samples (Goedel-Prover-V2's), then a correction: question, answer, Lean's errors
    assert sorted(len(p) for p in gen.prompts)[-1] == 3
    assert {p.max_tokens for p in gen.params} == {32768}  # Goedel-Prover-V2's, not V1.5's
    assert any("correction round 1/2" in (n or "") for n in notes), notes
