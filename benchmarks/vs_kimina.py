#!/usr/bin/env python3
"""Kimina Lean Server (PyPI kimina-ast-server 2.1.3) against ours, side by side on one fake REPL.

    .venv/bin/python benchmarks/vs_kimina.py [--quick] [--models flat,light]

Both servers run 8 REPLs, and every REPL is the protocol-exact fake (tests/fixtures/fake_repl.py)
with a simulated Lean cost slept per command (this machine has 2 cores), under two cost models:

- flat: a header import costs 2 s; every other command 0.3 s plus 2 ms per line;
- light: the same, except a command that checks no proof (`#print axioms`, `#check`, `#eval 1`,
  a statement with `sorry`) costs 30 ms. A command holding a proof among other things (our one
  command per proof: statement, proof and audit) costs like a proof, plus its lines.

Two loads, each sent as one burst through each server's batch API (ours: POST /v1/verify/batch;
Kimina: POST /api/check with every snippet), then as concurrent single requests (64 in flight):

- unique: 1,000 distinct proofs of distinct statements sharing one header; 10% have an error,
  10% a `sorry`;
- RL-shaped: 64 problems x 16 samples in GRPO order, about a third of the samples repeating
  another sample of their problem exactly.

Both loads carry the three cheats Kimina accepted in the issue (a weakened statement under the
asked name, a new `axiom`, `native_decide`). Ours is given each item's statement; Kimina has no
such field and judges the code alone (valid = no error message and no sorry, kimina-client's own
`is_valid`). A misclassification is a valid proof not called valid or anything else called valid.

Every run starts both servers fresh (cold REPLs, empty caches: a header import is paid inside
the run), and the runs of the two servers alternate. Kimina runs as its docs and the issue say:
Python 3.12 venv, `fastapi==0.136.3`, a no-op `prisma` module on its PYTHONPATH, prod mode with
NO_GCE_CHECK=true, its log level at WARNING (its kindest setting for speed), and REPLs started
through a `lake` shim that runs the fake REPL. The whole benchmark runs in a private network
namespace (`unshare -n`, loopback only), as Kimina's prod logging probes a cloud metadata
server. Ours runs `prover serve` unsandboxed like Kimina, with a private redis-server.

Reported per server, load, cost model and mode: proofs/s, latency p50/p99 (per request; a burst's
items all wait for the whole batch), header imports, misclassified proofs and peak RSS of the
server's process tree (ours includes redis). Human-readable lines first; the LAST line printed
is one JSON object ending with throughput_ratio_vs_kimina (RL-shaped: the lower of the cost
models and modes), unique_throughput_ratio_vs_kimina (the lower of the two cost models, and of the
modes), p99_ratio_vs_kimina (the worst over everything) and misclassified (ours, in total).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.service import api_process, pct  # noqa: E402
from tests.fixtures.peer_venv import ensure_venv  # noqa: E402
from tests.fixtures.redis_server import RedisServer, free_port  # noqa: E402

FAKE_REPL = REPO / "tests" / "fixtures" / "fake_repl.py"
KIMINA_PACKAGES = ["kimina-ast-server==2.1.3", "fastapi==0.136.3"]
REPLS = 8
IN_FLIGHT = 64  # concurrent single requests, for both servers
TIMEOUT_S = 300
HEADER = (
    "import Mathlib\nimport Aesop\n\nset_option maxHeartbeats 400000\n\n"
    "open BigOperators Real Nat Topology Rat\n\n"
)
NETNS_MARK = "PROVER_VS_KIMINA_NETNS"


# ------------------------------------------------------------------------------ loads


@dataclass(frozen=True)
class Item:
    id: str
    code: str
    statement: str
    valid: bool  # the truth: an honest, complete proof of the statement
    kind: str  # proof, error, sorry, weakened, axiom, native_decide


TACTICS = ["norm_num [h₀]", "simp only [h₀, Nat.add_comm]", "omega", "linarith [h₀]",
           "nlinarith [sq_nonneg (x - 1)]", "ring_nf", "decide", "aesop"]


def statement_of(name: str, k: int) -> str:
    return f"theorem {name} (x : ℕ) (h₀ : x = {k}) : x + {k % 7} = {k + k % 7} := by"


def proof_text(name: str, k: int, kind: str, variant: int) -> str:
    """A file for problem `name`; `variant` picks the tactic script, so samples differ."""
    rng = random.Random(f"{name}/{variant}")
    steps = [f"  {rng.choice(TACTICS)}" for _ in range(2 + rng.randrange(4))]
    stmt = statement_of(name, k)
    if kind == "error":
        steps.insert(rng.randrange(len(steps)), "  fail")  # the fake REPL's failing tactic
    elif kind == "sorry":
        steps.append("  sorry")
    elif kind == "weakened":
        return f"{HEADER}theorem {name} (x : ℕ) (h₀ : x = {k}) : True := by\n  trivial\n"
    elif kind == "axiom":
        return (f"{HEADER}axiom {name}_ax (x : ℕ) : x + {k % 7} = {k + k % 7}\n\n"
                f"{stmt}\n  exact {name}_ax x\n")
    elif kind == "native_decide":
        steps = ["  subst h₀", "  native_decide"]
    return f"{HEADER}{stmt}\n" + "\n".join(steps) + "\n"


def kind_of(index: int) -> str:
    """10% errors, 10% sorries, and one in 32 of each cheat, spread over the load."""
    if index % 10 == 3:
        return "error"
    if index % 10 == 7:
        return "sorry"
    return {5: "weakened", 16: "axiom", 27: "native_decide"}.get(index % 32, "proof")


def unique_load(n: int) -> list[Item]:
    items = []
    for i in range(n):
        name, kind = f"bench_u{i}", kind_of(i)
        items.append(Item(f"u{i}", proof_text(name, i, kind, 0), statement_of(name, i),
                          kind == "proof", kind))
    return items


def rl_load(problems: int, samples: int) -> list[Item]:
    """GRPO order: each problem's samples together; about a third repeat an earlier sample."""
    items = []
    for p in range(problems):
        name = f"bench_rl{p}"
        rng = random.Random(p)
        distinct: list[tuple[str, str]] = []
        for s in range(samples):
            if distinct and rng.random() < 1 / 3:
                code, kind = rng.choice(distinct)  # an exact repeat
            else:
                kind = kind_of(p * samples + s)
                code = proof_text(name, p, kind, s)
                distinct.append((code, kind))
            items.append(Item(f"rl{p}-{s}", code, statement_of(name, p), kind == "proof", kind))
    return items


