#!/usr/bin/env python3
"""Benchmark of the model backends with DeepSeek-Prover-V1.5's shape, on a GPU (issue 10).

    python benchmarks/gpu_generation.py [--parts LIST] [--out FILE] [--engine-kw KEY=VALUE ...]
    python benchmarks/gpu_generation.py --tiny      # the same code paths on CPU, in ~1 minute

The model is random ("dummy") weights of DeepSeek-Prover-V1.5's architecture (LLaMA, 30 layers,
hidden 4096, intermediate 11008, 32 attention heads with as many KV heads, vocabulary 102,400,
context 4,096): a config.json is written to a temporary directory and vLLM is started with
`load_format="dummy"`, so the speed is the real model's speed. The tokenizer is the tiny test
model's byte-level BPE (tests/fixtures/tiny_model.py) with its vocabulary padded to 102,400
entries (extra tokens decode to short words), so every id the model samples decodes to text.
Prompts are made of words that are one token each, so their token counts are exact. Every
sample runs to its `max_tokens` (`ignore_eos`), so both sides of a comparison generate the same
number of tokens. Engines run one after the other, never at the same time.

Parts (`--parts`, comma-separated; default: all but `seeded`):

- sampling:  whole-proof sampling, 512 prompts of 300 tokens, 512 new tokens each, temperature
             1.0, top-p 0.95, through our `VllmGenerator` (512 concurrent callers of one prompt
             each, as 512 search slots issue them); output tokens/s.
- raw:       the same prompts through raw `vllm.LLM.generate` in one call, same engine arguments
             (vLLM's best case); `throughput_ratio` = ours / raw (goal >= 0.95). Also the
             RMaxTS-like workload below, raw, with prefix caching on.
- prefix:    RMaxTS-like prompts: 512 prompts sharing a 1,500-token prefix (warm in the cache,
             as in a running search) plus 32 tokens of their own, 128 new tokens each; ours.
- nocache:   the same with automatic prefix caching off (a second engine of ours).
- e2e:       an RMaxTS search (`search.search_proof`, budget 2,000) against an instant in-process
             verifier (the toy Lean of tests/fixtures/toy_world.py): samples/s, and where the
             time goes (generation, verification, the search's own code).
- transformers: our `transformers` backend with the same random weights (`from_config`, bf16 on
             the GPU), 64 prompts of 300 tokens, 256 new tokens each, `PROVER_MODEL_MAX_BATCH`=64.
- seeded:    the sampling workload again through ours with a seed per request (the search seeds
             every sample, which gives each request its own RNG in vLLM's sampler).

The run ends with a sizing estimate: GPUs and Lean cores to run the paper's miniF2F-test RMaxTS
evaluation (244 problems x 16 runs x 6,400 samples) in one day, from the measured end-to-end
samples/s and the stated assumptions (`--lean-s-per-check`, `--checks-per-sample`).

`--out FILE` rewrites FILE with the JSON gathered so far after every part, so a run cut short
by a time limit keeps what it measured. Human-readable lines first; the LAST line printed is one
JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# The repository first: this script's own folder (sys.path[0]) holds benchmarks/search.py,
# which must not shadow the `search` package.
for _path in (REPO / "tests" / "fixtures", REPO):
    with contextlib.suppress(ValueError):
        sys.path.remove(str(_path))
    sys.path.insert(0, str(_path))
# vLLM logs every engine step's set-up at INFO to stdout; keep the report readable.
os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")

from prover.config import Settings  # noqa: E402
from prover.datasets import Problem  # noqa: E402
from prover.lean.checker import CheckRequest  # noqa: E402
from prover.lean.verdict import CheckResult  # noqa: E402
from prover.model.base import Completion, Generator, SamplingParams  # noqa: E402
from prover.model.transformers_backend import TransformersGenerator  # noqa: E402
from prover.model.vllm_backend import VllmGenerator  # noqa: E402

CACHE = Path(os.environ.get("PROVER_TEST_CACHE", REPO / ".test-cache"))

# DeepSeek-Prover-V1.5-RL's config.json (a LLaMA; bos/eos are the tokenizer's own here).
SHAPES: dict[str, dict[str, Any]] = {
    "deepseek-prover-v1.5": {
        "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 30,
        "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 102400,
        "max_position_embeddings": 4096, "rms_norm_eps": 1e-6,
    },
    # DeepSeek-Prover-V2-7B: "built upon DeepSeek-Prover-V1.5-Base ... extended context length
    # of up to 32K tokens" (its README): V1.5's LLaMA with a 32,768-token context.
    "deepseek-prover-v2-7b": {
        "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 30,
        "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 102400,
        "max_position_embeddings": 32768, "rms_norm_eps": 1e-6,
    },
    # Goedel-Prover-V2-8B is a Qwen3-8B (Qwen/Qwen3-8B's config.json): 36 layers, grouped-query
    # attention with 8 KV heads, QK norms, a 151,936-token vocabulary, a 40,960-token context.
    "goedel-prover-v2-8b": {
        "architecture": "Qwen3ForCausalLM",
        "hidden_size": 4096, "intermediate_size": 12288, "num_hidden_layers": 36,
        "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128,
        "vocab_size": 151936, "max_position_embeddings": 40960, "rms_norm_eps": 1e-6,
        "rope_theta": 1000000.0,
    },
    # tests/fixtures/tiny_model.py's shape, vocabulary padded like the real one's.
    "tiny": {
        "hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2,
        "num_attention_heads": 2, "num_key_value_heads": 2, "vocab_size": 2048,
        "max_position_embeddings": 8192, "rms_norm_eps": 1e-6,
    },
}

# The paper's miniF2F-test RMaxTS evaluation (arXiv 2408.08152): 244 problems, 16 runs, 6,400
# samples per run.
PAPER_PROBLEMS, PAPER_RUNS, PAPER_BUDGET = 244, 16, 6400

HEADER = (
    "import Mathlib\nimport Aesop\n\nset_option maxHeartbeats 400000\n\n"
    "open BigOperators Real Nat Topology Rat\n\n"
)
E2E_PROBLEM = Problem(
    name="mathd_algebra_478", split="test", header=HEADER,
    informal_prefix=(
        "/-- The volume of a cone is given by the formula $V = \\frac{1}{3}Bh$, where $B$ is "
        "the area of the base and $h$ is the height. The area of the base of a cone is 30 "
        "square units, and its height is 6.5 units. What is the number of cubic units in its "
        "volume? Show that it is 65.-/\n"
    ),
    formal_statement=(
        "theorem mathd_algebra_478 (b h v : ℝ) (h₀ : 0 < b ∧ 0 < h ∧ 0 < v) "
        "(h₁ : v = 1 / 3 * (b * h))\n    (h₂ : b = 30) (h₃ : h = 13 / 2) : v = 65 := by\n"
    ),
    goal=None,
)


@dataclass(frozen=True)
class Plan:
    shape: str
    dtype: str
    gpu_memory: float
    max_len: int
    enforce_eager: bool
    warmup_prompts: int
    warmup_tokens: int
    sampling_prompts: int
    sampling_prompt_tokens: int
    sampling_new_tokens: int
    prefix_prompts: int
    prefix_tokens: int
    suffix_tokens: int
    prefix_new_tokens: int
    e2e_budget: int
    e2e_concurrency: int
    e2e_new_tokens: int
    hf_prompts: int
    hf_new_tokens: int
    hf_max_batch: int


GPU = Plan(
    shape="deepseek-prover-v1.5", dtype="bfloat16", gpu_memory=0.9, max_len=4096,
    enforce_eager=False, warmup_prompts=512, warmup_tokens=8,
    sampling_prompts=512, sampling_prompt_tokens=300, sampling_new_tokens=512,
    prefix_prompts=512, prefix_tokens=1500, suffix_tokens=32, prefix_new_tokens=128,
    e2e_budget=2000, e2e_concurrency=512, e2e_new_tokens=256,
    hf_prompts=64, hf_new_tokens=256, hf_max_batch=64,
)
TINY = Plan(
    shape="tiny", dtype="float32", gpu_memory=0.1, max_len=4096, enforce_eager=True,
    warmup_prompts=16, warmup_tokens=4,
    sampling_prompts=16, sampling_prompt_tokens=64, sampling_new_tokens=32,
    prefix_prompts=16, prefix_tokens=256, suffix_tokens=8, prefix_new_tokens=8,
    e2e_budget=48, e2e_concurrency=16, e2e_new_tokens=16,
    hf_prompts=8, hf_new_tokens=16, hf_max_batch=8,
)

PARTS = ("sampling", "prefix", "e2e", "raw", "nocache", "transformers", "seeded", "rawnocache")
DEFAULT_PARTS = ("sampling", "prefix", "e2e", "raw", "nocache", "transformers")


# ------------------------------------------------------------------------------ the model


def build_model(shape: str, out: Path) -> Path:
    """config.json of `shape` + the tiny model's tokenizer padded to the shape's vocabulary."""
    from tiny_model import build as build_tiny
    from transformers import LlamaConfig, PreTrainedTokenizerFast, Qwen3Config

    shape_spec = dict(SHAPES[shape])
    architecture = shape_spec.pop("architecture", "LlamaForCausalLM")
    tiny = build_tiny(CACHE / "tiny-llama")
    spec = json.loads((tiny / "tokenizer.json").read_text(encoding="utf-8"))
    vocab: dict[str, int] = spec["model"]["vocab"]
    size = shape_spec["vocab_size"]
    taken = set(vocab) | {t["content"] for t in spec.get("added_tokens", [])}
    next_id = 1 + max([*vocab.values(), *(t["id"] for t in spec.get("added_tokens", []))])
    # Extra tokens: "Ġ" (a space, in byte-level BPE) + 2-4 letters. No merge produces them, so
    # encoding text is unchanged; decoding any id gives a short word.
    letters = "abcdefghijklmnopqrstuvwxyz"
    index = 0
    while next_id < size:
        word, n = "", index
        while True:
            word = letters[n % 26] + word
            n = n // 26 - 1
            if n < 0:
                break
        index += 1
        token = "Ġ" + word
        if token in taken:
            continue
        vocab[token] = next_id
        next_id += 1
    out.mkdir(parents=True, exist_ok=True)
    (out / "tokenizer.json").write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        if (tiny / name).is_file():
            shutil.copy(tiny / name, out / name)
    tok = PreTrainedTokenizerFast.from_pretrained(out)
    if len(tok) != size:
        raise RuntimeError(f"padded tokenizer has {len(tok)} ids, wanted {size}")
    config_class = Qwen3Config if architecture == "Qwen3ForCausalLM" else LlamaConfig
    config = config_class(
        **shape_spec, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        tie_word_embeddings=False, hidden_act="silu",
    )
    config.architectures = [architecture]
    config.save_pretrained(out)
    return out


class Prompts:
    """Texts of exact token counts, made of words that the tokenizer keeps as one token."""

    def __init__(self, model: Path) -> None:
        from transformers import AutoTokenizer

        self.tok = AutoTokenizer.from_pretrained(model)
        words = []
        for token, tid in self.tok.get_vocab().items():
            if token.startswith("Ġ") and token[1:].isascii() and token[1:].isalpha():
                text = " " + token[1:]
                if self.tok.encode(text, add_special_tokens=False) == [tid]:
                    words.append(text)
        self.words = sorted(words)
        if len(self.words) < 20:
            raise RuntimeError(f"only {len(self.words)} one-token words in the tokenizer")
        self.bos = 1 if self.tok("x")["input_ids"][:1] == [self.tok.bos_token_id] else 0

    def text(self, rng: random.Random, tokens: int) -> str:
        """Words for `tokens` tokens (the BOS the tokenizer adds is not counted here)."""
        return "".join(rng.choice(self.words) for _ in range(tokens))

    def count(self, text: str) -> int:
        return len(self.tok(text)["input_ids"])


def sampling_prompts(prompts: Prompts, count: int, tokens: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    return [prompts.text(rng, tokens - prompts.bos) for _ in range(count)]


def prefix_prompts(prompts: Prompts, plan: Plan, seed: int = 2) -> tuple[str, list[str]]:
    rng = random.Random(seed)
    prefix = prompts.text(rng, plan.prefix_tokens - prompts.bos)
    return prefix, [prefix + prompts.text(rng, plan.suffix_tokens)
                    for _ in range(plan.prefix_prompts)]


# ------------------------------------------------------------------------------ engines


def settings_for(model: Path, plan: Plan) -> Settings:
    return Settings().with_overrides(
        model=str(model), model_dtype=plan.dtype, model_gpu_memory=plan.gpu_memory,
        model_max_len=plan.max_len, model_seed=0, model_max_batch=plan.hf_max_batch,
    )


def base_engine_kwargs(plan: Plan) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"load_format": "dummy"}
    if plan.enforce_eager:
        kwargs["enforce_eager"] = True
    return kwargs


def engine_facts(vllm_config: Any) -> dict[str, Any]:
    """What the engine actually runs with (the batch limits differ by vLLM's usage context)."""
    facts: dict[str, Any] = {}
    with contextlib.suppress(Exception):
        facts["max_num_seqs"] = vllm_config.scheduler_config.max_num_seqs
        facts["max_num_batched_tokens"] = vllm_config.scheduler_config.max_num_batched_tokens
        facts["num_gpu_blocks"] = vllm_config.cache_config.num_gpu_blocks
        facts["block_size"] = vllm_config.cache_config.block_size
        facts["prefix_caching"] = vllm_config.cache_config.enable_prefix_caching
    with contextlib.suppress(Exception):
        facts["cudagraph_mode"] = str(vllm_config.compilation_config.cudagraph_mode)
        facts["max_cudagraph_capture_size"] = (
            vllm_config.compilation_config.max_cudagraph_capture_size)
    with contextlib.suppress(Exception):
        facts["async_scheduling"] = vllm_config.scheduler_config.async_scheduling
    return facts


def params_for(max_tokens: int) -> SamplingParams:
    return SamplingParams(temperature=1.0, top_p=0.95, max_tokens=max_tokens)


async def ours_batch(
    gen: Any, texts: Sequence[str], params: SamplingParams, seeded: bool = False
) -> dict[str, Any]:
    """One caller per prompt, all at once (512 search slots each asking for one sample)."""
    t0, c0 = time.perf_counter(), time.process_time()
    cached0 = gen.stats.extra.get("cached_prompt_tokens", 0.0)
    results = await asyncio.gather(*(
        gen.generate([t], 1, replace(params, seed=i) if seeded else params)
        for i, t in enumerate(texts)
    ))
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    comps: list[Completion] = [c for r in results for row in r for c in row]
    out = sum(c.tokens for c in comps)
    prompt = sum(c.prompt_tokens for c in comps)
    cached = gen.stats.extra.get("cached_prompt_tokens", 0.0) - cached0
    return {"s": round(elapsed, 3), "output_tokens": out, "prompt_tokens": prompt,
            "tok_s": round(out / elapsed, 1), "frontend_cpu_s": round(cpu, 2),
            "cached_prompt_fraction": round(cached / max(prompt, 1), 4)}


def human(name: str, r: dict[str, Any]) -> str:
    return (f"  {name}: {r['output_tokens']:,} output tokens in {r['s']:.2f} s = "
            f"{r['tok_s']:,.0f} tok/s (prompt tokens {r['prompt_tokens']:,}, from the prefix "
            f"cache {r.get('cached_prompt_fraction', 0):.0%})")


async def run_ours(
    model: Path, plan: Plan, parts: set[str], extra: dict[str, Any], prefix_caching: bool,
    record: Callable[[str, Any], None], args: argparse.Namespace,
) -> None:
    prompts = Prompts(model)
    gen = VllmGenerator(
        settings_for(model, plan), enable_prefix_caching=prefix_caching,
        engine_kwargs={**base_engine_kwargs(plan), **extra},
        sampling_overrides={"ignore_eos": True},
    )
    tag = "ours" if prefix_caching else "ours_nocache"
    print(f"engine {tag}: starting (prefix caching {'on' if prefix_caching else 'off'}, "
          f"engine_kwargs {gen.engine_kwargs}) ...", flush=True)
    await gen.start()
    facts = {"start_s": round(gen.start_s or 0.0, 1), **engine_facts(gen.engine.vllm_config)}
    record(f"{tag}_engine", facts)
    print(f"  started in {facts['start_s']} s: {facts}", flush=True)
    try:
        warm = sampling_prompts(prompts, plan.warmup_prompts, plan.sampling_prompt_tokens, 99)
        await ours_batch(gen, warm, params_for(plan.warmup_tokens))
        if prefix_caching and "sampling" in parts:
            texts = sampling_prompts(prompts, plan.sampling_prompts, plan.sampling_prompt_tokens)
            r = await ours_batch(gen, texts, params_for(plan.sampling_new_tokens))
            r["peak_in_flight"] = gen.peak_in_flight
            record("ours_sampling", r)
            print(human("sampling, ours", r), flush=True)
        if prefix_caching and "seeded" in parts:
            texts = sampling_prompts(prompts, plan.sampling_prompts, plan.sampling_prompt_tokens)
            r = await ours_batch(gen, texts, params_for(plan.sampling_new_tokens), seeded=True)
            record("ours_sampling_seeded", r)
            print(human("sampling, ours, one seed per request", r), flush=True)
        if "prefix" in parts if prefix_caching else "nocache" in parts:
            prefix, texts = prefix_prompts(prompts, plan)
            await ours_batch(gen, [prefix + prompts.text(random.Random(5), plan.suffix_tokens)],
                             params_for(plan.warmup_tokens))  # the search's prefix is cached
            r = await ours_batch(gen, texts, params_for(plan.prefix_new_tokens))
            r["total_tok_s"] = round((r["output_tokens"] + r["prompt_tokens"]) / r["s"], 1)
            record("ours_prefix" if prefix_caching else "ours_prefix_nocache", r)
            print(human(f"RMaxTS-like, ours, cache {'on' if prefix_caching else 'off'}", r),
                  flush=True)
        if prefix_caching and "e2e" in parts:
            record("e2e", await end_to_end(gen, plan, args))
    finally:
        t0 = time.perf_counter()
        await gen.close()
        print(f"  closed in {time.perf_counter() - t0:.1f} s", flush=True)


def run_raw(
    model: Path, plan: Plan, record: Callable[[str, Any], None], prefix_caching: bool = True
) -> None:
    """`vllm.LLM.generate`, the whole batch in one call, same engine arguments as ours."""
    from vllm import LLM
    from vllm import SamplingParams as VllmSamplingParams

    prompts = Prompts(model)
    s = settings_for(model, plan)
    args: dict[str, Any] = {
        "model": s.model, "dtype": s.model_dtype, "max_model_len": s.model_max_len,
        "tensor_parallel_size": s.model_tensor_parallel,
        "gpu_memory_utilization": s.model_gpu_memory, "seed": s.model_seed,
        "enable_prefix_caching": prefix_caching, **base_engine_kwargs(plan),
    }
    tag = "raw" if prefix_caching else "raw_nocache"
    print(f"engine {tag}: starting vllm.LLM({args}) ...", flush=True)
    t0 = time.perf_counter()
    llm = LLM(**args)
    facts = {"start_s": round(time.perf_counter() - t0, 1),
             **engine_facts(llm.llm_engine.vllm_config)}
    record(f"{tag}_engine", facts)
    print(f"  started in {facts['start_s']} s: {facts}", flush=True)

    def run(texts: list[str], max_tokens: int) -> dict[str, Any]:
        params = VllmSamplingParams(n=1, temperature=1.0, top_p=0.95, max_tokens=max_tokens,
                                    ignore_eos=True)
        t0, c0 = time.perf_counter(), time.process_time()
        outputs = llm.generate(texts, params, use_tqdm=False)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        out = sum(len(c.token_ids) for o in outputs for c in o.outputs)
        prompt = sum(len(o.prompt_token_ids or ()) for o in outputs)
        cached = sum(o.num_cached_tokens or 0 for o in outputs)
        return {"s": round(elapsed, 3), "output_tokens": out, "prompt_tokens": prompt,
                "tok_s": round(out / elapsed, 1), "frontend_cpu_s": round(cpu, 2),
                "cached_prompt_fraction": round(cached / max(prompt, 1), 4)}

    try:
        run(sampling_prompts(prompts, plan.warmup_prompts, plan.sampling_prompt_tokens, 99),
            plan.warmup_tokens)
        if prefix_caching:
            r = run(sampling_prompts(prompts, plan.sampling_prompts,
                                     plan.sampling_prompt_tokens), plan.sampling_new_tokens)
            record("raw_sampling", r)
            print(human("sampling, raw LLM.generate", r), flush=True)
        prefix, texts = prefix_prompts(prompts, plan)
        run([prefix + prompts.text(random.Random(5), plan.suffix_tokens)], plan.warmup_tokens)
        r = run(texts, plan.prefix_new_tokens)
        r["total_tok_s"] = round((r["output_tokens"] + r["prompt_tokens"]) / r["s"], 1)
        record("raw_prefix" if prefix_caching else "raw_prefix_nocache", r)
        print(human(f"RMaxTS-like, raw LLM.generate, cache {'on' if prefix_caching else 'off'}",
                    r), flush=True)
    finally:
        t0 = time.perf_counter()
        llm.llm_engine.engine_core.shutdown()
        gc.collect()
        print(f"  closed in {time.perf_counter() - t0:.1f} s", flush=True)


# ------------------------------------------------------------------------------ end to end


class Busy:
    """Time spent inside calls: summed over calls, and the union (time with >= 1 in flight)."""

    def __init__(self) -> None:
        self.calls = 0
        self.summed = 0.0
        self.union = 0.0
        self._open = 0
        self._since = 0.0

    @contextlib.asynccontextmanager
    async def timed(self) -> Any:
        t0 = time.perf_counter()
        if self._open == 0:
            self._since = t0
        self._open += 1
        try:
            yield
        finally:
            t1 = time.perf_counter()
            self._open -= 1
            self.calls += 1
            self.summed += t1 - t0
            if self._open == 0:
                self.union += t1 - self._since


class TimedGenerator(Generator):
    """Passes calls to `inner`, timing them."""

    def __init__(self, inner: Generator) -> None:
        super().__init__()
        self.inner, self.busy, self.tokens = inner, Busy(), 0

    async def _generate(self, prompts: Sequence[str], n: int,
                        params: SamplingParams) -> list[list[Completion]]:
        async with self.busy.timed():
            out = await self.inner.generate(prompts, n, params)
        self.tokens += sum(c.tokens for row in out for c in row)
        return out


class TimedVerifier:
    def __init__(self, inner: Any) -> None:
        self.inner, self.busy = inner, Busy()

    async def check(self, request: CheckRequest) -> CheckResult:
        async with self.busy.timed():
            result: CheckResult = await self.inner.check(request)
        return result


async def end_to_end(gen: Any, plan: Plan, args: argparse.Namespace) -> dict[str, Any]:
    from toy_world import ToyLean, ToyModel

    from search.run import search_proof
    from search.types import SearchConfig

    config = SearchConfig(algorithm="rmaxts", budget=plan.e2e_budget,
                          concurrency=plan.e2e_concurrency, seed=0)
    params = params_for(plan.e2e_new_tokens)
    # The search's own cost, with an instant model as well (same problem, budget, concurrency).
    t0 = time.perf_counter()
    alone = await search_proof(E2E_PROBLEM, ToyModel(40, 0.3).generator(), ToyLean(40), config,
                               params=params)
    search_only_s = time.perf_counter() - t0

    timed_gen, timed_lean = TimedGenerator(gen), TimedVerifier(ToyLean(12))
    await search_proof(E2E_PROBLEM, timed_gen, timed_lean,  # warm-up: cache the root prompt
                       replace(config, budget=min(plan.e2e_concurrency, 32)), params=params)
    timed_gen, timed_lean = TimedGenerator(gen), TimedVerifier(ToyLean(12))
    print(f"  e2e: RMaxTS, budget {plan.e2e_budget}, concurrency {plan.e2e_concurrency}, "
          f"{plan.e2e_new_tokens} tokens per sample ...", flush=True)
    t0, c0 = time.perf_counter(), time.process_time()
    result = await search_proof(E2E_PROBLEM, timed_gen, timed_lean, config, params=params)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    slot_s = wall * plan.e2e_concurrency
    g, v = timed_gen.busy, timed_lean.busy
    rest = max(slot_s - g.summed - v.summed, 0.0)
    out = {
        "samples": result.samples, "budget": plan.e2e_budget,
        "concurrency": plan.e2e_concurrency, "tokens_per_sample": plan.e2e_new_tokens,
        "wall_s": round(wall, 2), "samples_per_s": round(result.samples / wall, 2),
        "output_tok_s": round(timed_gen.tokens / wall, 1),
        "tree_size": result.tree_size, "proved": result.proved,
        "generate_calls": g.calls, "checks": v.calls,
        "generate_s_mean": round(g.summed / max(g.calls, 1), 3),
        "check_ms_mean": round(v.summed / max(v.calls, 1) * 1e3, 3),
        # Shares of the slots' time (concurrency x wall): in generate, in check, elsewhere (the
        # search's own code, and waiting for the event loop).
        "slot_share_generate": round(g.summed / slot_s, 4),
        "slot_share_check": round(v.summed / slot_s, 4),
        "slot_share_search": round(rest / slot_s, 4),
        "generation_idle_s": round(wall - g.union, 3),  # no generate call in flight at all
        "frontend_cpu_s": round(cpu, 2),
        "frontend_cpu_ms_per_sample": round(cpu / max(result.samples, 1) * 1e3, 3),
        "search_only_ms_per_sample": round(search_only_s / max(alone.samples, 1) * 1e3, 4),
    }
    print(f"  e2e: {out['samples']} samples in {wall:.1f} s = {out['samples_per_s']} samples/s "
          f"({out['output_tok_s']:,.0f} output tok/s); slot time: generate "
          f"{out['slot_share_generate']:.1%}, check {out['slot_share_check']:.2%}, search "
          f"{out['slot_share_search']:.2%}; search alone {out['search_only_ms_per_sample']} "
          f"ms/sample; front-end CPU {out['frontend_cpu_ms_per_sample']} ms/sample", flush=True)
    return out


# ------------------------------------------------------------------------------ transformers


class DummyTransformersGenerator(TransformersGenerator):
    """Our transformers backend, with random weights built by `from_config` on the device."""

    def _load(self) -> None:
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

        s = self._settings
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        dtype = getattr(torch, s.model_dtype)
        config = AutoConfig.from_pretrained(s.model)
        with device:
            model = AutoModelForCausalLM.from_config(  # type: ignore[no-untyped-call]
                config, dtype=dtype)
        model.eval()
        tok = AutoTokenizer.from_pretrained(s.model)
        tok.padding_side = "left"
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        self._eos_ids = frozenset()  # ignore_eos: every row runs to max_tokens
        self._context_len = s.model_max_len or int(config.max_position_embeddings)
        self._model, self._tokenizer, self._device = model, tok, device


async def run_transformers(model: Path, plan: Plan) -> dict[str, Any]:
    prompts = Prompts(model)
    gen = DummyTransformersGenerator(settings_for(model, plan))
    t0 = time.perf_counter()
    await gen.start()
    start_s = time.perf_counter() - t0
    print(f"  transformers: model built in {start_s:.1f} s", flush=True)
    try:
        warm = sampling_prompts(prompts, min(plan.hf_prompts, 8), plan.sampling_prompt_tokens, 99)
        await ours_batch(gen, warm, params_for(4))
        texts = sampling_prompts(prompts, plan.hf_prompts, plan.sampling_prompt_tokens)
        r = await ours_batch(gen, texts, params_for(plan.hf_new_tokens))
    finally:
        await gen.close()
        gc.collect()
        with contextlib.suppress(Exception):
            import torch

            torch.cuda.empty_cache()
    r.update(start_s=round(start_s, 1), batch=gen.largest_batch,
             generate_calls=gen.generate_calls)
    return r


# ------------------------------------------------------------------------------ report


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"python": sys.version.split()[0], "cpu_count": os.cpu_count()}
    for name in ("vllm", "torch", "transformers"):
        with contextlib.suppress(Exception):
            info[name] = __import__(name).__version__
    with contextlib.suppress(Exception):
        import torch

        info["torch_cuda"] = torch.version.cuda
    with contextlib.suppress(Exception):
        smi = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
             "--format=csv,noheader"], capture_output=True, text=True, timeout=30, check=True)
        info["gpu"] = smi.stdout.strip()
    return info


