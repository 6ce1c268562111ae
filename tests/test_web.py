"""The web page's service side: tree deltas reach the event stream losslessly and batched, a
late viewer continues from the Redis snapshot, sampling reports verdict counts, recent jobs are
listed per API key, dataset problems can be looked up, and the page is served with a strict
content policy. (The page itself runs in Chromium in test_web_e2e.py.)"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.app import create_app
from server.jobs import JobStore, connect
from tests.server_support import asgi_client, live_client, settings, sse_events, worker
from tests.web_support import ReplayedTree, SlowScripted, TreeGrower

HEADER = "import Mathlib\n"


def theorem(name: str) -> str:
    return f"theorem {name} (a : Nat) : a = a := by"


def body(name: str, **overrides: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"formal_statement": theorem(name), "header": HEADER,
                           "search": "rmaxts", "budget": 60, "concurrency": 4, "seed": 3}
    out.update(overrides)
    return out


async def stream(client: httpx.AsyncClient, job_id: str, after: str = "0",
                 headers: dict[str, str] | None = None) -> list[tuple[str, dict[str, Any]]]:
    events = []
    async with client.stream("GET", f"/v1/jobs/{job_id}/events", params={"after": after},
                             headers=headers) as r:
        assert r.status_code == 200, await r.aread()
        async for event_id, data in sse_events(r):
            if event_id is not None:
                events.append((event_id, data))
    return events


def deltas_of(events: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    return [d for _, e in events if e["type"] == "tree" for d in e["deltas"]]


async def test_every_tree_delta_reaches_the_stream_batched(redis_url: str) -> None:
    s = settings(redis_url, worker_jobs=1)
    gen = SlowScripted(TreeGrower(), delay=0.002)
    app = create_app(s)
    async with live_client(app, s) as client, worker(s, gen):
        r = await client.post("/v1/prove", json=body("grow", budget=150))
        job_id = r.json()["job_id"]
        events = await asyncio.wait_for(stream(client, job_id), 60)
        result = events[-1][1]["result"]
        assert result["proved"] is False and result["samples"] == 150
        deltas = deltas_of(events)
        # one delta per sample, plus the whole tree when the search started: none dropped
        assert len(deltas) == result["samples"] + 1
        assert deltas[0]["reset"] is True and [n["id"] for n in deltas[0]["new_nodes"]] == [0]
        assert not any(d.get("reset") for d in deltas[1:])
        tree_events = [e for _, e in events if e["type"] == "tree"]
        assert 1 < len(tree_events) < len(deltas)  # batched, yet spread over the search
        view = ReplayedTree()
        for delta in deltas:
            view.apply(delta)
        assert view.orphans == 0
        assert len(view.nodes) == result["tree_size"] > 50
        assert sorted(view.nodes) == list(range(result["tree_size"]))
        # the tree event precedes the progress event written with it; progress carries verdicts
        progress = [e for _, e in events if e["type"] == "progress"]
        assert progress[-1]["samples"] == 150 and progress[-1]["tree_size"] == len(view.nodes)
        assert sum(progress[-1]["verdicts"].values()) == 150

        # the snapshot in Redis is the same tree, with the latest statistics of every node
        live = (await client.get(f"/v1/jobs/{job_id}/tree")).json()
        assert live["status"] == "succeeded" and live["search"] == "rmaxts"
        assert live["event_id"] == [i for i, e in events if e["type"] == "tree"][-1]
        snapshot = ReplayedTree()
        snapshot.apply(live["tree"])
        assert snapshot.nodes == view.nodes and snapshot.stats == view.stats
        assert live["progress"]["verdicts"] == progress[-1]["verdicts"]
        assert live["result"] == result


async def test_a_late_viewer_continues_from_the_snapshot_and_sees_the_proof(
        redis_url: str) -> None:
    s = settings(redis_url, worker_jobs=1)
    gen = SlowScripted(TreeGrower({"late": 45}), delay=0.002, hold_at=30)
    app = create_app(s)
    async with live_client(app, s) as client, worker(s, gen):
        job_id = (await client.post("/v1/prove", json=body("late", budget=500))).json()[
            "job_id"]
        await asyncio.wait_for(gen.holding.wait(), 30)
        await asyncio.sleep(0.8)  # the writes of the samples before the hold have landed
        mid = (await client.get(f"/v1/jobs/{job_id}/tree")).json()
        assert mid["status"] == "running" and mid["event_id"] != "0"
        late = ReplayedTree()
        late.apply(mid["tree"])
        seen_mid = len(late.nodes)
        assert seen_mid > 5
        gen.release.set()
        rest = await asyncio.wait_for(stream(client, job_id, after=mid["event_id"]), 60)
        for delta in deltas_of(rest):
            late.apply(delta)
        full = ReplayedTree()
        for delta in deltas_of(await stream(client, job_id)):
            full.apply(delta)
        result = rest[-1][1]["result"]
        assert result["proved"] is True
        assert late.orphans == 0 and len(late.nodes) == result["tree_size"] > seen_mid
        assert late.nodes == full.nodes and late.stats == full.stats
        assert late.proof_path and late.proof_path == full.proof_path
        assert late.proof_path[0] == 0 and set(late.proof_path) <= set(late.nodes)
        final = (await client.get(f"/v1/jobs/{job_id}/tree")).json()
        assert final["tree"]["proof_path"] == late.proof_path


async def test_sampling_reports_verdict_counts_and_has_no_tree(redis_url: str) -> None:
    s = settings(redis_url, worker_jobs=1)
    gen = SlowScripted(TreeGrower())
    app = create_app(s)
    async with live_client(app, s) as client, worker(s, gen):
        job_id = (await client.post("/v1/prove", json=body(
            "sample", search="sampling", budget=6, concurrency=2))).json()["job_id"]
        events = await asyncio.wait_for(stream(client, job_id), 30)
        assert not [e for _, e in events if e["type"] == "tree"]
        progress = [e for _, e in events if e["type"] == "progress"]
        assert progress[-1]["verdicts"] == {"failed": 6}
        live = (await client.get(f"/v1/jobs/{job_id}/tree")).json()
        assert live["tree"] is None and live["event_id"] == "0"
        assert live["search"] == "sampling" and live["progress"]["verdicts"] == {"failed": 6}


async def test_tree_writes_are_fenced_and_a_reset_replaces_the_snapshot(redis_url: str) -> None:
    store = JobStore(connect(redis_url), ttl_s=3600)
    try:
        await store.ensure_group()
        job, _ = await store.submit("prove", body("fenced"))
        [(msg, job_id)] = await store.next_messages("w1", 1, claim_idle_ms=60_000, block_ms=200)
        lease = await store.start(msg, job_id, "w1")
        assert lease is not None
        progress = {"samples": 1, "budget": 60, "tree_size": 2}
        root = {"reset": True, "expanded": None, "reward": None, "proof_path": None,
                "new_nodes": [{"id": 0, "parent": None, "state": "⊢ a = a", "depth": 0}],
                "stats": [[0, 0.0, 0.0]]}
        step = {"expanded": 0, "reward": 1.0, "proof_path": None, "stats": [[0, 1.0, 1.0]],
                "new_nodes": [{"id": 1, "parent": 0, "state": "⊢ a = a [after: simp]",
                               "depth": 1}]}
        assert await store.report_tree(lease, progress, [root, step])
        _, event_id, snap = await store.live_view(job.id) or (None, "", None)
        assert snap is not None and [n["id"] for n in snap["new_nodes"]] == [0, 1]
        assert snap["stats"] == [[0, 1.0, 1.0]] and snap["expanded"] == 0
        events = [e async for e in _events(store, job.id)]
        assert [e["type"] for _, e in events][-2:] == ["tree", "progress"]
        assert events[-2][0] == event_id
        # a search that starts again (resumed elsewhere) sends the whole tree: it replaces
        assert await store.report_tree(lease, progress, [root])
        _, _, snap = await store.live_view(job.id) or (None, "", None)
        assert snap is not None and [n["id"] for n in snap["new_nodes"]] == [0]
        # once the job is cancelled, a late write changes nothing
        await store.cancel(job.id)
        assert not await store.report_tree(lease, progress, [step])
        _, _, snap = await store.live_view(job.id) or (None, "", None)
        assert snap is not None and len(snap["new_nodes"]) == 1
        assert await store.client.pttl(store.tree_key(job.id)) > 0  # expires with the job
    finally:
        await store.close()


async def _events(store: JobStore, job_id: str) -> Any:
    key = store.events_key(job_id)
    for raw_id, fields in await store.client.xrange(key):
        yield raw_id.decode(), json.loads(fields[b"data"])


async def test_recent_jobs_are_listed_newest_first_for_their_own_key(redis_url: str) -> None:
    s = settings(redis_url, api_keys="key-a,key-b")
    a = {"Authorization": "Bearer key-a"}
    b = {"Authorization": "Bearer key-b"}
    async with asgi_client(create_app(s)) as client:
        ids = []
        for i in range(3):
            r = await client.post("/v1/prove", json=body(f"a{i}"), headers=a)
            ids.append(r.json()["job_id"])
        other = (await client.post("/v1/prove", json=body("b0"), headers=b)).json()["job_id"]
        # a replayed idempotent submission is not listed twice
        for _ in range(2):
            await client.post("/v1/prove", json=body("a3"), headers={**a, "Idempotency-Key": "x"})

        listed = (await client.get("/v1/jobs", params={"limit": 3}, headers=a)).json()["jobs"]
        assert [j["formal_statement"] for j in listed] == [
            theorem("a3"), theorem("a2"), theorem("a1")]
        assert listed[1]["job_id"] == ids[2]
        first = listed[0]
        assert first["status"] == "queued" and first["search"] == "rmaxts"
        assert first["budget"] == 60 and first["proved"] is None
        assert first["progress"] == {"samples": 0, "budget": 60, "tree_size": 0}
        assert [j["job_id"] for j in (await client.get("/v1/jobs", headers=b)).json()[
            "jobs"]] == [other]
        assert (await client.get("/v1/jobs")).status_code == 401
        assert (await client.get("/v1/jobs", params={"limit": 0}, headers=a)).status_code == 422
        await client.delete(f"/v1/jobs/{ids[0]}", headers=a)
        everything = (await client.get("/v1/jobs", headers=a)).json()["jobs"]
        assert len(everything) == 4 and everything[-1]["status"] == "cancelled"


async def test_without_keys_everyone_sees_every_job(redis_url: str) -> None:
    s = settings(redis_url)
    async with asgi_client(create_app(s), client=("10.0.0.1", 1)) as one:
        job_id = (await one.post("/v1/prove", json=body("shared"))).json()["job_id"]
    async with asgi_client(create_app(s), client=("10.0.0.2", 1)) as two:
        jobs = (await two.get("/v1/jobs")).json()["jobs"]
        assert [j["job_id"] for j in jobs] == [job_id]


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    rows = [
        {"name": "alpha_one", "split": "valid", "header": "import Mathlib\n",
         "informal_prefix": "/-- one -/\n", "goal": "⊢ 1 = 1",
         "formal_statement": "theorem alpha_one : (1 : Nat) = 1 := by\n"},
        {"name": "beta", "split": "test", "header": "import Mathlib\n", "informal_prefix": "",
         "formal_statement": "theorem beta (x : Nat) : x + 0 = x := by\n"},
        {"name": "beta", "split": "test", "header": "import Mathlib\n", "informal_prefix": "",
         "formal_statement": "theorem beta (x : Nat) : 0 + x = x := by\n"},
    ]
    (tmp_path / "toy.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    monkeypatch.setenv("PROVER_DATA_DIR", str(tmp_path))
    return tmp_path


async def test_dataset_problems_can_be_searched_and_looked_up(redis_url: str,
                                                              data_dir: Path) -> None:
    async with asgi_client(create_app(settings(redis_url))) as client:
        found = (await client.get("/v1/problems", params={"dataset": "toy", "q": "BET"})).json()
        assert found["total"] == 2
        assert [p["name"] for p in found["problems"]] == ["beta#1", "beta#2"]
        by_text = (await client.get("/v1/problems", params={"dataset": "toy",
                                                            "q": "0 + x"})).json()
        assert [p["name"] for p in by_text["problems"]] == ["beta#2"]
        valid = (await client.get("/v1/problems", params={"dataset": "toy",
                                                          "split": "valid"})).json()
        assert [p["name"] for p in valid["problems"]] == ["alpha_one"]
        one = (await client.get("/v1/problems/toy/beta%232")).json()
        assert one["formal_statement"].startswith("theorem beta (x : Nat) : 0 + x")
        alpha = (await client.get("/v1/problems/toy/alpha_one")).json()
        assert alpha["informal_prefix"] == "/-- one -/\n" and alpha["goal"] == "⊢ 1 = 1"
        missing = await client.get("/v1/problems/toy/alpha_on")
        assert missing.status_code == 404 and "alpha_one" in missing.json()["error"]["message"]
        ambiguous = await client.get("/v1/problems/toy/beta")
        assert ambiguous.status_code == 404 and "beta#1" in ambiguous.json()["error"]["message"]
        assert (await client.get("/v1/problems", params={"dataset": "nope"})).status_code == 404
        for path_like in ("../toy", "/etc/passwd", "toy.jsonl"):
            r = await client.get("/v1/problems", params={"dataset": path_like})
            assert r.status_code == 422, path_like


async def test_the_dataset_picker_lists_every_dataset_the_service_knows(
        redis_url: str, data_dir: Path) -> None:
    """The published benchmarks by their names (fetched on first use when not on disk), then
    the data directory's own files; a catalog file on disk is listed once, by its name."""
    from prover.dataset_catalog import CATALOG

    (data_dir / CATALOG["minif2f-recent"].file).write_text((data_dir / "toy.jsonl").read_text())
    async with asgi_client(create_app(settings(redis_url))) as client:
        listed = (await client.get("/v1/datasets")).json()["datasets"]
        by_name = {d["name"]: d for d in listed}
        assert [d["name"] for d in listed] == [*CATALOG, "toy"]
        assert by_name["minif2f-recent"] == {"name": "minif2f-recent", "on_disk": True,
                                             "lean_env": "v4_24"}
        assert by_name["putnambench"]["on_disk"] is False
        assert by_name["toy"] == {"name": "toy", "on_disk": True, "lean_env": None}
        # every name listed is one /v1/problems takes
        r = await client.get("/v1/problems", params={"dataset": "minif2f-recent", "q": "beta"})
        assert r.status_code == 200 and r.json()["total"] == 2


