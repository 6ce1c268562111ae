"""`prover eval` on a 5-problem subset of miniF2F: exact counts, resumption after SIGKILL,
invalid problems, reports, comparison. Scripted generation, fake REPL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from prover.datasets import DatasetError, load_problems
from prover.evaluation import EvalDirError, EvalSpec, evaluate, local_solver
from prover.lean import LeanPool
from prover.model.scripted import ScriptedGenerator
from tests.conftest import REPO, fake_cmd, fake_settings
from tests.openai_stub import StubServer, openai_stub

FIVE = load_problems("minif2f", split="test")[:5]
PROVABLE = {p.name for p in FIVE[::2]}  # problems 0, 2, 4


def model(prompt: str, seed: int) -> str:
    """Proves the provable problems at once; the others never."""
    name = prompt.split("theorem ", 1)[1].split()[0] if "theorem " in prompt else ""
    for p in FIVE:
        if f"theorem {p.name} " in prompt or f"theorem {p.name}\n" in prompt:
            name = p.name
    return ("  nlinarith [sq_nonneg 1]\n```" if name in PROVABLE
            else "  linarith [fail]\n```")


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    src = [json.loads(line) for line in
           (REPO.parent / "shared/data/benchmarks/minif2f.jsonl").read_text().splitlines()]
    rows = [r for r in src if r["split"] == "test"][:5]
    path = tmp_path / "five.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


async def run_eval(spec: EvalSpec, out: Path, gen: ScriptedGenerator | None = None
                   ) -> dict[str, Any]:
    async with LeanPool(fake_settings(lean_sandbox="none")) as pool:
        solve = local_solver(spec, out, gen or ScriptedGenerator(model), pool)
        return await evaluate(spec, out, solve, parallel=3, progress=False)


def lines(out: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]


async def test_counts_and_pass_rate_are_exact(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    spec = EvalSpec(dataset=str(dataset), search="sampling", budget=4, runs=2, concurrency=2)
    summary = await run_eval(spec, out)
    rows = lines(out)
    assert len(rows) == 10 and {(r["key"], r["run"]) for r in rows} == \
        {(p.name, r) for p in FIVE for r in (0, 1)}
    assert all(set(r) >= {"name", "proved", "proof", "samples", "time_s"} for r in rows)
    for r in rows:
        assert r["proved"] == (r["name"] in PROVABLE)
        assert r["samples"] == (1 if r["proved"] else 4)
    assert summary["problems"] == 5 and summary["proved"] == 3
    assert summary["pass_rate"] == 0.6
    assert [r["proved"] for r in summary["per_run"]] == [3, 3]
    saved = json.loads((out / "summary.json").read_text())
    assert {k: saved[k] for k in ("dataset", "split", "problems", "proved", "pass_rate",
                                  "search", "budget", "runs")} == {
        "dataset": str(dataset), "split": "test", "problems": 5, "proved": 3,
        "pass_rate": 0.6, "search": "sampling", "budget": 4, "runs": 2}
    table = (out / "summary.md").read_text()
    assert "| 5 | 3 | 60.00% |" in table
    png = (out / "pass_rate.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"


async def test_rerun_skips_finished_pairs(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    spec = EvalSpec(dataset=str(dataset), search="rmaxts", budget=3, runs=1, concurrency=1)
    await run_eval(spec, out)
    gen = ScriptedGenerator(model)
    summary = await run_eval(spec, out, gen)
    assert gen.prompts == [] and len(lines(out)) == 5 and summary["proved"] == 3
    assert not list((out / "checkpoints").glob("*.json"))  # finished trees are not kept


async def test_mix_alternates_prompt_formats_between_runs(dataset: Path, tmp_path: Path
                                                          ) -> None:
    gen = ScriptedGenerator(model)
    spec = EvalSpec(dataset=str(dataset), search="sampling", budget=1, runs=2, mode="mix",
                    limit=1)
    await run_eval(spec, tmp_path / "out", gen)
    assert {r["mode"] for r in lines(tmp_path / "out")} == {"cot", "non-cot"}
    assert len(set(gen.prompts)) == 2  # the two formats differ


async def test_unparsable_problems_are_reported_and_count(dataset: Path, tmp_path: Path
                                                          ) -> None:
    bad = {"name": "broken", "split": "test", "header": "import Mathlib\n",
           "informal_prefix": "", "formal_statement": "def broken := 1\n", "goal": ""}
    with dataset.open("a") as f:
        f.write(json.dumps(bad) + "\n")
    summary = await run_eval(EvalSpec(dataset=str(dataset), search="sampling", budget=1),
                             tmp_path / "out")
    assert summary["problems"] == 6 and summary["proved"] == 3 and summary["pass_rate"] == 0.5
    assert summary["invalid"][0]["name"] == "broken"
    assert "broken" in (tmp_path / "out" / "summary.md").read_text()


async def test_another_evaluation_in_the_same_directory_is_refused(dataset: Path,
                                                                  tmp_path: Path) -> None:
    out = tmp_path / "out"
    await run_eval(EvalSpec(dataset=str(dataset), search="sampling", budget=1, limit=1), out)
    with pytest.raises(EvalDirError, match="budget: 1 there, 2 now"):
        await run_eval(EvalSpec(dataset=str(dataset), search="sampling", budget=2, limit=1),
                       out)


def test_a_directory_from_before_later_settings_resumes_with_their_old_values(
        tmp_path: Path) -> None:
    """A config.json written before lean_env and the prover profile existed: it ran
    deepseek-v1.5 with Goedel-V2's repair defaults, in the one environment there was."""
    from prover.evaluation.store import ResultStore

    out = tmp_path / "out"
    out.mkdir()
    old = EvalSpec(dataset="minif2f", search="sampling", budget=1).to_json()
    for later in ("lean_env", "profile", "samples", "corrections", "rounds"):
        del old[later]
    (out / "config.json").write_text(json.dumps(old))
    same = EvalSpec(dataset="minif2f", search="sampling", budget=1, lean_env="v4_9")
    ResultStore(out, same).open().close()  # any environment: it ran in the only one
    other = EvalSpec(dataset="minif2f", search="sampling", budget=1, profile="goedel-v2")
    with pytest.raises(EvalDirError, match=r"profile: 'deepseek-v1\.5' there, 'goedel-v2' now"):
        ResultStore(out, other).open()


