#!/usr/bin/env python3
"""Benchmark of the in-process vLLM backend (prover/model/vllm_backend.py) on the tiny model.

    .venv/bin/python benchmarks/generation.py [--quick] [--gpu-memory F]

The model is the tiny random LLaMA of tests/fixtures/tiny_model.py (built locally, cached in
.test-cache/), so the numbers measure the serving path, not a real prover model. Two
measurements in one run, each a ratio against a baseline measured in the same run; the engines
run one after the other, never at the same time:

(a) throughput: generated tokens/s of `VllmGenerator` with 32 concurrent callers, each calling
    `generate` on its own prompt with n samples, over raw `vllm.LLM.generate` given the same 32
    prompts with the same sampling parameters in one call (vLLM's best case: it sees the whole
    batch at once). Same engine arguments; `ignore_eos` and a fixed `max_tokens`, so both sides
    generate exactly the same number of tokens. `throughput_ratio` = ours / raw.
(b) prefix caching: RMaxTS-like prompts (32 concurrent callers, two requests each) that share a
    ~1,500-token prefix (instruction, header, statements, proof so far) and differ in a short
    suffix, with automatic prefix caching on and off. `prefix_cache_gain` = time off / time on.

Each timed workload runs after a warm-up and is repeated; the best repetition counts (other
processes share this machine's cores, and the best run is the least disturbed). Wall-clock
ratios on a shared 2-core machine move by several percent from run to run; the CPU time of the
front-end process per run (`ours_frontend_cpu_s`, `raw_frontend_cpu_s`) is the steadier
measure of what the backend itself adds, since the engine processes are identical.

Human-readable lines first; the LAST line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
# vLLM logs every engine step's setup at INFO to stdout; keep the report readable.
os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")

from prover.config import Settings  # noqa: E402
from prover.model.base import SamplingParams  # noqa: E402
from prover.model.vllm_backend import VllmGenerator  # noqa: E402

FIXTURES = REPO / "tests" / "fixtures"
CACHE = Path(os.environ.get("PROVER_TEST_CACHE", REPO / ".test-cache"))
BENCHMARKS = REPO.parent / "shared" / "data" / "benchmarks"
CALLERS = 32
HEADER = (
    "import Mathlib\nimport Aesop\n\nset_option maxHeartbeats 400000\n\n"
    "open BigOperators Real Nat Topology Rat\n\n"
)


@dataclass(frozen=True)
class Plan:
    samples: int  # n per prompt in (a)
    max_tokens: int  # per sample in (a)
    repeats: int
    prefix_tokens: int
    prefix_requests_per_caller: int
    prefix_max_tokens: int


FULL = Plan(samples=4, max_tokens=256, repeats=3, prefix_tokens=1500,
            prefix_requests_per_caller=2, prefix_max_tokens=16)
QUICK = Plan(samples=2, max_tokens=96, repeats=3, prefix_tokens=1500,
             prefix_requests_per_caller=1, prefix_max_tokens=16)


def tiny_model() -> Path:
    sys.path.insert(0, str(FIXTURES))
    try:
        from tiny_model import build
    finally:
        sys.path.remove(str(FIXTURES))
    path: Path = build(CACHE / "tiny-llama")
    return path


def statements() -> list[str]:
    """miniF2F statements as Lean text (a fixed synthetic set when shared/ is missing)."""
    path = BENCHMARKS / "minif2f.jsonl"
    if path.is_file():
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        return [r.get("informal_prefix", "") + r["formal_statement"] for r in rows]
    return [f"theorem t{i} (a b : ℕ) (h : a = b + {i}) : a - {i} = b := by\n  omega\n"
            for i in range(400)]


def throughput_prompts() -> list[str]:
    """32 different prompts of DeepSeek-Prover-V1.5's non-CoT form, one per caller."""
    stmts = statements()
    return [f"Complete the following Lean 4 code:\n\n```lean4\n{HEADER}{stmts[i % len(stmts)]}"
            for i in range(CALLERS)]


