#!/usr/bin/env python3
"""Benchmark of the Lean verifier pool against the fake REPL (tests/fixtures/fake_repl.py).

    .venv/bin/python benchmarks/verifier_pool.py [--quick] [--profile]

Three measurements in one run, each reported as a ratio or a difference against a baseline
measured in the same run (never an absolute time threshold):

(a) overhead: p50 latency of `await pool.check(...)` on a 1-worker pool minus the p50 latency of
    a bare client doing the same REPL round trip (one fused command: reference statement, body
    and audit, the header being cached) on one subprocess. Unsandboxed, so the pool is measured and
    not bubblewrap; a bubblewrap-sandboxed pool is timed too, for information.
(b) scaling: throughput with W = 1, 2, 4 workers over the W = 1 throughput, on a sleep-bound
    load (each proof body sleeps a fixed time inside the REPL via `-- fake:sleep=S`).
(c) header elaborations for 1,000 checks of one header on W workers, against the reference
    DeepSeek-Prover-V1.5 verifier, which starts a fresh `lake exe repl` and imports Mathlib for
    every proof (one elaboration per check).

Human-readable lines first; the LAST line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import dataclasses
import io
import json
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from prover.config import Settings  # noqa: E402
from prover.lean import fused  # noqa: E402
from prover.lean.checker import CheckRequest  # noqa: E402
from prover.lean.launch import Launch, build_launch, bwrap_works  # noqa: E402
from prover.lean.pool import LeanPool  # noqa: E402
from prover.lean.process import tree_rss_bytes  # noqa: E402
from prover.lean.source import parse_statement, split_source  # noqa: E402
from prover.lean.verdict import Verdict  # noqa: E402

FAKE_REPL = REPO / "tests" / "fixtures" / "fake_repl.py"
MATHLIB_IMPORT_S = 23.0  # DeepSeek-Prover-V1.5 quick start: ~23 s to import Mathlib per proof

HEADER = (
    "import Mathlib\nimport Aesop\n\nset_option maxHeartbeats 400000\n\n"
    "open BigOperators Real Nat Topology Rat\n\n"
)
STATEMENT = "theorem bench_add_zero (x : Nat) (h : 0 < x) : x + 0 = x := by"


def code(sleep_s: float | None = None) -> str:
    tactic = "  simp" if sleep_s is None else f"  simp -- fake:sleep={sleep_s:g}"
    return f"{HEADER}{STATEMENT}\n{tactic}\n"


def request(sleep_s: float | None = None) -> CheckRequest:
    return CheckRequest(code=code(sleep_s), statement=STATEMENT)


# ------------------------------------------------------------------------------------ setup


class Bench:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.empty_config = tmp / "empty.toml"  # never pick up a prover.toml from the cwd
        self.empty_config.write_text("", encoding="utf-8")

    def settings(self, sandbox: str = "none", workers: int = 1) -> Settings:
        environ = {
            "PROVER_LEAN_REPL_CMD": f"{sys.executable} -S {FAKE_REPL}",
            "PROVER_LEAN_SANDBOX": sandbox,
            "PROVER_LEAN_WORKERS": str(workers),
        }
        return Settings.load(environ=environ, config_file=self.empty_config)

    def launch(self, settings: Settings, **fake_env: str) -> Launch:
        """The pool's own launch; FAKE_REPL_* variables added after its environment filter
        (which, by design, drops everything a real REPL does not need)."""
        launch = build_launch(settings)
        if fake_env and not launch.sandboxed:
            launch = dataclasses.replace(launch, env={**launch.env, **fake_env})
        return launch


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def ms(x: float) -> float:
    return round(x * 1000, 4)


async def timed(n: int, one: Callable[[], Awaitable[object]]) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        await one()
        out.append(time.perf_counter() - t0)
    return out


# ------------------------------------------------------------------------------------ (a)


class BareClient:
    """One REPL subprocess, one request at a time: write JSON + blank line, read to blank line."""

    def __init__(self, launch: Launch) -> None:
        self.launch = launch
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            *self.launch.argv, cwd=str(self.launch.cwd), env=dict(self.launch.env),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL, limit=2**24,
        )

    async def round_trip(self, req: dict[str, Any]) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdin and self.proc.stdout
        self.proc.stdin.write((json.dumps(req, ensure_ascii=False) + "\n\n").encode())
        await self.proc.stdin.drain()
        lines: list[bytes] = []
        while True:
            line = await self.proc.stdout.readline()
            if not line:
                raise RuntimeError("bare REPL died")
            if line.strip():
                lines.append(line)
            elif lines:
                return json.loads(b"".join(lines))  # type: ignore[no-any-return]

    async def close(self) -> None:
        if self.proc is not None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.proc.wait(), 5)
            if self.proc.returncode is None:
                self.proc.kill()
                await self.proc.wait()


async def bare_setup(client: BareClient) -> tuple[str, int]:
    """The fused command and the header env, as the pool builds them."""
    split = split_source(code())
    statement = parse_statement(STATEMENT)
    imports = "\n".join(f"import {m}" for m in split.imports)
    env = (await client.round_trip({"cmd": imports}))["env"]
    env = (await client.round_trip({"cmd": split.header_rest, "env": env}))["env"]
    ref_name = f"__prover_ref_{'0' * 12}"
    lay = fused.layout(split, statement, ref_name, (statement.name,))
    return lay.text, env


async def bench_overhead(b: Bench, n: int, profile: bool) -> dict[str, Any]:
    settings = b.settings("none", 1)
    launch = b.launch(settings)
    req = request()
    pool = await LeanPool(settings, workers=1, launch=launch).start()
    client = BareClient(launch)
    await client.start()
    try:
        text, header_env = await bare_setup(client)

        async def bare_check() -> None:
            resp = await client.round_trip({"cmd": text, "env": header_env})
            assert len(resp.get("messages", ())) == 5, resp  # ref warning, fence, 3 audits

        async def pool_check() -> None:
            result = await pool.check(req)
            assert result.verdict is Verdict.PROVED, result

        for _ in range(50):  # warm-up: header, reference, caches, branch predictors
            await pool_check()
            await bare_check()
        pool_lat: list[float] = []
        bare_lat: list[float] = []
        chunk = 100
        for start in range(0, n, chunk):  # interleaved, so drift hits both sides alike
            k = min(chunk, n - start)
            pool_lat += await timed(k, pool_check)
            bare_lat += await timed(k, bare_check)
        stats = pool.stats()
        # The pool samples the worker's process-tree RSS after every check (recycling test);
        # psutil finds children by reading /proc/*/stat of every process on the machine.
        pid = stats["pids"][0]
        rss_lat = []
        for _ in range(200):
            t0 = time.perf_counter()
            tree_rss_bytes(pid)
            rss_lat.append(time.perf_counter() - t0)
        hot: list[dict[str, Any]] = []
        pool_p50, bare_p50 = pct(pool_lat, 0.5), pct(bare_lat, 0.5)
        if profile or pool_p50 - bare_p50 > 0.002:
            hot = await profile_pool(pool_check, min(n, 500))
    finally:
        await client.close()
        await pool.close()
    return {
        "pool_ms_p50": ms(pool_p50),
        "bare_ms_p50": ms(bare_p50),
        "overhead_ms_p50": ms(pool_p50 - bare_p50),
        "pool_ms_p90": ms(pct(pool_lat, 0.9)),
        "bare_ms_p90": ms(pct(bare_lat, 0.9)),
        "pool_ms_max": ms(max(pool_lat)),
        "bare_ms_max": ms(max(bare_lat)),
        "pool_ms_mean": ms(statistics.fmean(pool_lat)),
        "bare_ms_mean": ms(statistics.fmean(bare_lat)),
        "overhead_checks": n,
        "overhead_pool_restarts": stats["restarts"],
        "overhead_pool_header_elaborations": stats["header_elaborations"],
        "rss_probe_ms_p50": ms(pct(rss_lat, 0.5)),
        "machine_processes": len(psutil.pids()),
        "profile_hot_spots": hot,
    }


async def profile_pool(one: Callable[[], Awaitable[object]], n: int) -> list[dict[str, Any]]:
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(n):
        await one()
    prof.disable()
    st = pstats.Stats(prof, stream=io.StringIO())
    rows = []
    for (file, line, func), (_cc, calls, tt, ct, _callers) in st.stats.items():  # type: ignore[attr-defined]
        rows.append({
            "function": f"{Path(file).name}:{line}:{func}",
            "calls_per_check": round(calls / n, 2),
            "self_ms_per_check": round(tt * 1000 / n, 4),
            "cum_ms_per_check": round(ct * 1000 / n, 4),
        })
    rows.sort(key=lambda r: r["self_ms_per_check"], reverse=True)
    return rows[:12]


async def bench_bwrap(b: Bench, n: int) -> dict[str, Any]:
    if not bwrap_works():
        return {"bwrap_pool_ms_p50": None, "bwrap_note": "bubblewrap missing or unusable here"}
    settings = b.settings("bwrap", 1)
    req = request()
    t0 = time.perf_counter()
    pool = await LeanPool(settings, workers=1).start()
    start_s = time.perf_counter() - t0
    try:
        t0 = time.perf_counter()
        first = await pool.check(req)
        first_s = time.perf_counter() - t0
        assert first.verdict is Verdict.PROVED, first
        for _ in range(20):
            await pool.check(req)
        lat = await timed(n, lambda: pool.check(req))
    finally:
        await pool.close()
    return {
        "bwrap_pool_ms_p50": ms(pct(lat, 0.5)),
        "bwrap_start_ms": ms(start_s),
        "bwrap_first_check_ms": ms(first_s),
        "bwrap_checks": n,
    }


# ------------------------------------------------------------------------------------ (b)


async def run_many(pool: LeanPool, req: CheckRequest, n: int, in_flight: int) -> float:
    gate = asyncio.Semaphore(in_flight)

    async def one() -> None:
        async with gate:
            result = await pool.check(req)
        assert result.verdict is Verdict.PROVED, result

    t0 = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    return time.perf_counter() - t0


async def bench_scaling(b: Bench, n: int, sleep_s: float) -> dict[str, Any]:
    throughput: dict[str, float] = {}
    for w in (1, 2, 4):
        settings = b.settings("none", w)
        pool = await LeanPool(settings, workers=w, launch=b.launch(settings)).start()
        try:
            await run_many(pool, request(), 4 * w, 2 * w)  # warm-up: every worker holds the header
            elapsed = await run_many(pool, request(sleep_s), n, 8 * w)
            assert pool.stats()["header_elaborations"] == w, pool.stats()
        finally:
            await pool.close()
        throughput[str(w)] = n / elapsed
        print(f"  (b) W={w}: {n} checks in {elapsed:.2f} s = {n / elapsed:.1f} checks/s "
              f"(sleep-bound ideal {w / sleep_s:.1f}/s)")
    scaling = {w: round(t / throughput["1"], 3) for w, t in throughput.items()}
    return {
        "scaling": scaling,
        "throughput_per_s": {w: round(t, 2) for w, t in throughput.items()},
        "scaling_checks": n,
        "scaling_sleep_s": sleep_s,
        "scaling_goal_met": all(scaling[w] >= 0.9 * int(w) for w in scaling),
    }


# ------------------------------------------------------------------------------------ (c)


async def bench_headers(b: Bench, n: int, workers: int) -> dict[str, Any]:
    stats_file = b.tmp / "fake_repl_stats.txt"
    stats_file.write_text("", encoding="utf-8")
    settings = b.settings("none", workers)
    launch = b.launch(settings, FAKE_REPL_STATS=str(stats_file), FAKE_REPL_IMPORT_DELAY="0.05")
    pool = await LeanPool(settings, workers=workers, launch=launch).start()
    try:
        elapsed = await run_many(pool, request(), n, 8 * workers)
        stats = pool.stats()
    finally:
        await pool.close()
    lines = stats_file.read_text(encoding="utf-8").splitlines()
    imports = sum(1 for line in lines if line.startswith("import"))
    starts = sum(1 for line in lines if line.startswith("start"))
    return {
        "checks": n,
        "workers": workers,
        "header_elaborations": stats["header_elaborations"],
        "repl_header_imports": imports,
        "repl_starts": starts,
        "reference_header_elaborations": n,
        "headers_checks_per_s": round(n / elapsed, 1),
        "headers_restarts": stats["restarts"],
        "implied_saving_s": (n - imports) * MATHLIB_IMPORT_S,
    }


# ------------------------------------------------------------------------------------ main


async def main(quick: bool, profile: bool) -> dict[str, Any]:
    t_start = time.perf_counter()
    n_overhead = 300 if quick else 2000
    n_bwrap = 100 if quick else 300
    n_scaling, sleep_s = (80, 0.05) if quick else (200, 0.05)
    n_headers, w_headers = 1000, 4
    out: dict[str, Any] = {"quick": quick}
    with tempfile.TemporaryDirectory(prefix="bench-pool-") as tmp:
        b = Bench(Path(tmp))

        print(f"(a) pool overhead per check, 1 worker, no sandbox, {n_overhead} checks each side")
        a = await bench_overhead(b, n_overhead, profile)
        out.update(a)
        print(f"  pool p50 {a['pool_ms_p50']:.3f} ms (p90 {a['pool_ms_p90']:.3f}), "
              f"bare 2-round-trip client p50 {a['bare_ms_p50']:.3f} ms "
              f"(p90 {a['bare_ms_p90']:.3f})")
        print(f"  overhead p50 {a['overhead_ms_p50']:.3f} ms per check (goal < 2 ms: "
              f"{'met' if a['overhead_ms_p50'] < 2 else 'NOT met'}); worker restarts during "
              f"the run: {a['overhead_pool_restarts']}")
        out["overhead_goal_met"] = a["overhead_ms_p50"] < 2
        print(f"  of which the per-check RSS probe (psutil process-tree walk over "
              f"{a['machine_processes']} processes) takes {a['rss_probe_ms_p50']:.3f} ms p50")
        if a["overhead_pool_header_elaborations"] > 1:
            print(f"  note: the worker was recycled (PROVER_LEAN_MAX_CHECKS) and re-elaborated "
                  f"its header: {a['overhead_pool_header_elaborations']} header elaborations, "
                  f"slowest check {a['pool_ms_max']:.1f} ms")
        if a["profile_hot_spots"]:
            print("  cProfile hot spots (self time per check):")
            for row in a["profile_hot_spots"][:8]:
                print(f"    {row['self_ms_per_check']:.4f} ms  x{row['calls_per_check']:<5} "
                      f"{row['function']}")
        bw = await bench_bwrap(b, n_bwrap)
        out.update(bw)
        if bw.get("bwrap_pool_ms_p50") is not None:
            print(f"  for information, sandbox on (bwrap): pool p50 {bw['bwrap_pool_ms_p50']:.3f}"
                  f" ms per check; start {bw['bwrap_start_ms']:.0f} ms, first check (header) "
                  f"{bw['bwrap_first_check_ms']:.0f} ms")
        else:
            print(f"  sandbox on (bwrap): not measured ({bw['bwrap_note']})")

        print(f"(b) throughput scaling, sleep-bound ({sleep_s:g} s per proof body), "
              f"{n_scaling} checks, 8*W in flight")
        s = await bench_scaling(b, n_scaling, sleep_s)
        out.update(s)
        print("  scaling " + ", ".join(
            f"W={w}: {r:.2f}x (goal >= {0.9 * int(w):.1f}x)" for w, r in s["scaling"].items()
        ))

        print(f"(c) header elaborations, {n_headers} checks of one header on {w_headers} workers")
        c = await bench_headers(b, n_headers, w_headers)
        out.update(c)
        print(f"  pool: {c['header_elaborations']} header elaborations (REPL saw "
              f"{c['repl_header_imports']} imports in {c['repl_starts']} processes); "
              f"reference design (fresh REPL + Mathlib import per proof): "
              f"{c['reference_header_elaborations']}")
        print(f"  implied saving at ~{MATHLIB_IMPORT_S:g} s per Mathlib import: "
              f"{c['implied_saving_s']:.0f} s = {c['implied_saving_s'] / 3600:.2f} h of "
              f"import time for {n_headers} checks")
    out["total_s"] = round(time.perf_counter() - t_start, 2)
    print(f"done in {out['total_s']:.1f} s")
    return out


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer checks (< 40 s)")
    parser.add_argument("--profile", action="store_true",
                        help="always cProfile the pool in (a), not only when over 2 ms")
    args = parser.parse_args()
    result = asyncio.run(main(args.quick, args.profile))
    print(json.dumps(result, sort_keys=True), flush=True)


if __name__ == "__main__":
    cli()