# ------------------------------------------------------------------------------ cost models


def cost_env(model: str, scale: float) -> dict[str, str]:
    return {
        "FAKE_REPL_COST": model,
        "FAKE_REPL_IMPORT_DELAY": f"{2.0 * scale:g}",
        "FAKE_REPL_CMD_COST": f"{0.3 * scale:g}",
        "FAKE_REPL_LINE_COST": f"{0.002 * scale:g}",
        "FAKE_REPL_LIGHT_COST": f"{0.03 * scale:g}",
    }


# ------------------------------------------------------------------------------ servers


@dataclass
class Server:
    name: str
    url: str
    pids: list[int]
    stats_file: Path

    def imports(self) -> int:
        if not self.stats_file.exists():
            return 0
        return sum(1 for ln in self.stats_file.read_text().splitlines() if ln.startswith("import"))

    async def check_batch(self, client: httpx.AsyncClient, items: list[Item]) -> list[bool]:
        raise NotImplementedError

    async def check_one(self, client: httpx.AsyncClient, item: Item) -> bool:
        raise NotImplementedError


class Ours(Server):
    async def check_batch(self, client: httpx.AsyncClient, items: list[Item]) -> list[bool]:
        body = {"items": [{"id": it.id, "code": it.code, "statement": it.statement}
                          for it in items]}
        resp = await client.post(f"{self.url}/v1/verify/batch", json=body)
        resp.raise_for_status()
        results = resp.json()["results"]
        assert [r["id"] for r in results] == [it.id for it in items], "results out of order"
        return [r.get("verdict") == "proved" for r in results]

    async def check_one(self, client: httpx.AsyncClient, item: Item) -> bool:
        resp = await client.post(f"{self.url}/v1/verify",
                                 json={"code": item.code, "statement": item.statement})
        resp.raise_for_status()
        return bool(resp.json()["verdict"] == "proved")


