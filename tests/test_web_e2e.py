"""The live-search page in headless Chromium, end to end: the real service (uvicorn on a loopback
port, API keys on), a real Redis, an in-process worker on the fake REPL and a scripted model.
`web/e2e/live_view.mjs` (playwright-core driving Debian's chromium) enters the key once, loads a
miniF2F problem by name, reads the dataset and Lean environment pickers, starts an RMaxTS search
and watches its tree grow until the proof appears, copies the proof, hovers a node, cancels a
second job, runs a sampling job, reopens the first job in a fresh tab (the tree rebuilt from the
snapshot endpoint) and feeds the view 5,000 nodes. Screenshots go to `artifacts/web/`
(git-ignored); their paths are printed.

`make setup` installs chromium (apt) and playwright-core (`npm ci` in web/); without them this
test fails and says so rather than skipping, as a green run must mean the page was tested.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from prover.dataset_catalog import CATALOG
from server.app import create_app
from server.jobs import JobStore, connect
from tests.conftest import REPO
from tests.server_support import live_server, settings, worker
from tests.web_support import SlowScripted, TreeGrower

DRIVER = REPO / "web" / "e2e" / "live_view.mjs"
ARTIFACTS = REPO / "artifacts" / "web"
KEY = "e2e-secret-key"
GROW = "theorem e2e_grow (a b : Nat) (h : a = b) : b = a := by"
STALL = "theorem e2e_stall (x : Nat) : x + 0 = x := by"
SAMPLE = "theorem e2e_sample (n : Nat) : n * 1 = n := by"
PROVE_AT = 220  # the grow job's proof comes with its 220th generation


def _tools() -> tuple[str, str]:
    chromium = os.environ.get("PROVER_CHROMIUM") or shutil.which("chromium") or ""
    node = shutil.which("node") or ""
    problems = []
    if not chromium:
        problems.append("chromium is not installed (Debian package `chromium`)")
    if not node:
        problems.append("node is not installed")
    if not (REPO / "web" / "node_modules" / "playwright-core").is_dir():
        problems.append("web/node_modules/playwright-core is missing (`npm ci` in web/)")
    if problems:
        pytest.fail("; ".join(problems) + ": run `make setup`")
    return chromium, node


@pytest.mark.timeout(300)
async def test_the_page_follows_searches_live_in_chromium(redis_url: str) -> None:
    chromium, node = _tools()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    s = settings(redis_url, api_keys=KEY, worker_jobs=2)
    gen = SlowScripted(TreeGrower({"e2e_grow": PROVE_AT}), delay=0.4,
                       slow={"e2e_stall": 0.25})
    config = {"apiKey": KEY, "chromium": chromium, "artifacts": str(ARTIFACTS),
              "grow": GROW, "stall": STALL, "sample": SAMPLE, "problem": "mathd_algebra_478"}
    app = create_app(s)
    async with live_server(app, s) as url, worker(s, gen):
        config["url"] = url
        proc = await asyncio.create_subprocess_exec(
            node, str(DRIVER), json.dumps(config), cwd=REPO / "web",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            start_new_session=True)  # its own process group: Chromium goes with it
        try:
            stdout, stderr = await asyncio.wait_for(proc.communicate(), 240)
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
        print(stderr.decode(errors="replace"))
        assert proc.returncode == 0, f"the browser script failed:\n{stderr.decode()[-4000:]}"
        seen: dict[str, Any] = json.loads(stdout.decode().strip().splitlines()[-1])
        headers = {"Authorization": f"Bearer {KEY}"}
        async with httpx.AsyncClient(base_url=url, headers=headers) as client:
            jobs = {name: (await client.get(f"/v1/jobs/{seen[name]['jobId']}")).json()
                    for name in ("grow", "stall", "sample")}
        store = JobStore(connect(redis_url))
        grow_job = await store.get(seen["grow"]["jobId"])
        await store.close()

    print(f"screenshots: {ARTIFACTS}/live-search-proved.png, live-search-sampling.png, "
          "live-search-5000-nodes.png")
    assert seen["errors"] == [], seen["errors"]
    assert seen["keyStored"] == KEY
    assert seen["problemStatement"].startswith("theorem mathd_algebra_478")
    assert seen["problemHeader"].startswith("import Mathlib")
    # every dataset the service knows is offered; the environment picker sends its choice
    assert seen["datasets"][:len(CATALOG)] == list(CATALOG)
    assert seen["leanEnvs"] == ["v4_9"]
    assert grow_job is not None and grow_job.request["lean_env"] == "v4_9"

    grow, result = seen["grow"], jobs["grow"]["result"]
    assert jobs["grow"]["status"] == "succeeded" and result["proved"] is True
    # the tree grew while the page watched: several growing counts before the result
    growing = sorted(set(grow["series"]))
    assert len([n for n in growing if n > 1]) >= 4, grow["series"]
    assert grow["series"] == sorted(grow["series"]), grow["series"]
    # every node of the search is in the view (no delta lost) and drawn
    assert grow["nodes"] == result["tree_size"] == grow["treeSize"] > 20
    assert grow["reconciled"] == "no"  # the stream alone built it: nothing to patch up
    assert grow["drawn"] == grow["nodes"] and grow["statNodes"] == f"{grow['nodes']:,}"
    assert grow["proofPath"] >= 1 and grow["verdict"] == "proved"
    assert grow["proof"] == result["proof"] == grow["clipboard"]
    assert grow["proof"].rstrip().endswith("rfl") and GROW in grow["proof"]
    assert grow["verdictTotal"] == result["samples"] <= PROVE_AT
    assert grow["tooltip"] == grow["hoveredState"] and "⊢" in grow["tooltip"]
    assert "on the proof path" in grow["tooltipHead"]

    assert jobs["stall"]["status"] == "cancelled" and seen["stallNodesBeforeCancel"] > 3
    assert seen["stall"]["status"] == "cancelled" and seen["stall"]["cancelVisible"] is False

    sample = seen["sample"]
    assert jobs["sample"]["status"] == "succeeded"
    assert jobs["sample"]["result"]["proved"] is False
    assert sample["verdictTotal"] == sample["attempts"] == 24 and sample["treeHidden"]
    assert sample["verdicts"] == ["failed 24"]

    assert [j["id"] for j in seen["jobList"][:3]] == [
        sample["jobId"], seen["stall"]["jobId"], grow["jobId"]]
    assert [j["status"] for j in seen["jobList"][:3]] == ["succeeded", "cancelled", "succeeded"]
    assert seen["late"] == {"nodes": grow["nodes"], "proofPath": grow["proofPath"],
                            "verdict": "proved"}

    big = seen["big"]
    assert big["nodes"] == 5000 and big["drawn"] == 5000
    # responsive: the whole 5,000-node tree is laid out and redrawn within a frame budget
    # (generous: a shared 2-core machine, software rendering)
    assert big["medianPanFrameMs"] < 100 and big["drawMs"] < 60, big
    for name in ("live-search-proved.png", "live-search-sampling.png",
                 "live-search-5000-nodes.png"):
        assert (ARTIFACTS / name).stat().st_size > 10_000, name


def test_the_driver_and_the_page_are_where_the_test_expects(tmp_path: Path) -> None:
    assert DRIVER.is_file()
    static = REPO / "server" / "static"
    for name in ("index.html", "app.js", "tree.js", "style.css"):
        assert (static / name).is_file(), name
    # nothing from a CDN: every script and stylesheet is served by the app itself
    html = (static / "index.html").read_text()
    assert "http://" not in html and "https://" not in html