def prefix_text(tokenizer: Any, tokens: int) -> str:
    """About `tokens` tokens of an RMaxTS prompt prefix: instruction, header, context, proof."""
    body = "Complete the following Lean 4 code:\n\n```lean4\n" + HEADER
    for stmt in statements():
        body += stmt + "\n  nlinarith [sq_nonneg (a - b), sq_nonneg (a + b)]\n\n"
        if len(tokenizer.encode(body)) >= tokens:
            break
    ids = tokenizer.encode(body, add_special_tokens=False)[:tokens]
    text: str = tokenizer.decode(ids)
    return text


def suffixes(rep: int, count: int) -> list[str]:
    """Short, distinct proof-so-far continuations (different in every repetition)."""
    return [f"\n  have h{rep}_{i} : {i + 2} * x ≤ {i + 3} * x + {rep} := by\n    nlinarith"
            for i in range(count)]


def settings_for(model: Path, gpu_memory: float) -> Settings:
    return Settings().with_overrides(
        model=str(model), model_dtype="float32", model_gpu_memory=gpu_memory,
        model_max_len=4096, model_seed=0,
    )


def engine_kwargs() -> dict[str, Any]:
    # Graph capture / compilation cost start time and give a tiny model nothing; same on both
    # sides of every comparison.
    return {"enforce_eager": True}


# ------------------------------------------------------------------------------------ ours


async def ours_throughput(gen: VllmGenerator, plan: Plan, prompts: list[str]) -> dict[str, Any]:
    params = SamplingParams(max_tokens=plan.max_tokens)

    async def run() -> tuple[float, float, int]:
        t0, c0 = time.perf_counter(), time.process_time()
        results = await asyncio.gather(*(
            gen.generate([p], plan.samples, params) for p in prompts
        ))
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        return elapsed, cpu, sum(c.tokens for r in results for row in r for c in row)

    await run()  # warm-up
    times: list[float] = []
    cpus: list[float] = []
    tokens = 0
    for _ in range(plan.repeats):
        gen.reset_peaks()
        elapsed, cpu, tokens = await run()
        times.append(elapsed)
        cpus.append(cpu)
    best = min(times)
    return {"ours_tokens": tokens, "ours_s": times, "ours_tok_s": tokens / best,
            "ours_cpu_s": statistics.median(cpus), "ours_peak_in_flight": gen.peak_in_flight}


async def prefix_workload(
    gen: VllmGenerator, plan: Plan, prefix: str
) -> dict[str, Any]:
    """32 callers, each sending its requests one after the other (like RMaxTS jobs)."""
    params = SamplingParams(max_tokens=plan.prefix_max_tokens)
    per_caller = plan.prefix_requests_per_caller

    async def caller(texts: list[str]) -> tuple[int, int]:
        prompt_tokens = generated = 0
        for text in texts:
            [[c]] = await gen.generate([prefix + text], 1, params)
            prompt_tokens += c.prompt_tokens
            generated += c.tokens
        return prompt_tokens, generated

    async def run(rep: int) -> tuple[float, int, float]:
        sfx = suffixes(rep, CALLERS * per_caller)
        cached_before = gen.stats.extra["cached_prompt_tokens"]
        t0 = time.perf_counter()
        counts = await asyncio.gather(*(
            caller(sfx[i * per_caller:(i + 1) * per_caller]) for i in range(CALLERS)
        ))
        elapsed = time.perf_counter() - t0
        prompt_tokens = sum(p for p, _ in counts)
        cached = gen.stats.extra["cached_prompt_tokens"] - cached_before
        return elapsed, prompt_tokens, cached / max(prompt_tokens, 1)

    await run(-1)  # warm-up: in a running search the shared prefix is already cached
    times, hit_rates = [], []
    prompt_tokens = 0
    for rep in range(plan.repeats):
        elapsed, prompt_tokens, hit_rate = await run(rep)
        times.append(elapsed)
        hit_rates.append(hit_rate)
    return {"s": times, "best_s": min(times), "prompt_tokens": prompt_tokens,
            "requests": CALLERS * per_caller, "hit_rate": statistics.fmean(hit_rates)}