async def test_the_shared_minif2f_problems_are_served(redis_url: str) -> None:
    from prover.datasets import data_dir

    if not (data_dir() / "minif2f.jsonl").is_file():
        pytest.fail(f"{data_dir()}/minif2f.jsonl is missing (shared/data/benchmarks)")
    async with asgi_client(create_app(settings(redis_url))) as client:
        r = await client.get("/v1/problems", params={"dataset": "minif2f",
                                                     "q": "mathd_algebra_478"})
        assert [p["name"] for p in r.json()["problems"]] == ["mathd_algebra_478"]
        p = (await client.get("/v1/problems/minif2f/mathd_algebra_478")).json()
        assert p["formal_statement"].startswith("theorem mathd_algebra_478")
        assert p["header"].startswith("import Mathlib")


async def test_the_page_is_served_with_a_strict_policy_and_no_key(redis_url: str) -> None:
    s = settings(redis_url, api_keys="secret")
    async with asgi_client(create_app(s)) as client:
        page = await client.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "connect-src 'self'" in policy
        assert "unsafe-inline" not in policy
        assert page.headers["x-content-type-options"] == "nosniff"
        assert '<script type="module" src="/static/app.js">' in page.text
        for name, kind in (("app.js", "javascript"), ("tree.js", "javascript"),
                           ("style.css", "text/css")):
            r = await client.get(f"/static/{name}")
            assert r.status_code == 200 and kind in r.headers["content-type"], name
        assert (await client.get("/static/../web.py")).status_code == 404
        assert (await client.get("/v1/jobs")).status_code == 401
        spec = (await client.get("/openapi.json")).json()
        assert {"/v1/jobs", "/v1/jobs/{job_id}/tree", "/v1/problems",
                "/v1/datasets"} <= set(spec["paths"])
        events = spec["paths"]["/v1/jobs/{job_id}/events"]["get"]["responses"]["200"]
        assert "`tree`" in events["description"]


