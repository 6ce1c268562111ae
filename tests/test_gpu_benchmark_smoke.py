"""The GPU benchmark (benchmarks/gpu_generation.py) runs end to end on CPU in its --tiny mode.

Same code paths as on the GPU (a config.json with random "dummy" weights, the padded tokenizer,
exact-length prompts, our vLLM backend against raw `vllm.LLM`, prefix caching on and off, an
RMaxTS search against the toy Lean, the transformers backend, the sizing estimate), on the tiny
model's shape. Timings are not asserted; the shape of the report and the token counts are.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("vllm")

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "benchmarks" / "gpu_generation.py"

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(300)]

SUMMARY_KEYS = (
    "throughput_ratio", "throughput_goal_met", "ours_sampling_tok_s", "raw_sampling_tok_s",
    "ours_prefix_tok_s", "ours_prefix_nocache_tok_s", "raw_prefix_tok_s", "prefix_cache_gain",
    "prefix_ratio_vs_raw", "e2e_samples_per_s", "transformers_tok_s",
)
RUN_KEYS = ("s", "output_tokens", "prompt_tokens", "tok_s", "cached_prompt_fraction")


def test_tiny_run_reports_every_part_in_its_last_line(tmp_path: Path) -> None:
    out = tmp_path / "partial.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--tiny", "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=280,
    )
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    lines = done.stdout.strip().splitlines()
    assert len(lines) > 5, "human-readable lines come before the JSON"
    report = json.loads(lines[-1])
    assert report["errors"] == {}, report["errors"]
    missing = [k for k in SUMMARY_KEYS if k not in report]
    assert not missing, missing
    assert json.loads(out.read_text())["total_s"] == report["total_s"]

    plan = report["plan"]
    for key in ("ours_sampling", "raw_sampling", "ours_prefix", "ours_prefix_nocache",
                "raw_prefix", "transformers"):
        assert all(k in report[key] for k in RUN_KEYS), (key, report[key])
        assert report[key]["tok_s"] > 0
    # Fixed-length samples and exact-length prompts: both sides did the same work.
    n, p, t = plan["sampling_prompts"], plan["sampling_prompt_tokens"], plan["sampling_new_tokens"]
    for key in ("ours_sampling", "raw_sampling"):
        assert report[key]["output_tokens"] == n * t
        assert report[key]["prompt_tokens"] == n * p
    prefix_prompt = plan["prefix_tokens"] + plan["suffix_tokens"]
    for key in ("ours_prefix", "ours_prefix_nocache", "raw_prefix"):
        assert report[key]["prompt_tokens"] == plan["prefix_prompts"] * prefix_prompt
        assert report[key]["output_tokens"] == plan["prefix_prompts"] * plan["prefix_new_tokens"]
    # The shared prefix comes from the cache when it is on, never when it is off.
    assert report["ours_prefix"]["cached_prompt_fraction"] > 0.8
    assert report["ours_prefix_nocache"]["cached_prompt_fraction"] == 0
    assert report["transformers"]["output_tokens"] == plan["hf_prompts"] * plan["hf_new_tokens"]
    assert report["transformers"]["batch"] == plan["hf_max_batch"]
    # Our engines run with vllm.LLM's batch limits (the throughput usage context).
    for key in ("max_num_seqs", "max_num_batched_tokens"):
        assert report["ours_engine"][key] == report["raw_engine"][key]

    e2e = report["e2e"]
    assert e2e["samples"] == plan["e2e_budget"]
    assert e2e["generate_calls"] == e2e["samples"]
    assert e2e["checks"] >= e2e["samples"]
    shares = e2e["slot_share_generate"] + e2e["slot_share_check"] + e2e["slot_share_search"]
    assert shares == pytest.approx(1.0, abs=0.01)
    sizing = report["sizing"]
    assert sizing["samples"] == 244 * 16 * 6400
    assert sizing["gpus"] > 0 and sizing["lean_cores"] > 0


def test_chat_benchmark_tiny_run_renders_chats_and_reports_the_sizing(tmp_path: Path) -> None:
    """benchmarks/gpu_chat_generation.py: chat prompts through the chat template, every answer
    exactly `--new-tokens` long, and the one-day sizing from the measured rate."""
    out = tmp_path / "chat.json"
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu_chat_generation.py"), "--tiny",
         "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=280,
    )
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    last = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(last["models"]) == {"tiny"}
    tiny = json.loads(out.read_text())["models"]["tiny"]
    assert tiny["output_tokens"] == 8 * 32  # 8 conversations, 32 tokens each
    sizing = tiny["one_day_minif2f_test"]["pass@32"]
    assert sizing["answers"] == 244 * 32 and sizing["gpu_hours"] > 0