def sizing(report: dict[str, Any], lean_s: float, checks_per_sample: float) -> dict[str, Any]:
    """GPUs and Lean cores for the paper's miniF2F-test RMaxTS run in one day."""
    e2e = report.get("e2e")
    if not e2e:
        return {}
    samples = PAPER_PROBLEMS * PAPER_RUNS * PAPER_BUDGET
    per_s = samples / 86400
    gpu_rate = e2e["samples_per_s"]
    return {
        "samples": samples, "samples_per_s_needed": round(per_s, 1),
        "gpu_samples_per_s": gpu_rate, "tokens_per_sample": e2e["tokens_per_sample"],
        "gpus": round(per_s / gpu_rate, 1),
        "lean_s_per_check": lean_s, "checks_per_sample": checks_per_sample,
        "lean_cores": round(per_s * checks_per_sample * lean_s),
    }


def parse_kv(items: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def main(args: argparse.Namespace) -> dict[str, Any]:
    t_start = time.perf_counter()
    plan = TINY if args.tiny else GPU
    if args.gpu_memory is not None:
        plan = replace(plan, gpu_memory=args.gpu_memory)
    parts = set(args.parts.split(",")) if args.parts else set(DEFAULT_PARTS)
    unknown = parts - set(PARTS)
    if unknown:
        raise SystemExit(f"unknown parts {sorted(unknown)}; choose from {', '.join(PARTS)}")
    extra = parse_kv(args.engine_kw)
    report: dict[str, Any] = {"tiny": args.tiny, "shape": plan.shape, "plan": asdict(plan),
                              "parts": sorted(parts), "engine_kw": extra, "errors": {},
                              "machine": machine()}

    def record(key: str, value: Any) -> None:
        report[key] = value
        if args.out:
            Path(args.out).write_text(json.dumps(report, sort_keys=True, indent=1))

    def guarded(name: str, fn: Callable[[], Any]) -> None:
        try:
            fn()
        except Exception as exc:  # report it and go on with the other parts
            traceback.print_exc()
            report["errors"][name] = f"{type(exc).__name__}: {exc}"[:2000]
            record("errors", report["errors"])

    print(f"machine: {report['machine']}", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="gpu-bench-"))
    try:
        model = build_model(plan.shape, workdir / plan.shape)
        print(f"model: {plan.shape} {SHAPES[plan.shape]}, random weights, {plan.dtype}; "
              f"files in {model}", flush=True)
        if parts & {"sampling", "prefix", "e2e", "seeded"}:
            guarded("ours", lambda: asyncio.run(
                run_ours(model, plan, parts, extra, True, record, args)))
        if "raw" in parts:
            guarded("raw", lambda: run_raw(model, plan, record))
        if "rawnocache" in parts:
            guarded("rawnocache", lambda: run_raw(model, plan, record, prefix_caching=False))
        if "nocache" in parts:
            guarded("nocache", lambda: asyncio.run(
                run_ours(model, plan, {"nocache"}, extra, False, record, args)))
        if "transformers" in parts:
            print("transformers backend ...", flush=True)
            guarded("transformers", lambda: record(
                "transformers", asyncio.run(run_transformers(model, plan))))
            if "transformers" in report:
                print(human("sampling, transformers", report["transformers"]), flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    summary: dict[str, Any] = {}
    if "ours_sampling" in report and "raw_sampling" in report:
        ratio = report["ours_sampling"]["tok_s"] / report["raw_sampling"]["tok_s"]
        summary["throughput_ratio"] = round(ratio, 4)
        summary["throughput_goal_met"] = ratio >= 0.95
        print(f"sampling: ours / raw = {ratio:.3f} (goal >= 0.95: "
              f"{'met' if ratio >= 0.95 else 'NOT met'})")
    for key, src in (("ours_sampling_tok_s", "ours_sampling"),
                     ("raw_sampling_tok_s", "raw_sampling"),
                     ("ours_seeded_sampling_tok_s", "ours_sampling_seeded"),
                     ("ours_prefix_tok_s", "ours_prefix"),
                     ("ours_prefix_nocache_tok_s", "ours_prefix_nocache"),
                     ("raw_prefix_tok_s", "raw_prefix"),
                     ("raw_prefix_nocache_tok_s", "raw_prefix_nocache"),
                     ("transformers_tok_s", "transformers")):
        if src in report:
            summary[key] = report[src]["tok_s"]
    if "ours_prefix" in report and "ours_prefix_nocache" in report:
        gain = report["ours_prefix_nocache"]["s"] / report["ours_prefix"]["s"]
        summary["prefix_cache_gain"] = round(gain, 3)
        print(f"RMaxTS-like: prefix caching on / off = {gain:.2f}x")
    if "ours_prefix" in report and "raw_prefix" in report:
        summary["prefix_ratio_vs_raw"] = round(
            report["ours_prefix"]["tok_s"] / report["raw_prefix"]["tok_s"], 4)
    if "e2e" in report:
        summary["e2e_samples_per_s"] = report["e2e"]["samples_per_s"]
        sized = sizing(report, args.lean_s_per_check, args.checks_per_sample)
        report["sizing"] = sized
        print(f"one day of the paper's miniF2F-test RMaxTS run ({sized['samples']:,} samples, "
              f"{sized['samples_per_s_needed']} samples/s): {sized['gpus']} such GPUs at "
              f"{sized['gpu_samples_per_s']} samples/s each ({sized['tokens_per_sample']} tokens "
              f"per sample), and {sized['lean_cores']:,} Lean cores at "
              f"{sized['lean_s_per_check']} s per check, {sized['checks_per_sample']} checks "
              f"per sample")
    report.update(summary)
    report["total_s"] = round(time.perf_counter() - t_start, 1)
    record("total_s", report["total_s"])
    print(f"done in {report['total_s']:.0f} s; errors: {report['errors'] or 'none'}", flush=True)
    return report


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", "--quick", action="store_true",
                        help="the tiny model's shape and small workloads, for CPU (CI smoke)")
    parser.add_argument("--parts", help=f"comma-separated subset of: {', '.join(PARTS)}")
    parser.add_argument("--gpu-memory", type=float, default=None,
                        help="gpu_memory_utilization of every engine (default 0.9; --tiny 0.1)")
    parser.add_argument("--engine-kw", action="append", default=[], metavar="KEY=VALUE",
                        help="extra engine argument for OUR engines (JSON value), e.g. "
                             "max_num_seqs=512; repeatable")
    parser.add_argument("--lean-s-per-check", type=float, default=3.0,
                        help="sizing assumption: CPU seconds of Lean per check (default 3)")
    parser.add_argument("--checks-per-sample", type=float, default=1.5,
                        help="sizing assumption: Lean checks per sample (1 + probes; "
                             "default 1.5)")
    parser.add_argument("--out", help="write the JSON gathered so far here after every part")
    report = main(parser.parse_args())
    print(json.dumps(report, sort_keys=True), flush=True)


if __name__ == "__main__":
    cli()
