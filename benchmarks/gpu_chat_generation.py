#!/usr/bin/env python3
"""CoT-length generation of today's chat provers on a GPU (issue 16).

    python benchmarks/gpu_chat_generation.py [--shapes LIST] [--prompts N] [--new-tokens T]
                                             [--out FILE]
    python benchmarks/gpu_chat_generation.py --tiny     # the same code path on CPU

Chat provers write a plan before their code: DeepSeek-Prover-V2's chain-of-thought answers
average 4.5-6.8k tokens, Goedel-Prover-V2 allows 32K per answer. This measures what that costs
on one GPU with random ("dummy") weights of the real architectures (`--shapes`, default both):

- deepseek-prover-v2-7b: DeepSeek-Prover-V1.5's LLaMA (30 layers, 32 KV heads: 480 KiB of KV
  cache per token) with a 32K context;
- goedel-prover-v2-8b: Qwen3-8B (36 layers, 8 KV heads: 144 KiB per token).

Each of `--prompts` conversations (one user turn of `--prompt-tokens` tokens, rendered by the
tokenizer's chat template, as the goedel-v2 profile sends them) is one caller of our
`VllmGenerator`, all at once, each asking for one answer of exactly `--new-tokens` tokens
(`ignore_eos`). The tokenizer is the tiny test model's, padded to each vocabulary (see
gpu_generation.py). Reported: output tokens/s, answers/s, the KV cache's size, and the GPUs a
day of miniF2F-test at the published budgets would need. The LAST line printed is one JSON
object; `--out FILE` is rewritten after every model, so a run cut short keeps what it measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

import gpu_generation as base  # this folder; it puts the repository on sys.path

from prover.config import Settings
from prover.model.base import ChatMessage
from prover.model.vllm_backend import VllmGenerator

SHAPES = ("deepseek-prover-v2-7b", "goedel-prover-v2-8b")
MINIF2F_TEST = 244
DAY_S = 86_400
# Published budgets per miniF2F-test problem: pass@32 (Goedel-Prover-V2's headline), and pass@32
# with two rounds of self-correction as Goedel-Prover-V2's pipeline.sh runs them (2 corrections
# per failed attempt and round: 32 + 64 + 128 answers at most).
BUDGETS = {"pass@32": 32, "pass@32+2 correction rounds (at most)": 32 + 64 + 128}


def with_chat_template(model: Path) -> None:
    from tiny_model import CHAT_TEMPLATE  # tests/fixtures, on sys.path through gpu_generation

    path = model / "tokenizer_config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config["chat_template"] = CHAT_TEMPLATE
    path.write_text(json.dumps(config, indent=1), encoding="utf-8")


async def measure(shape: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    model = base.build_model(shape, workdir / shape)
    with_chat_template(model)
    settings = Settings().with_overrides(
        model=str(model), model_dtype="float32" if args.tiny else "bfloat16",
        model_gpu_memory=args.gpu_memory, model_max_len=args.prompt_tokens + args.new_tokens + 64,
        model_seed=0, model_profile="goedel-v2", model_prompt="cot",
    )
    engine_kwargs: dict[str, Any] = {"load_format": "dummy"}
    if args.tiny:
        engine_kwargs["enforce_eager"] = True
    gen = VllmGenerator(settings, engine_kwargs=engine_kwargs,
                        sampling_overrides={"ignore_eos": True})
    words = base.Prompts(model)
    rng = random.Random(7)
    chats = [(ChatMessage("user", words.text(rng, args.prompt_tokens)),)
             for _ in range(args.prompts)]
    print(f"{shape}: starting the engine ...", flush=True)
    async with gen:
        facts = {"start_s": round(gen.start_s or 0.0, 1),
                 **base.engine_facts(gen.engine.vllm_config)}
        print(f"  started: {facts}", flush=True)
        await base.ours_batch(gen, chats[:16], base.params_for(8))  # warm-up
        result = await base.ours_batch(gen, chats, base.params_for(args.new_tokens))
    result["answers_s"] = round(args.prompts / result["s"], 3)
    result["kv_cache_tokens"] = facts.get("num_gpu_blocks", 0) * facts.get("block_size", 0)
    result["engine"] = facts
    print(base.human("chat, CoT length", result)
          + f"; {result['answers_s']:.2f} answers/s", flush=True)
    return result


def sizing(rate: float) -> dict[str, Any]:
    """GPUs for one day of miniF2F-test at each published budget, at `rate` answers/s."""
    out: dict[str, Any] = {}
    for name, per_problem in BUDGETS.items():
        answers = MINIF2F_TEST * per_problem
        out[name] = {"answers": answers, "gpu_hours": round(answers / rate / 3600, 2),
                     "gpus_for_one_day": round(answers / rate / DAY_S, 3)}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--prompts", type=int, default=None,
                        help="conversations at once (default 96 for V2-7B, 192 for Qwen3-8B)")
    parser.add_argument("--prompt-tokens", type=int, default=400)
    parser.add_argument("--new-tokens", type=int, default=4096)
    parser.add_argument("--gpu-memory", type=float, default=0.9)
    parser.add_argument("--tiny", action="store_true", help="the tiny model on CPU")
    parser.add_argument("--out", help="JSON file rewritten after every model")
    args = parser.parse_args()
    shapes = ["tiny"] if args.tiny else args.shapes.split(",")
    if args.tiny:
        args.prompt_tokens, args.new_tokens, args.gpu_memory = 64, 32, 0.1
    report: dict[str, Any] = {"new_tokens": args.new_tokens, "prompt_tokens": args.prompt_tokens,
                              "models": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for shape in shapes:
            wanted = args.prompts or (8 if args.tiny else 96 if "v2-7b" in shape else 192)
            run_args = argparse.Namespace(**{**vars(args), "prompts": wanted})
            result = asyncio.run(measure(shape, run_args, Path(tmp)))
            result["one_day_minif2f_test"] = sizing(result["answers_s"])
            report["models"][shape] = result
            if args.out:
                Path(args.out).write_text(json.dumps(report, indent=1, sort_keys=True))
    summary = {shape: {"tok_s": r["tok_s"], "answers_s": r["answers_s"],
                       "kv_cache_tokens": r["kv_cache_tokens"]}
               for shape, r in report["models"].items()}
    print(json.dumps({"new_tokens": args.new_tokens, "models": summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