def kimina_valid(result: dict[str, Any]) -> bool:
    """kimina-client's `is_valid`: no server error, no error message, no sorry."""
    response = result.get("response")
    if result.get("error") or not isinstance(response, dict) or "message" in response:
        return False
    messages = response.get("messages") or []
    return not any(m.get("severity") == "error" for m in messages) and not response.get("sorries")


class Kimina(Server):
    def body(self, items: list[Item]) -> dict[str, Any]:
        return {"snippets": [{"id": it.id, "code": it.code} for it in items],
                "timeout": TIMEOUT_S, "reuse": True}

    async def check_batch(self, client: httpx.AsyncClient, items: list[Item]) -> list[bool]:
        resp = await client.post(f"{self.url}/api/check", json=self.body(items))
        resp.raise_for_status()
        by_id = {r["id"]: r for r in resp.json()["results"]}
        return [kimina_valid(by_id[it.id]) for it in items]

    async def check_one(self, client: httpx.AsyncClient, item: Item) -> bool:
        resp = await client.post(f"{self.url}/api/check", json=self.body([item]))
        resp.raise_for_status()
        return kimina_valid(resp.json()["results"][0])


@contextlib.asynccontextmanager
async def our_server(work: Path, costs: dict[str, str]) -> AsyncIterator[Server]:
    stats = work / "ours.stats"
    fake = {**costs, "FAKE_REPL_STATS": str(stats)}
    repl = " ".join(["env", *(f"{k}={shlex.quote(v)}" for k, v in fake.items()),
                     sys.executable, "-S", str(FAKE_REPL)])
    empty = work / "empty.toml"
    empty.write_text("")
    redis = RedisServer(work / "redis", fsync="everysec")
    (work / "redis").mkdir()
    redis.start()
    try:
        env = {
            "PROVER_LEAN_REPL_CMD": repl,
            "PROVER_LEAN_WORKSPACE": str(REPO / "tests" / "fixtures"),
            "PROVER_LEAN_SANDBOX": "none",
            "PROVER_LEAN_WORKERS": str(REPLS),
            "PROVER_LEAN_TIMEOUT": str(TIMEOUT_S),
            "PROVER_REDIS_URL": redis.url,
            "PROVER_SERVER_PORT": str(free_port()),
            "PROVER_API_RATE_LIMIT": "100000000",
            "PROVER_MODEL_BACKEND": "openai",
            "PROVER_CONFIG": str(empty),
        }
        async with api_process(env, work / "ours.log") as url:
            api = [p.pid for p in psutil.Process().children()
                   if p.cmdline()[1:4] == ["-m", "prover", "serve"]]
            assert redis.process is not None
            yield Ours("ours", url, [*api, redis.process.pid], stats)
    finally:
        redis.stop()


def kimina_stub(work: Path) -> tuple[Path, Path]:
    """The no-op `prisma` module and the `lake` shim that starts the fake REPL."""
    stub = work / "kimina-stub"
    (stub / "prisma").mkdir(parents=True, exist_ok=True)
    (stub / "prisma" / "__init__.py").write_text(
        '"""No database: importing the real prisma runs `prisma generate` (npm install)."""\n\n'
        "class Prisma:\n"
        "    async def connect(self):\n"
        "        raise RuntimeError('no database in this benchmark')\n\n"
        "    async def disconnect(self):\n"
        "        pass\n"
    )
    shim = work / "kimina-bin"
    shim.mkdir(exist_ok=True)
    lake = shim / "lake"
    lake.write_text(f"#!/bin/sh\n# `lake env REPL`: run the fake REPL instead\n"
                    f"exec {shlex.quote(sys.executable)} -S {shlex.quote(str(FAKE_REPL))}\n")
    lake.chmod(0o755)
    (work / "mathlib4").mkdir(exist_ok=True)
    return stub, shim


