"""The in-process vLLM backend on the tiny random LLaMA model (tests/fixtures/tiny_model.py).

One engine serves the whole module, because starting one takes tens of seconds on CPU. What is
asserted comes from the engine itself where it can: vLLM's scheduler statistics (`gen.load`:
how many requests ran in one decoding batch) show that concurrent callers shared a batch and
that a cancelled request stopped running; psutil shows that closing leaves no process behind.
No assertion depends on how long anything took.

The last test closes the shared engine; keep it last.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest
import pytest_asyncio

pytest.importorskip("vllm")

from prover.config import Settings
from prover.model.base import (
    BackendUnavailable,
    ChatMessage,
    Completion,
    GenerationError,
    SamplingParams,
)
from prover.model.vllm_backend import VllmGenerator

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.timeout(300),  # the first test also pays for the engine start
]

PROMPTS = [
    "theorem mathd_algebra_10 : abs ((120 : ℝ) / 100 * 30 - 130 / 100 * 20) = 10 := by\n",
    "theorem amc12a_2019_p21 (z : ℂ) (h₀ : z = (1 + Complex.I) / Real.sqrt 2) :\n",
    "theorem t : 1 + 1 = 2 := by\n",
]


def tiny_settings(model: Path, **changes: object) -> Settings:
    """Small reservations: the test machine's NUMA node has ~8 GiB and is shared."""
    base = Settings().with_overrides(
        model=str(model), model_dtype="float32", model_gpu_memory=0.1, model_max_len=4096,
        model_seed=0,
    )
    return base.with_overrides(**changes)


def new_processes(before: set[int]) -> list[psutil.Process]:
    """Descendants of this process started since `before`, except multiprocessing's resource
    tracker (one per interpreter, started on first use and kept until exit by design)."""
    out = []
    for p in psutil.Process().children(recursive=True):
        if p.pid in before:
            continue
        try:
            if "resource_tracker" in " ".join(p.cmdline()):
                continue
        except psutil.NoSuchProcess:
            continue
        except psutil.ZombieProcess:
            pass
        out.append(p)
    return out


@contextmanager
def overrides(gen: VllmGenerator, **fields: object) -> Iterator[None]:
    saved = dict(gen.sampling_overrides)
    gen.sampling_overrides.update(fields)
    try:
        yield
    finally:
        gen.sampling_overrides = saved


async def wait_for(predicate: Callable[[], bool], what: str) -> None:
    for _ in range(6000):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


async def wait_until_running(gen: VllmGenerator, prompts: int, running: int) -> None:
    """Until our `prompts` requests are submitted and the engine's scheduler, in a step after
    that, reports `running` running sequences (its own statistics, not our bookkeeping)."""
    await wait_for(lambda: gen.in_flight >= prompts, f"{prompts} requests submitted")
    steps = gen.load.steps
    await wait_for(lambda: gen.load.steps > steps and gen.load.running >= running,
                   f"the engine runs {running} sequences ({gen.load})")


async def wait_until_idle(gen: VllmGenerator) -> None:
    await wait_for(lambda: gen.load.running == 0 and gen.load.waiting == 0,
                   f"the engine reports no running request ({gen.load})")


@pytest.fixture(scope="module")
def before_engine() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gen(tiny_model: Path, before_engine: set[int]) -> AsyncIterator[VllmGenerator]:
    generator = VllmGenerator(
        tiny_settings(tiny_model), engine_kwargs={"enforce_eager": True}, engine_stats=True
    )
    await generator.start()
    try:
        yield generator
    finally:
        await generator.close()


# ------------------------------------------------------------------------------ start failures


async def test_unknown_model_names_the_setting(tmp_path: Path) -> None:
    gen = VllmGenerator(tiny_settings(tmp_path / "no-such-model"))
    with pytest.raises(BackendUnavailable) as info:
        await gen.start()
    assert "PROVER_MODEL" in str(info.value)
    assert "no-such-model" in str(info.value)


