"""Sampling with plain Hugging Face `generate`: no server, no vLLM, any machine with torch.

`model.generate` serves one batch at a time, so sharing it between the 32 RMaxTS jobs of a search
(and between searches) needs a batcher: every caller's (prompt, n, params) goes into one queue, and
a single batcher task takes *everything* queued whenever the model is free, groups it by sampling
parameters, and runs up to `PROVER_MODEL_MAX_BATCH` sequences per `generate` call in one worker
thread, so the event loop keeps serving (and queueing) while the model computes. Nothing waits
for a batch to fill: the first request runs at once, and whatever arrived meanwhile forms the
next batch (the oldest waiting group goes first). That is as close to continuous batching as
`generate` allows; a caller can still wait for the batch in progress, which is the cost of this
backend (use vLLM for throughput).

Seeds. Sampling in a padded batch depends on what else is in the batch (the random draws are
shared across rows, and the padding changes the numerics), so a seeded request would give
different samples depending on its neighbours. A request with `params.seed` therefore runs in a
`generate` call of its own, with torch's RNG seeded under `fork_rng` (the global RNG state is
restored afterwards): (prompt, n, seed) always gives the same samples, at the cost of no batching
across seeded requests (one `generate` call per seeded prompt; n samples of that prompt still
batch together, in chunks of `PROVER_MODEL_MAX_BATCH`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import itertools
from collections import deque
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from prover.config import Settings
from prover.model.base import (
    BackendUnavailable,
    Chat,
    Completion,
    GenerationError,
    Generator,
    SamplingParams,
)
from prover.model.chat_template import render, require_template


@dataclass(eq=False)
class _Request:
    """One prompt of one caller: `n` samples wanted, possibly produced over several chunks."""

    seq: int
    prompt: str
    n: int
    params: SamplingParams
    future: asyncio.Future[list[Completion]]
    done: list[Completion] = field(default_factory=list)
    queued: int = 0  # samples handed to a generate call so far

    @property
    def key(self) -> Hashable:
        """Requests with the same key may share a generate call; a seeded one shares with none."""
        p = self.params
        if p.seed is not None:
            return ("seeded", self.seq)
        return (p.temperature, p.top_p, p.max_tokens, p.stop)


class TransformersGenerator(Generator):
    """`generate` of a Hugging Face causal LM behind a batching queue."""

    name = "transformers"

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self._settings = settings
        self._max_batch = settings.model_max_batch
        self._model: Any = None
        self._tokenizer: Any = None
        self._device: Any = None
        self._context_len = 0
        self._eos_ids: frozenset[int] = frozenset()
        self._queue: asyncio.Queue[_Request] = asyncio.Queue()
        self._batcher: asyncio.Task[None] | None = None
        self._seq = itertools.count()
        self._live: set[_Request] = set()  # requests whose caller still waits
        # One worker thread: generate calls never overlap, which is what makes touching torch's
        # global RNG for seeded requests safe, and close() can wait for the call in progress.
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._running: concurrent.futures.Future[Any] | None = None
        # Number of model.generate calls so far, and the largest batch (rows) one of them ran.
        self.generate_calls = 0
        self.largest_batch = 0

    # ----------------------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Load tokenizer and model in a thread (seconds to minutes), then start the batcher."""
        if self._batcher is not None:
            return
        await asyncio.to_thread(self._load)
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="transformers-generate"
        )
        self._batcher = asyncio.create_task(self._batch_loop(), name="transformers-batcher")

    def _load(self) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        s = self._settings
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if s.model_dtype == "auto":
            # bfloat16 matmuls are slow (often emulated) on CPUs; GPUs want them.
            dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
        else:
            dtype = getattr(torch, s.model_dtype)
        model: Any
        tokenizer: Any
        try:
            tokenizer = AutoTokenizer.from_pretrained(s.model)
            model = AutoModelForCausalLM.from_pretrained(s.model, dtype=dtype)
        except Exception as exc:  # OSError, ValueError, safetensors errors, ...: all mean "no"
            raise BackendUnavailable(
                f"PROVER_MODEL={s.model!r}: transformers cannot load it "
                f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                "set PROVER_MODEL to a local model directory or a Hugging Face model id"
            ) from exc
        require_template(tokenizer, s)
        model.to(device).eval()
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        eos = model.generation_config.eos_token_id
        if eos is None:
            eos = tokenizer.eos_token_id
        self._eos_ids = frozenset(eos if isinstance(eos, list) else [] if eos is None else [eos])
        self._context_len = s.model_max_len or int(
            getattr(model.config, "max_position_embeddings", 0) or tokenizer.model_max_length
        )
        self._model, self._tokenizer, self._device = model, tokenizer, device

    async def close(self) -> None:
        """Stop the batcher, fail every waiting caller, then release the model; idempotent.

        A `generate` call already running cannot be interrupted; close waits for it (one batch)
        before dropping the model, so that the worker thread never finds it gone.
        """
        batcher, self._batcher = self._batcher, None
        if batcher is not None:
            batcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await batcher
        while not self._queue.empty():
            self._queue.get_nowait()
        # Queued, grouped or mid-generate: every caller still waiting gets an answer now.
        for request in list(self._live):
            if not request.future.done():
                request.future.set_exception(GenerationError("the generator was closed"))
        self._live.clear()
        running, self._running = self._running, None
        if running is not None:
            with contextlib.suppress(Exception):
                await asyncio.wrap_future(running)
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False)
        self._model = self._tokenizer = None

    # ----------------------------------------------------------------------------- batching

    def render_chat(self, chat: Chat) -> str:
        if self._tokenizer is None:
            raise GenerationError("TransformersGenerator.generate called before start()")
        return render(self._tokenizer, chat)

    async def _generate(
        self, prompts: Sequence[str], n: int, params: SamplingParams
    ) -> list[list[Completion]]:
        if self._batcher is None:
            raise GenerationError("TransformersGenerator.generate called before start()")
        if self._batcher.done():
            raise GenerationError("the transformers batcher has stopped; see the error logged")
        loop = asyncio.get_running_loop()
        requests = [
            _Request(next(self._seq), prompt, n, params, loop.create_future()) for prompt in prompts
        ]
        for request in requests:
            self._live.add(request)
            request.future.add_done_callback(functools.partial(self._forget, request))
            self._queue.put_nowait(request)
        return list(await asyncio.gather(*(r.future for r in requests)))

    def _forget(self, request: _Request, _: asyncio.Future[list[Completion]]) -> None:
        self._live.discard(request)

    async def _batch_loop(self) -> None:
        """Run `_batch_forever`; should it ever crash, fail every caller instead of hanging it."""
        try:
            await self._batch_forever()
        except Exception as exc:
            for request in list(self._live):
                if not request.future.done():
                    request.future.set_exception(
                        GenerationError(f"the transformers batcher crashed: {exc!r}")
                    )
            raise

    async def _batch_forever(self) -> None:
        """Take all queued requests, run the oldest group's next batch, repeat."""
        groups: dict[Hashable, deque[_Request]] = {}
        while True:
            if not groups:
                self._add(groups, await self._queue.get())
            while not self._queue.empty():
                self._add(groups, self._queue.get_nowait())
            for key in list(groups):
                # Drop requests whose caller was cancelled (or that failed in an earlier chunk).
                live = deque(r for r in groups[key] if not r.future.done())
                if live:
                    groups[key] = live
                else:
                    del groups[key]
            if not groups:
                continue
            key = min(groups, key=lambda k: groups[k][0].seq)
            batch = self._take(groups[key])
            if not groups[key]:
                del groups[key]
            assert self._executor is not None
            self._running = self._executor.submit(self._run, batch)
            try:
                results = await asyncio.wrap_future(self._running)
            except Exception as exc:
                error = exc if isinstance(exc, GenerationError) else GenerationError(
                    f"transformers generate failed: {type(exc).__name__}: {exc}"
                )
                for request, _ in batch:
                    if not request.future.done():
                        request.future.set_exception(error)
                continue
            for (request, _), completions in zip(batch, results, strict=True):
                if isinstance(completions, GenerationError):
                    if not request.future.done():
                        request.future.set_exception(completions)
                    continue
                request.done.extend(completions)
                if len(request.done) == request.n and not request.future.done():
                    request.future.set_result(request.done)

    @staticmethod
    def _add(groups: dict[Hashable, deque[_Request]], request: _Request) -> None:
        groups.setdefault(request.key, deque()).append(request)

    def _take(self, pending: deque[_Request]) -> list[tuple[_Request, int]]:
        """The next generate call's work from one group: (request, samples) pairs.

        A seeded request is taken whole (its chunks run back to back in one thread call, so the
        seeded RNG sequence is the same every time); otherwise up to `max_batch` samples, from as
        many requests as fit, splitting the last one if needed.
        """
        head = pending[0]
        if head.params.seed is not None:
            pending.popleft()
            return [(head, head.n)]
        batch: list[tuple[_Request, int]] = []
        room = self._max_batch
        while pending and room:
            request = pending[0]
            k = min(request.n - request.queued, room)
            request.queued += k
            room -= k
            batch.append((request, k))
            if request.queued == request.n:
                pending.popleft()
        return batch

    # ----------------------------------------------------------------------------- the model

    def _run(self, batch: list[tuple[_Request, int]]) -> list[list[Completion] | GenerationError]:
        """Worker thread: for each (request, samples) pair, its completions or why not."""
        import torch

        params = batch[0][0].params
        with torch.inference_mode():
            if params.seed is None:
                return self._sample([(r.prompt, k) for r, k in batch], params)
            ((request, n),) = batch
            cuda = self._device.type == "cuda"
            devices = [self._device.index or torch.cuda.current_device()] if cuda else []
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(params.seed)
                out: list[Completion] = []
                for start in range(0, n, self._max_batch):
                    k = min(self._max_batch, n - start)
                    (chunk,) = self._sample([(request.prompt, k)], params)
                    if isinstance(chunk, GenerationError):
                        return [chunk]
                    out.extend(chunk)
                return [out]

    def _sample(
        self, rows: list[tuple[str, int]], params: SamplingParams
    ) -> list[list[Completion] | GenerationError]:
        """One `model.generate` call: `k` samples of each prompt, left-padded into one batch.

        A prompt with no room left in the context fails alone (as vLLM refuses it); the others
        still run. Each row generates at most `min(max_tokens, context - its prompt)` tokens.
        """
        tok, model = self._tokenizer, self._model
        encoded = tok([prompt for prompt, _ in rows], add_special_tokens=True)["input_ids"]
        out: list[list[Completion] | GenerationError] = []
        expanded: list[list[int]] = []
        budgets: list[int] = []
        for (prompt, k), ids in zip(rows, encoded, strict=True):
            budget = min(params.max_tokens, self._context_len - len(ids))
            if budget < 1:
                out.append(GenerationError(
                    f"a prompt of {len(ids)} tokens leaves no room to generate in the context "
                    f"length {self._context_len} (PROVER_MODEL_MAX_LEN); it starts "
                    f"{prompt[:60]!r}"
                ))
                continue
            out.append([])
            expanded.extend([ids] * k)
            budgets.extend([budget] * k)
        if not expanded:
            return out
        inputs = tok.pad({"input_ids": expanded}, padding=True, return_tensors="pt")
        inputs = {name: t.to(self._device) for name, t in inputs.items()}
        sampling: dict[str, Any] = (
            # top_k=0: no top-k cut (transformers' default is 50); DeepSeek samples top-p only.
            {"do_sample": True, "temperature": params.temperature, "top_p": params.top_p,
             "top_k": 0}
            if params.temperature > 0
            else {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        )
        if params.stop:
            # Ends rows early; the text is still cut below, as a stop string may end mid-token.
            sampling["stop_strings"] = list(params.stop)
            sampling["tokenizer"] = tok
        output = model.generate(
            **inputs,
            max_new_tokens=max(budgets),
            pad_token_id=tok.pad_token_id,
            eos_token_id=sorted(self._eos_ids) or None,
            **sampling,
        )
        self.generate_calls += 1
        self.largest_batch = max(self.largest_batch, len(expanded))
        self.stats.extra["generate_calls"] = self.generate_calls
        self.stats.extra["largest_batch"] = self.largest_batch
        generated = iter(zip(output[:, inputs["input_ids"].shape[1]:].tolist(), budgets,
                             expanded, strict=True))
        for slot, (_, k) in zip(out, rows, strict=True):
            if isinstance(slot, list):
                for ids, budget, prompt_ids in itertools.islice(generated, k):
                    slot.append(self._completion(ids[:budget], budget, len(prompt_ids),
                                                 params.stop))
        return out

    def _completion(
        self, ids: list[int], budget: int, prompt_tokens: int, stop: tuple[str, ...]
    ) -> Completion:
        """Text, token count and finish reason of one generated row.

        The count includes the EOS token (a generated token, as vLLM counts it) and nothing of
        the padding after it; with a stop string it is the tokens up to the one completing it.
        """
        for i, token in enumerate(ids):
            if token in self._eos_ids:
                ids, reason = ids[: i + 1], "stop"
                break
        else:
            reason = "length" if len(ids) >= budget else "stop"
        text = self._decode(ids)
        cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=-1)
        if cut >= 0:
            text, reason = text[:cut], "stop"
            ids = ids[: self._tokens_until(ids, stop)]
        return Completion(text=text, tokens=len(ids), prompt_tokens=prompt_tokens,
                          finish_reason=reason)

    def _tokens_until(self, ids: list[int], stop: tuple[str, ...]) -> int:
        """Fewest leading tokens whose text contains a stop string (binary search)."""
        lo, hi = 1, len(ids)
        while lo < hi:
            mid = (lo + hi) // 2
            text = self._decode(ids[:mid])
            if any(s in text for s in stop):
                hi = mid
            else:
                lo = mid + 1
        return lo

    def _decode(self, ids: list[int]) -> str:
        return str(self._tokenizer.decode(ids, skip_special_tokens=True))