@contextlib.asynccontextmanager
async def kimina_server(work: Path, venv_python: Path,
                        costs: dict[str, str]) -> AsyncIterator[Server]:
    stub, shim = kimina_stub(work)
    stats = work / "kimina.stats"
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PROVER_", "LEAN_SERVER_"))},
        **costs,
        "FAKE_REPL_STATS": str(stats),
        "PATH": f"{shim}:{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(stub),
        "NO_GCE_CHECK": "true",
        "LEAN_SERVER_HOST": "127.0.0.1",
        "LEAN_SERVER_PORT": str(port),
        "LEAN_SERVER_ENVIRONMENT": "prod",
        "LEAN_SERVER_LOG_LEVEL": "WARNING",
        "LEAN_SERVER_MAX_REPLS": str(REPLS),
        "LEAN_SERVER_SKIP_VALIDATION": "1",
        "LEAN_SERVER_REPL_PATH": str(work / "repl"),
        "LEAN_SERVER_PROJECT_DIR": str(work / "mathlib4"),
    }
    log = (work / "kimina.log").open("w")
    binary = venv_python.parent / "kimina-ast-server"
    proc = subprocess.Popen([str(binary)], cwd=work, env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as client:
            deadline = time.monotonic() + 120
            while True:  # bounded readiness wait for a process we just started
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{url}/health")).status_code == 200:
                        break
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("Kimina Lean Server did not start:\n"
                                     + (work / "kimina.log").read_text()[-3000:])
                await asyncio.sleep(0.2)
        yield Kimina("kimina", url, [proc.pid], stats)
    finally:
        proc.terminate()
        try:
            await asyncio.to_thread(proc.wait, 30)
        except subprocess.TimeoutExpired:
            proc.kill()
        for child in psutil.Process().children(recursive=True):  # REPLs in their own sessions
            if child.pid != proc.pid and "fake_repl.py" in " ".join(child.cmdline()):
                with contextlib.suppress(psutil.Error):
                    child.kill()
        log.close()


# ------------------------------------------------------------------------------ one run


def tree_rss(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(pid)
            for p in [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    total += p.memory_info().rss
    return total


async def measure(server: Server, items: list[Item], mode: str) -> dict[str, Any]:
    peak = 0

    async def sample() -> None:
        nonlocal peak
        while True:
            peak = max(peak, await asyncio.to_thread(tree_rss, server.pids))
            await asyncio.sleep(0.5)

    sampler = asyncio.ensure_future(sample())
    limits = httpx.Limits(max_connections=IN_FLIGHT, max_keepalive_connections=IN_FLIGHT)
    latencies: list[float] = []
    async with httpx.AsyncClient(timeout=None, limits=limits) as client:
        t0 = time.perf_counter()
        if mode == "batch":
            valid = await server.check_batch(client, items)
            latencies = [time.perf_counter() - t0] * len(items)
        else:
            gate = asyncio.Semaphore(IN_FLIGHT)

            async def one(item: Item) -> bool:
                async with gate:
                    started = time.perf_counter()
                    ok = await server.check_one(client, item)
                    latencies.append(time.perf_counter() - started)
                    return ok

            valid = list(await asyncio.gather(*(one(it) for it in items)))
        elapsed = time.perf_counter() - t0
    sampler.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await sampler
    wrong = [it for it, v in zip(items, valid, strict=True) if v != it.valid]
    return {
        "proofs_per_s": round(len(items) / elapsed, 2),
        "elapsed_s": round(elapsed, 2),
        "p50_s": round(pct(latencies, 0.5), 3),
        "p99_s": round(pct(latencies, 0.99), 3),
        "header_imports": server.imports(),
        "misclassified": len(wrong),
        "misclassified_kinds": sorted({it.kind for it in wrong}),
        "peak_rss_mb": round(peak / 2**20, 1),
    }


Starter = Callable[[Path, dict[str, str]], contextlib.AbstractAsyncContextManager[Server]]


async def one_run(start: Starter, items: list[Item], mode: str,
                  costs: dict[str, str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="vs-kimina-") as tmp:
        async with start(Path(tmp), costs) as server:
            return await measure(server, items, mode)


# ------------------------------------------------------------------------------ main


def ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else float("inf")


async def bench(args: argparse.Namespace, venv_python: Path) -> dict[str, Any]:
    scale = 0.1 if args.quick else 1.0
    loads = {
        "unique": unique_load(80 if args.quick else 1000),
        "rl": rl_load(8 if args.quick else 64, 16),
    }

    def kimina(work: Path, costs: dict[str, str]) -> contextlib.AbstractAsyncContextManager[Server]:
        return kimina_server(work, venv_python, costs)

    starters: dict[str, Starter] = {"kimina": kimina, "ours": our_server}
    results: dict[str, Any] = {}
    turn = 0
    for model in args.models:
        costs = cost_env(model, scale)
        for load_name, items in loads.items():
            for mode in ("batch", "singles"):
                order = ["kimina", "ours"] if turn % 2 == 0 else ["ours", "kimina"]
                turn += 1
                for who in order:  # interleaved: each pair alternates who goes first
                    got = await one_run(starters[who], items, mode, costs)
                    results.setdefault(who, {}).setdefault(model, {}).setdefault(
                        load_name, {})[mode] = got
                    print(f"{model:5} {load_name:6} {mode:7} {who:6} "
                          f"{got['proofs_per_s']:7.2f} proofs/s  p50 {got['p50_s']:.3f} s  "
                          f"p99 {got['p99_s']:.3f} s  imports {got['header_imports']:3}  "
                          f"misclassified {got['misclassified']:3} {got['misclassified_kinds']}  "
                          f"peak RSS {got['peak_rss_mb']} MB", flush=True)

    def ratios(load_name: str, key: str) -> list[float]:
        return [ratio(results["ours"][m][load_name][mode][key],
                      results["kimina"][m][load_name][mode][key])
                for m in args.models for mode in ("batch", "singles")]

    def total(who: str, key: str) -> int:
        return sum(results[who][m][ld][mode][key] for m in args.models for ld in loads
                   for mode in ("batch", "singles"))

    return {
        "benchmark": "vs_kimina",
        "quick": args.quick,
        "repls": REPLS,
        "in_flight_singles": IN_FLIGHT,
        "loads": {k: len(v) for k, v in loads.items()},
        "rl_exact_repeats": len(loads["rl"]) - len({it.code for it in loads["rl"]}),
        "cheats_in_loads": {k: sum(it.kind in ("weakened", "axiom", "native_decide")
                                   for it in v) for k, v in loads.items()},
        "results": results,
        "kimina_misclassified": total("kimina", "misclassified"),
        "throughput_ratio_vs_kimina": min(ratios("rl", "proofs_per_s")),
        "unique_throughput_ratio_vs_kimina": min(ratios("unique", "proofs_per_s")),
        "p99_ratio_vs_kimina": max(ratios("unique", "p99_s") + ratios("rl", "p99_s")),
        "misclassified": total("ours", "misclassified"),
    }


def in_private_netns(argv: list[str]) -> int:
    """Run this script again in a network namespace of its own with only loopback up."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        raise SystemExit("the benchmark needs `unshare` and `ip` (util-linux, iproute2) to give "
                         "Kimina a network namespace without a cloud metadata server")
    inner = " ".join(shlex.quote(a) for a in [sys.executable, *argv])
    done = subprocess.run(["unshare", "-n", "sh", "-c", f"ip link set lo up && exec {inner}"],
                          env={**os.environ, NETNS_MARK: "1"})
    return done.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="CI-sized: 80 unique proofs, 8x16 RL samples, costs scaled by 0.1")
    parser.add_argument("--models", default="flat,light",
                        help="cost models to run, comma-separated (flat, light)")
    args = parser.parse_args()
    args.models = [m for m in args.models.split(",") if m]
    if os.environ.get(NETNS_MARK) != "1":
        print("building Kimina's venv (once) ...", flush=True)
        ensure_venv("kimina-server", KIMINA_PACKAGES)
        return in_private_netns([str(Path(__file__).resolve()), *sys.argv[1:]])
    venv_python = ensure_venv("kimina-server", KIMINA_PACKAGES)
    summary = asyncio.run(bench(args, venv_python))
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