def test_an_eval_job_carries_its_environment_and_its_profile_settings() -> None:
    """What a `prover worker` needs to search a pair as the local evaluator would."""
    from prover.evaluation.distributed import job_request
    from prover.evaluation.plan import Item
    from prover.problem_input import problem_from_statement

    spec = EvalSpec(dataset="minif2f", search="repair", lean_env="v4_15",
                    profile="kimina-prover", samples=4, corrections=1, rounds=3)
    item = Item("t", problem_from_statement("theorem t : True := by"), 0, "cot", 7)
    request = job_request(spec, item)
    assert {k: request[k] for k in ("search", "lean_env", "profile", "samples", "corrections",
                                    "rounds")} == {
        "search": "repair", "lean_env": "v4_15", "profile": "kimina-prover", "samples": 4,
        "corrections": 1, "rounds": 3}


def test_malformed_dataset_line_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"name": "a", "formal_statement": "theorem a : True := by\\n"}\n{oops\n')
    with pytest.raises(DatasetError, match=r"bad.jsonl:2"):
        load_problems(path)
    done = subprocess.run([sys.executable, "-m", "prover", "eval", "--dataset", str(path),
                           "--out", str(tmp_path / "o")], capture_output=True, text=True,
                          cwd=REPO, timeout=60)
    assert done.returncode == 2 and "bad.jsonl:2" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with openai_stub(lambda prompt: model(prompt, 0), delay=0.15) as server:
        yield server


def test_sigkill_half_way_then_rerun_loses_and_repeats_nothing(dataset: Path, tmp_path: Path,
                                                               stub: StubServer) -> None:
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "prover", "eval", "--dataset", str(dataset), "--search",
           "sampling", "--budget", "3", "--runs", "2", "--parallel", "2", "--concurrency", "1",
           "--out", str(out), "-q"]
    env = {**os.environ, **stub.env(), "PROVER_LEAN_REPL_CMD": fake_cmd(),
           "PROVER_LEAN_WORKERS": "1"}
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    results = out / "results.jsonl"
    deadline = time.monotonic() + 60
    while not (results.exists() and results.read_text().count("\n") >= 3):
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert time.monotonic() < deadline, "the evaluation made no progress"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = lines(out)
    assert 3 <= len(before) < 10
    done = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    after = lines(out)
    pairs = [(r["key"], r["run"]) for r in after]
    assert len(pairs) == len(set(pairs)) == 10  # none lost, none twice
    assert after[: len(before)] == before  # finished lines are kept as they were
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["proved"] == 3 and summary["pass_rate"] == 0.6