async def test_memory_failure_quotes_the_engines_cause_and_the_fix(tiny_model: Path) -> None:
    """The cause is logged by the engine-core child; the parent only gets 'see above'."""
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    # 0.0001 of any machine's memory cannot hold even the tiny model's weights.
    gen = VllmGenerator(
        tiny_settings(tiny_model, model_gpu_memory=0.0001), engine_kwargs={"enforce_eager": True}
    )
    with pytest.raises(BackendUnavailable) as info:
        await gen.start()
    message = str(info.value)
    assert "PROVER_MODEL_GPU_MEMORY=0.0001" in message, message
    assert "memory" in message.split("Fix:")[0].lower(), message
    assert "See root cause above" not in message, message  # the root cause itself is quoted
    assert new_processes(before) == []


async def test_a_chat_profile_on_a_model_without_template_fails_at_start(
        tiny_model: Path) -> None:
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    gen = VllmGenerator(tiny_settings(tiny_model, model_profile="goedel-v2"),
                        engine_kwargs={"enforce_eager": True})
    with pytest.raises(BackendUnavailable) as info:
        await gen.start()
    message = str(info.value)
    assert "\n" not in message and "has no chat template" in message and "goedel-v2" in message
    assert new_processes(before) == []  # the engine it started is stopped


async def test_chat_prompts_use_the_models_chat_template(tiny_chat_model: Path) -> None:
    chat = (ChatMessage("system", "Be brief."), ChatMessage("user", "theorem t : True"))
    async with VllmGenerator(tiny_settings(tiny_chat_model, model_profile="kimina-prover"),
                             engine_kwargs={"enforce_eager": True}) as gen:
        rendered = gen.render_chat(chat)
        params = SamplingParams(max_tokens=6, seed=3)
        [[answer]] = await gen.generate([chat], 1, params)
        [[same]] = await gen.generate([rendered], 1, params)
    assert rendered == "Be brief.\n\nUser: theorem t : True\n\nAssistant:"
    assert (answer.text, answer.prompt_tokens) == (same.text, same.prompt_tokens)


# ------------------------------------------------------------------------------ sampling


async def test_n_samples_for_each_prompt_of_a_batch(gen: VllmGenerator) -> None:
    completions_before = gen.stats.completions
    result = await gen.generate(PROMPTS, n=4, params=SamplingParams(max_tokens=12, seed=1))
    assert len(result) == len(PROMPTS)
    tokenizer = gen.engine.get_tokenizer()
    for prompt, row in zip(PROMPTS, result, strict=True):
        assert len(row) == 4
        expected_prompt_tokens = len(tokenizer.encode(prompt))
        for c in row:
            assert 1 <= c.tokens <= 12
            assert c.prompt_tokens == expected_prompt_tokens
            assert c.finish_reason in ("stop", "length")
            assert isinstance(c.text, str)
    assert gen.stats.completions - completions_before == 4 * len(PROMPTS)


async def test_honours_max_tokens(gen: VllmGenerator) -> None:
    result = await gen.generate(PROMPTS, n=8, params=SamplingParams(max_tokens=5))
    for c in (c for row in result for c in row):
        assert c.tokens <= 5
        assert (c.finish_reason == "length") == (c.tokens == 5)
    with overrides(gen, ignore_eos=True):
        result = await gen.generate(PROMPTS, n=2, params=SamplingParams(max_tokens=37))
    assert {(c.tokens, c.finish_reason) for row in result for c in row} == {(37, "length")}