async def run_ours(
    model: Path, gpu_memory: float, plan: Plan, prefix_caching: bool, throughput: bool
) -> dict[str, Any]:
    gen = VllmGenerator(
        settings_for(model, gpu_memory), enable_prefix_caching=prefix_caching,
        engine_kwargs=engine_kwargs(), sampling_overrides={"ignore_eos": True},
    )
    await gen.start()
    out: dict[str, Any] = {"start_s": gen.start_s}
    try:
        if throughput:
            out.update(await ours_throughput(gen, plan, throughput_prompts()))
        prefix = prefix_text(gen.engine.get_tokenizer(), plan.prefix_tokens)
        out["prefix"] = await prefix_workload(gen, plan, prefix)
        out["prefix"]["prefix_tokens"] = len(gen.engine.get_tokenizer().encode(prefix))
    finally:
        t0 = time.perf_counter()
        await gen.close()
        out["close_s"] = time.perf_counter() - t0
    return out


# ------------------------------------------------------------------------------------ raw


def run_raw(model: Path, gpu_memory: float, plan: Plan) -> dict[str, Any]:
    """`vllm.LLM.generate` with the whole batch in one call, same engine arguments."""
    from vllm import LLM
    from vllm import SamplingParams as VllmSamplingParams

    s = settings_for(model, gpu_memory)
    t0 = time.perf_counter()
    args: dict[str, Any] = {
        "model": s.model, "dtype": s.model_dtype, "max_model_len": s.model_max_len,
        "tensor_parallel_size": s.model_tensor_parallel,
        "gpu_memory_utilization": s.model_gpu_memory, "seed": s.model_seed,
        "enable_prefix_caching": True, **engine_kwargs(),
    }
    llm = LLM(**args)
    start_s = time.perf_counter() - t0
    defaults = SamplingParams()
    params = VllmSamplingParams(
        n=plan.samples, temperature=defaults.temperature, top_p=defaults.top_p,
        max_tokens=plan.max_tokens, ignore_eos=True,
    )
    prompts = throughput_prompts()

    def run() -> tuple[float, float, int]:
        t0, c0 = time.perf_counter(), time.process_time()
        outputs = llm.generate(prompts, params, use_tqdm=False)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        return elapsed, cpu, sum(len(c.token_ids) for o in outputs for c in o.outputs)

    times: list[float] = []
    cpus: list[float] = []
    tokens = 0
    try:
        run()  # warm-up
        for _ in range(plan.repeats):
            elapsed, cpu, tokens = run()
            times.append(elapsed)
            cpus.append(cpu)
    finally:
        llm.llm_engine.engine_core.shutdown()
        gc.collect()
    return {"raw_start_s": start_s, "raw_tokens": tokens, "raw_s": times,
            "raw_tok_s": tokens / min(times), "raw_cpu_s": statistics.median(cpus)}


# ------------------------------------------------------------------------------------ main