def chat_model(prompt: Any, seed: int) -> str:
    """A chat prover whose first answers fail; after one correction it proves the provable."""
    name = next(p.name for p in FIVE if f"theorem {p.name} " in prompt[0].content)
    tactic = "nlinarith [sq_nonneg 1]" if len(prompt) > 1 and name in PROVABLE else \
        "linarith [fail]"
    return f"Plan.\n```lean4\ntheorem {name} : True := by\n  {tactic}\n```"


async def test_a_repair_evaluation_records_its_profile(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    spec = EvalSpec(dataset=str(dataset), search="repair", budget=10, profile="goedel-v2",
                    samples=2, corrections=1, rounds=1, concurrency=2)
    summary = await run_eval(spec, out, ScriptedGenerator(chat_model))
    assert summary["profile"] == "goedel-v2" and summary["proved"] == 3
    # each provable problem: 2 failed first answers, then its first correction proves it
    assert {r["samples"] for r in lines(out) if r["proved"]} <= {3, 4}
    assert {r["samples"] for r in lines(out) if not r["proved"]} == {4}
    assert "| goedel-v2 | repair |" in (out / "summary.md").read_text()


def test_compare_lists_what_each_proved_alone(tmp_path: Path) -> None:
    for name, proved in (("a", ["p1", "p2"]), ("b", ["p2", "p3"])):
        d = tmp_path / name
        d.mkdir()
        d.joinpath("results.jsonl").write_text("".join(
            json.dumps({"name": k, "key": k, "run": 0, "proved": k in proved}) + "\n"
            for k in ("p1", "p2", "p3")))
        d.joinpath("summary.json").write_text(json.dumps(
            {"pass_rate": len(proved) / 3, "search": "repair" if name == "a" else "rmaxts",
             "budget": 64, **({"profile": "goedel-v2"} if name == "a" else {})}))
    done = subprocess.run([sys.executable, "-m", "prover", "eval", "compare",
                           str(tmp_path / "a"), str(tmp_path / "b")],
                          capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert "both: 1" in text
    # Runs of different profiles side by side (a summary without one is DeepSeek-V1.5's).
    assert f"{tmp_path / 'a'} [goedel-v2, repair x 64]: 2 proved" in text
    assert f"{tmp_path / 'b'} [deepseek-v1.5, rmaxts x 64]: 2 proved" in text
    assert f"only {tmp_path / 'a'} (1):\n  p1" in text
    assert f"only {tmp_path / 'b'} (1):\n  p3" in text


async def test_two_workers_share_one_evaluation_through_redis_each_pair_once(
        dataset: Path, tmp_path: Path, redis_url: str) -> None:
    from prover.evaluation.distributed import queue_solver
    from server.jobs import JobStore, connect
    from tests.test_worker import Scripted, worker, worker_settings

    settings = worker_settings(redis_url, worker_jobs=2)
    spec = EvalSpec(dataset=str(dataset), search="rmaxts", budget=3, runs=2, concurrency=1)
    out = tmp_path / "out"
    first, second = Scripted(model, delay=0.01), Scripted(model, delay=0.01)
    async with worker(settings, first, "w1"), worker(settings, second, "w2"):
        async with queue_solver(spec, settings) as solve:
            summary = await evaluate(spec, out, solve, parallel=16, progress=False)
        assert summary["proved"] == 3 and summary["pass_rate"] == 0.6
        pairs = [(r["key"], r["run"]) for r in lines(out)]
        assert len(pairs) == len(set(pairs)) == 10
        # Each (problem, run) was searched by exactly one worker: an unprovable problem costs
        # budget (3) generations per run, a provable one 1, and nothing was done twice.
        calls = {p.name: first.calls_for(p.name) + second.calls_for(p.name) for p in FIVE}
        assert calls == {p.name: (1 if p.name in PROVABLE else 3) * 2 for p in FIVE}
        assert first.prompts and second.prompts  # both workers took part
        # A client killed after its jobs finished but before it wrote their lines: the rerun
        # finds the finished jobs by their idempotency keys instead of searching again.
        kept = (out / "results.jsonl").read_text().splitlines(keepends=True)[:4]
        (out / "results.jsonl").write_text("".join(kept))
        store = JobStore(connect(redis_url))
        before = (await store.status_counts()).get("succeeded", 0)
        async with queue_solver(spec, settings) as solve:
            await evaluate(spec, out, solve, parallel=16, progress=False)
        assert (await store.status_counts()).get("succeeded", 0) == before
        assert {p.name: first.calls_for(p.name) + second.calls_for(p.name) for p in FIVE} == \
            calls
        await store.close()
    assert sorted((r["key"], r["run"]) for r in lines(out)) == sorted(pairs)


async def test_a_queued_eval_job_samples_with_the_command_lines_settings(
        dataset: Path, tmp_path: Path, redis_url: str) -> None:
    """`prover eval --queue ... --temperature 0.3 --top-p 0.5 --max-tokens 77`: the worker
    samples with those, not the profile's defaults; a job queued without them (by an older
    `prover eval`) gets the profile's."""
    from prover.evaluation.distributed import queue_solver
    from prover.model.base import SamplingParams
    from prover.profiles import get_profile
    from tests.test_worker import Scripted, worker, worker_settings

    settings = worker_settings(redis_url)
    given = SamplingParams(temperature=0.3, top_p=0.5, max_tokens=77)
    gen = Scripted(model)
    async with worker(settings, gen, "w1"):
        spec = EvalSpec(dataset=str(dataset), search="sampling", budget=2, limit=1)
        async with queue_solver(spec, settings, given) as solve:
            await evaluate(spec, tmp_path / "cli", solve, parallel=1, progress=False)
        assert gen.params and {(p.temperature, p.top_p, p.max_tokens)
                               for p in gen.params} == {(0.3, 0.5, 77)}
        gen.params.clear()
        old = EvalSpec(dataset=str(dataset), search="sampling", budget=2, limit=1, seed=1)
        async with queue_solver(old, settings) as solve:
            await evaluate(old, tmp_path / "old", solve, parallel=1, progress=False)
        default = get_profile(old.profile).sampling()
        assert gen.params and {(p.temperature, p.top_p, p.max_tokens) for p in gen.params} == {
            (default.temperature, default.top_p, default.max_tokens)}


async def test_an_interrupted_rmaxts_run_resumes_its_tree_from_the_checkpoint(
        dataset: Path, tmp_path: Path) -> None:
    from prover.model.base import GenerationError

    unprovable = next(p.name for p in FIVE if p.name not in PROVABLE)
    calls = {"n": 0}

    def dying(prompt: str, seed: int) -> str:
        calls["n"] += 1
        if calls["n"] > 40:
            raise GenerationError("the model server went away")
        return "  intro x\n  skip\n  linarith [fail]\n```"

    out = tmp_path / "out"
    spec = EvalSpec(dataset=str(dataset), search="rmaxts", budget=60, concurrency=1,
                    problems=(unprovable,))
    with pytest.raises(GenerationError):
        await run_eval(spec, out, ScriptedGenerator(dying))
    saved = json.loads(next((out / "checkpoints").glob("*.json")).read_text())
    assert saved["samples"] >= 32  # checkpointed every 32 samples, and when the search stopped
    again = ScriptedGenerator(lambda prompt, seed: "  intro x\n  linarith [fail]\n```")
    summary = await run_eval(spec, out, again)
    [row] = lines(out)
    assert row["samples"] == 60 and not row["proved"] and summary["finished"] == 1
    assert len(again.prompts) == 60 - saved["samples"]