async def test_stop_strings_end_the_sample(gen: VllmGenerator) -> None:
    params = SamplingParams(max_tokens=40, seed=7)
    with overrides(gen, ignore_eos=True):
        [[full]] = await gen.generate([PROMPTS[2]], 1, params)
        # A stop string taken from the middle of the seeded sample ends its replay there.
        stop = full.text[len(full.text) // 2 :][:3]
        assert stop.strip(), full.text
        [[cut]] = await gen.generate(
            [PROMPTS[2]], 1, SamplingParams(max_tokens=40, seed=7, stop=(stop,))
        )
    assert cut.finish_reason == "stop"
    assert cut.tokens < full.tokens
    assert full.text.startswith(cut.text)
    assert stop not in cut.text


async def test_log_probabilities_come_back_when_asked(gen: VllmGenerator) -> None:
    """Best-first search ranks states by them (search/bfs.py)."""
    [[plain]] = await gen.generate([PROMPTS[0]], 1, SamplingParams(max_tokens=8, seed=3))
    [row] = await gen.generate([PROMPTS[0]], 3,
                               SamplingParams(max_tokens=8, seed=3, logprobs=True))
    assert plain.logprob is None
    assert all(c.logprob is not None and c.logprob < 0 for c in row)


async def test_seeds_make_samples_reproducible(gen: VllmGenerator) -> None:
    params = SamplingParams(max_tokens=24, seed=1234)
    first = await gen.generate(PROMPTS[:2], n=3, params=params)
    again = await gen.generate(PROMPTS[:2], n=3, params=params)
    other = await gen.generate(PROMPTS[:2], n=3, params=SamplingParams(max_tokens=24, seed=99))

    def texts(rows: list[list[Completion]]) -> list[list[str]]:
        return [[c.text for c in row] for row in rows]

    assert texts(first) == texts(again)
    assert texts(first) != texts(other)
    assert len(set(texts(first)[0])) > 1  # the n samples of one prompt differ from each other


async def test_32_concurrent_callers_share_the_engines_batch(gen: VllmGenerator) -> None:
    gen.reset_peaks()
    requests_before = gen.stats.requests
    with overrides(gen, ignore_eos=True):
        results = await asyncio.gather(*(
            gen.generate([f"theorem job_{i} (n : ℕ) : n + {i} = {i} + n := by\n"], 1,
                         SamplingParams(max_tokens=96))
            for i in range(32)
        ))
    assert len(results) == 32
    assert all(len(r) == 1 and len(r[0]) == 1 and r[0][0].tokens == 96 for r in results)
    assert gen.stats.requests - requests_before == 32
    assert gen.peak_in_flight == 32  # all were submitted before any finished
    # The engine's scheduler ran all 32 in one decoding batch: nobody waited for anybody.
    assert gen.load.peak_running == 32, gen.load


async def test_a_new_caller_does_not_wait_for_a_running_batch(gen: VllmGenerator) -> None:
    with overrides(gen, ignore_eos=True):
        long = asyncio.create_task(
            gen.generate([PROMPTS[0]], 4, SamplingParams(max_tokens=3000))
        )
        try:
            await wait_until_running(gen, 1, 4)
            [[short]] = await gen.generate([PROMPTS[2]], 1, SamplingParams(max_tokens=4))
            assert short.tokens == 4
            assert not long.done()  # joined the running batch instead of queueing behind it
        finally:
            long.cancel()
            with pytest.raises(asyncio.CancelledError):
                await long
    await wait_until_idle(gen)


async def test_cancelling_a_caller_aborts_its_engine_requests(gen: VllmGenerator) -> None:
    aborted_before = gen.stats.extra["aborted_requests"]
    with overrides(gen, ignore_eos=True):
        task = asyncio.create_task(
            gen.generate(PROMPTS[:2], 2, SamplingParams(max_tokens=3000))
        )
        await wait_until_running(gen, 2, 4)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert gen.stats.extra["aborted_requests"] - aborted_before == 2
    assert gen.in_flight == 0
    # (AsyncLLM has this count from 0.26 on; its output processor has it in 0.25 too.)
    assert gen.engine.output_processor.get_num_unfinished_requests() == 0
    # The engine itself stopped running them: it reports itself idle, and the next batch holds
    # only the new request.
    await wait_until_idle(gen)
    gen.reset_peaks()
    [[c]] = await gen.generate([PROMPTS[2]], 1, SamplingParams(max_tokens=8))
    assert c.tokens >= 1
    assert gen.load.peak_running == 1, gen.load


# ------------------------------------------------------------------------------ close (last)


async def test_close_fails_running_callers_and_leaves_no_processes(
    gen: VllmGenerator, before_engine: set[int]
) -> None:
    assert new_processes(before_engine), "the engine runs in child processes"
    with overrides(gen, ignore_eos=True):
        running = asyncio.create_task(
            gen.generate([PROMPTS[0]], 1, SamplingParams(max_tokens=3000))
        )
        await wait_until_running(gen, 1, 1)
        await gen.close()
    with pytest.raises(GenerationError, match="closed"):
        await running
    leftover = new_processes(before_engine)
    assert leftover == [], [(p.pid, p.name(), p.status()) for p in leftover]
    await gen.close()  # idempotent
    with pytest.raises(GenerationError, match="not started"):
        await gen.generate([PROMPTS[0]], 1)
