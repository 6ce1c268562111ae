"""The transformers backend on the tiny random LLaMA: batching, sample counts, limits, seeds."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from prover.config import Settings
from prover.model.base import (
    BackendUnavailable,
    ChatMessage,
    Completion,
    GenerationError,
    SamplingParams,
)
from prover.model.factory import create_generator
from prover.model.transformers_backend import TransformersGenerator


def texts(rows: list[list[Completion]]) -> list[list[str]]:
    return [[c.text for c in row] for row in rows]


def tiny_settings(tiny_model: Path, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "model_backend": "transformers", "model": str(tiny_model), "model_max_batch": 8,
    }
    values.update(changes)
    return Settings(**values)


@pytest.fixture
async def gen(tiny_model: Path) -> AsyncIterator[TransformersGenerator]:
    async with TransformersGenerator(tiny_settings(tiny_model)) as generator:
        yield generator


async def test_n_samples_for_each_prompt_of_a_batch(gen: TransformersGenerator) -> None:
    result = await gen.generate(["theorem a", "lemma b :", "example"], n=3,
                                params=SamplingParams(max_tokens=8))
    assert [len(row) for row in result] == [3, 3, 3]
    assert all(1 <= c.tokens <= 8 and c.prompt_tokens > 0 for row in result for c in row)
    assert result[0][0].prompt_tokens != result[1][0].prompt_tokens  # per-prompt counts
    assert gen.stats.completions == 9
    assert gen.generate_calls == 2  # 9 sequences, at most 8 per generate call


async def test_max_tokens_is_honoured(gen: TransformersGenerator) -> None:
    (row,) = await gen.generate(["theorem a"], n=6, params=SamplingParams(max_tokens=5, seed=7))
    for c in row:  # a sample either ran out of tokens or ended at EOS before that
        assert c.tokens == 5 if c.finish_reason == "length" else c.tokens < 5
    assert any(c.finish_reason == "length" for c in row)  # a random model rarely emits EOS


async def test_same_seed_same_samples_and_different_seeds_differ(
    gen: TransformersGenerator,
) -> None:
    prompts = ["theorem a", "lemma b :"]
    first = await gen.generate(prompts, n=3, params=SamplingParams(max_tokens=16, seed=1))
    again = await gen.generate(prompts, n=3, params=SamplingParams(max_tokens=16, seed=1))
    other = await gen.generate(prompts, n=3, params=SamplingParams(max_tokens=16, seed=2))
    assert texts(again) == texts(first)
    assert texts(other) != texts(first)
    assert len(set(texts(first)[0])) > 1  # the n samples of one seed are not copies


async def test_seeded_samples_do_not_depend_on_what_runs_alongside(tiny_model: Path) -> None:
    # A batch limit of 2 also splits the seeded request's 3 samples over two generate calls.
    settings = tiny_settings(tiny_model, model_max_batch=2)
    seeded = SamplingParams(max_tokens=16, seed=11)
    async with TransformersGenerator(settings) as gen:
        alone = await gen.generate(["theorem a"], n=3, params=seeded)
        crowded, *_ = await asyncio.gather(
            gen.generate(["theorem a"], n=3, params=seeded),
            *(gen.generate([f"noise {i}", "theorem a"], n=2,
                           params=SamplingParams(max_tokens=16)) for i in range(3)),
            gen.generate(["theorem a"], n=3, params=SamplingParams(max_tokens=16, seed=12)),
        )
    assert texts(crowded) == texts(alone)


async def test_concurrent_callers_share_generate_calls(gen: TransformersGenerator) -> None:
    callers = 12
    params = SamplingParams(max_tokens=4)
    results = await asyncio.gather(*(gen.generate([f"p{i}"], params=params)
                                     for i in range(callers)))
    assert [len(r) for r in results] == [1] * callers
    assert [len(r[0]) for r in results] == [1] * callers
    assert gen.generate_calls < callers  # batched, not one call per caller
    assert gen.largest_batch == 8  # and batches filled up to PROVER_MODEL_MAX_BATCH


async def test_different_sampling_params_are_not_mixed(gen: TransformersGenerator) -> None:
    short, long = await asyncio.gather(
        gen.generate(["theorem a"], n=2, params=SamplingParams(max_tokens=2)),
        gen.generate(["theorem a"], n=2, params=SamplingParams(max_tokens=9)),
    )
    assert all(c.tokens <= 2 for c in short[0])
    assert any(c.tokens > 2 for c in long[0])
    assert gen.generate_calls == 2


async def test_stop_strings_cut_the_text(gen: TransformersGenerator) -> None:
    ((full,),) = await gen.generate(["theorem a"], params=SamplingParams(max_tokens=32, seed=4))
    stop = next(full.text[i : i + 2] for i in range(2, len(full.text) - 1)
                if full.text[i : i + 2].isascii() and full.text[i : i + 2].isalpha())
    ((cut,),) = await gen.generate(
        ["theorem a"], params=SamplingParams(max_tokens=32, seed=4, stop=("@@never@@", stop))
    )
    assert cut.text == full.text[: full.text.index(stop)]
    assert cut.finish_reason == "stop"
    assert 1 <= cut.tokens < full.tokens
    ((unstopped,),) = await gen.generate(
        ["theorem a"], params=SamplingParams(max_tokens=32, seed=4, stop=("@@never@@",))
    )
    assert unstopped == full


async def test_temperature_zero_is_greedy(gen: TransformersGenerator) -> None:
    (row,) = await gen.generate(["theorem a"], n=3, params=SamplingParams(temperature=0,
                                                                          max_tokens=8))
    assert len({c.text for c in row}) == 1


async def test_prompt_past_the_context_fails_alone(tiny_model: Path) -> None:
    async with TransformersGenerator(tiny_settings(tiny_model, model_max_len=12)) as gen:
        long, short = await asyncio.gather(
            gen.generate(["theorem " * 20], params=SamplingParams(max_tokens=4)),
            gen.generate(["a"], params=SamplingParams(max_tokens=4)),
            return_exceptions=True,
        )
    assert isinstance(long, GenerationError) and "PROVER_MODEL_MAX_LEN" in str(long)
    assert isinstance(short, list) and len(short[0]) == 1


async def test_close_answers_waiting_callers(tiny_model: Path) -> None:
    gen = TransformersGenerator(tiny_settings(tiny_model))
    await gen.start()
    waiting = asyncio.create_task(gen.generate(["theorem a"], params=SamplingParams(max_tokens=64)))
    await asyncio.sleep(0)  # let the call queue its request
    await gen.close()
    with pytest.raises(GenerationError, match="closed"):
        await waiting


async def test_load_error_names_prover_model(tmp_path: Path) -> None:
    gen = TransformersGenerator(Settings(model_backend="transformers",
                                         model=str(tmp_path / "no-such-model")))
    with pytest.raises(BackendUnavailable, match="PROVER_MODEL="):
        await gen.start()


async def test_generate_before_start_is_an_error(tiny_model: Path) -> None:
    with pytest.raises(GenerationError, match="before start"):
        await TransformersGenerator(tiny_settings(tiny_model)).generate(["p"])


def test_factory_names_the_missing_package(
    monkeypatch: pytest.MonkeyPatch, tiny_model: Path
) -> None:
    settings = tiny_settings(tiny_model)
    assert isinstance(create_generator(settings), TransformersGenerator)
    real = importlib.util.find_spec

    def without_torch(name: str, *args: Any, **kwargs: Any) -> Any:
        return None if name == "torch" else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", without_torch)
    with pytest.raises(BackendUnavailable) as excinfo:
        create_generator(settings)
    message = str(excinfo.value)
    assert "\n" not in message
    assert "torch" in message and "pip install 'lean-prover-service[transformers]'" in message


async def test_chat_prompts_use_the_tokenizers_chat_template(tiny_chat_model: Path) -> None:
    settings = tiny_settings(tiny_chat_model, model_profile="goedel-v2")
    chat = (ChatMessage("system", "Be brief."), ChatMessage("user", "theorem t : True"))
    async with TransformersGenerator(settings) as gen:
        rendered = gen.render_chat(chat)
        [[completion]] = await gen.generate([chat], 1, SamplingParams(max_tokens=5, seed=1))
        [[same]] = await gen.generate([rendered], 1, SamplingParams(max_tokens=5, seed=1))
    # The template's text, its BOS left to the tokenizer (added once, as for text prompts).
    assert rendered == "Be brief.\n\nUser: theorem t : True\n\nAssistant:"
    assert completion.text == same.text and completion.prompt_tokens == same.prompt_tokens


async def test_a_chat_profile_on_a_model_without_template_fails_at_start(
        tiny_model: Path) -> None:
    gen = TransformersGenerator(tiny_settings(tiny_model, model_profile="kimina-prover"))
    with pytest.raises(BackendUnavailable) as info:
        await gen.start()
    message = str(info.value)
    assert "\n" not in message and "has no chat template" in message
    assert "kimina-prover" in message and "deepseek-v1.5" in message