async def test_a_finished_jobs_tree_events_are_dropped_once_readers_had_time(
        redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import server.worker

    monkeypatch.setattr(server.worker, "COMPACT_EVENTS_AFTER_S", 0.3)
    s = settings(redis_url, worker_jobs=1)
    app = create_app(s)
    async with live_client(app, s) as client, worker(s, SlowScripted(TreeGrower())):
        job_id = (await client.post("/v1/prove", json=body("compact", budget=40))).json()[
            "job_id"]
        live = await asyncio.wait_for(stream(client, job_id), 30)
        assert deltas_of(live), "a live reader gets the tree events"
        store = JobStore(connect(redis_url))
        try:
            # unfinished jobs are never compacted
            running, _ = await store.submit("prove", body("other"))
            assert await store.drop_tree_events(running.id) == 0
            for _ in range(100):  # bounded wait for the worker's delayed clean-up
                replay = await stream(client, job_id)
                if not deltas_of(replay):
                    break
                await asyncio.sleep(0.1)
        finally:
            await store.close()
        assert not deltas_of(replay)
        assert [e["type"] for _, e in replay][-1] == "result"
        assert [e for _, e in replay if e["type"] != "tree"] == [
            e for _, e in live if e["type"] != "tree"]
        # the snapshot still has the whole tree
        snapshot = ReplayedTree()
        snapshot.apply((await client.get(f"/v1/jobs/{job_id}/tree")).json()["tree"])
        full = ReplayedTree()
        for delta in deltas_of(live):
            full.apply(delta)
        assert snapshot.nodes == full.nodes and len(full.nodes) == live[-1][1]["result"][
            "tree_size"]