def main(quick: bool, gpu_memory: float) -> dict[str, Any]:
    t_start = time.perf_counter()
    plan = QUICK if quick else FULL
    model = tiny_model()
    out: dict[str, Any] = {"quick": quick, "model": "tiny-llama (tests/fixtures/tiny_model.py)",
                           "callers": CALLERS, "samples_per_prompt": plan.samples,
                           "max_tokens": plan.max_tokens, "repeats": plan.repeats,
                           "cpu_count": os.cpu_count()}
    print(f"model {model}; {CALLERS} callers; (a) n={plan.samples}, max_tokens="
          f"{plan.max_tokens}, ignore_eos; best of {plan.repeats} after a warm-up", flush=True)

    print("engine 1/3: VllmGenerator, prefix caching on ...", flush=True)
    on = asyncio.run(run_ours(model, gpu_memory, plan, prefix_caching=True, throughput=True))
    print(f"  started in {on['start_s']:.1f} s; (a) {on['ours_tokens']} tokens, best "
          f"{min(on['ours_s']):.2f} s = {on['ours_tok_s']:.0f} tok/s (runs: "
          f"{', '.join(f'{x:.2f}' for x in on['ours_s'])} s); peak requests in flight "
          f"{on['ours_peak_in_flight']}", flush=True)
    print(f"  (b) cache on: {on['prefix']['requests']} requests, prefix "
          f"{on['prefix']['prefix_tokens']} tokens, best {on['prefix']['best_s']:.2f} s, "
          f"prompt tokens served from the cache {on['prefix']['hit_rate']:.1%}; closed in "
          f"{on['close_s']:.1f} s", flush=True)

    print("engine 2/3: raw vllm.LLM.generate (one call with all 32 prompts) ...", flush=True)
    raw = run_raw(model, gpu_memory, plan)
    print(f"  started in {raw['raw_start_s']:.1f} s; (a) {raw['raw_tokens']} tokens, best "
          f"{min(raw['raw_s']):.2f} s = {raw['raw_tok_s']:.0f} tok/s (runs: "
          f"{', '.join(f'{x:.2f}' for x in raw['raw_s'])} s)", flush=True)

    print("engine 3/3: VllmGenerator, prefix caching off ...", flush=True)
    off = asyncio.run(run_ours(model, gpu_memory, plan, prefix_caching=False, throughput=False))
    print(f"  (b) cache off: best {off['prefix']['best_s']:.2f} s, prompt tokens from the cache "
          f"{off['prefix']['hit_rate']:.1%}", flush=True)

    assert on["ours_tokens"] == raw["raw_tokens"], (on["ours_tokens"], raw["raw_tokens"])
    ratio = on["ours_tok_s"] / raw["raw_tok_s"]
    gain = off["prefix"]["best_s"] / on["prefix"]["best_s"]
    print(f"(a) throughput ratio ours/raw = {ratio:.3f} (goal >= 0.9: "
          f"{'met' if ratio >= 0.9 else 'NOT met'}); CPU time of this (front-end) process per "
          f"run, median: ours {on['ours_cpu_s']:.2f} s, raw {raw['raw_cpu_s']:.2f} s (the "
          "engine's own processes are the same on both sides)")
    print(f"(b) prefix-cache gain (time off / time on) = {gain:.2f}x")
    out.update({
        "throughput_ratio": round(ratio, 4),
        "throughput_goal_met": ratio >= 0.9,
        "prefix_cache_gain": round(gain, 3),
        "ours_tok_s": round(on["ours_tok_s"], 1),
        "raw_tok_s": round(raw["raw_tok_s"], 1),
        "tokens_per_run": on["ours_tokens"],
        "ours_runs_s": [round(x, 3) for x in on["ours_s"]],
        "raw_runs_s": [round(x, 3) for x in raw["raw_s"]],
        "ours_peak_in_flight": on["ours_peak_in_flight"],
        "ours_frontend_cpu_s": round(on["ours_cpu_s"], 3),
        "raw_frontend_cpu_s": round(raw["raw_cpu_s"], 3),
        "engine_start_s": round(on["start_s"], 2),
        "raw_engine_start_s": round(raw["raw_start_s"], 2),
        "engine_close_s": round(on["close_s"], 2),
        "prefix_tokens": on["prefix"]["prefix_tokens"],
        "prefix_requests": on["prefix"]["requests"],
        "prefix_on_s": round(on["prefix"]["best_s"], 3),
        "prefix_off_s": round(off["prefix"]["best_s"], 3),
        "prefix_on_runs_s": [round(x, 3) for x in on["prefix"]["s"]],
        "prefix_off_runs_s": [round(x, 3) for x in off["prefix"]["s"]],
        "prefix_on_hit_rate": round(on["prefix"]["hit_rate"], 4),
        "prefix_off_hit_rate": round(off["prefix"]["hit_rate"], 4),
        "prefix_prompt_tokens": on["prefix"]["prompt_tokens"],
        "gpu_memory": gpu_memory,
    })
    out["total_s"] = round(time.perf_counter() - t_start, 1)
    print(f"done in {out['total_s']:.0f} s", flush=True)
    return out


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="fewer tokens and repetitions (about half the time)")
    parser.add_argument("--gpu-memory", type=float, default=0.1,
                        help="gpu_memory_utilization for every engine (on CPU: fraction of the "
                             "NUMA node's memory; default 0.1)")
    args = parser.parse_args()
    result = main(args.quick, args.gpu_memory)
    print(json.dumps(result, sort_keys=True), flush=True)


if __name__ == "__main__":
    cli()
