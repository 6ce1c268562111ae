"""Sampling from an in-process vLLM engine (`AsyncLLM`), shared by every caller in the process.

Why this shape:

- **Continuous batching, not call batching.** Every prompt of every `generate` call becomes its
  own engine request the moment the call arrives, and the call awaits only its own requests.
  vLLM's scheduler adds new requests to the running batch at the next decoding step, so a
  search job that asks for one sample never waits for another job's 32-sample batch to finish,
  and the 32 RMaxTS jobs of a search (and all searches in the service) share one batch.
- **Automatic prefix caching on.** RMaxTS prompts share long prefixes (header, statement, the
  proof so far); with the cache the shared part is prefilled once and reused from the KV cache.
- **n samples of a prompt are one request with `n`**, so vLLM prefills the prompt once and
  forks it; with a seed the k-th sample uses `seed + k` (vLLM's rule), so results are a
  function of (prompt, seed, n).
- **Offline batch limits.** The engine is created with `vllm.LLM`'s usage context, so it gets
  the same `max_num_seqs`/`max_num_batched_tokens` defaults as offline `LLM.generate` (1,024 and
  16,384 on an H100/H200) instead of `AsyncLLM`'s generic 128 and 2,048, which cost 12% of the
  throughput of 512 concurrent samples on an H200 (benchmarks/gpu_generation.py).
- **Only final outputs** (`RequestOutputKind.FINAL_ONLY`): the search never streams, and
  per-token outputs would cost front-end CPU for nothing.
- **Cancellation aborts.** A caller that is cancelled (a search that found its proof, a client
  that hung up) aborts its engine requests at once, so the engine stops spending steps on them.
- **Start failures are explained.** vLLM's engine core runs in a child process and the parent only
  learns "initialization failed, see above"; the children's output is copied (and still shown)
  while the engine starts, so `BackendUnavailable` can quote the root cause and name the setting to
  change.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
import itertools
import multiprocessing
import os
import re
import sys
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from vllm.outputs import RequestOutput
    from vllm.v1.engine.async_llm import AsyncLLM


@dataclass
class EngineLoad:
    """What the engine's scheduler reported at its last step (only with `engine_stats=True`).

    Read from vLLM's own scheduler statistics, not from this process's bookkeeping, so it shows
    what the engine actually ran: `peak_running` is the most requests in one decoding batch.
    """

    steps: int = 0
    running: int = 0
    waiting: int = 0
    peak_running: int = 0
    peak_waiting: int = 0
    prefix_cache_queries: int = 0  # prompt tokens looked up in the prefix cache
    prefix_cache_hits: int = 0  # of which found there

    def reset_peaks(self) -> None:
        """Forget the peaks; the next scheduler steps set them again."""
        self.peak_running = 0
        self.peak_waiting = 0


class VllmGenerator(Generator):
    """One `AsyncLLM` engine in this process; safe to share between any number of callers.

    Engine settings come from `Settings` (`PROVER_MODEL`, `PROVER_MODEL_DTYPE`,
    `PROVER_MODEL_MAX_LEN`, `PROVER_MODEL_TENSOR_PARALLEL`, `PROVER_MODEL_GPU_MEMORY`,
    `PROVER_MODEL_SEED`). Keyword arguments are for benchmarks and tests:

    - `enable_prefix_caching`: off only to measure what the cache gains;
    - `engine_kwargs`: extra `AsyncEngineArgs` fields (e.g. `enforce_eager=True` to skip graph
      capture and compilation, which cuts the start time of a small model);
    - `sampling_overrides`: extra `vllm.SamplingParams` fields for every request (e.g.
      `ignore_eos=True`, so that every sample runs to `max_tokens`); it is a public attribute;
    - `engine_stats`: collect the scheduler's statistics into `load` (costs a little per step);
    - `shutdown_timeout`: seconds `close` lets the engine processes exit before killing them.
    """

    name = "vllm"

    def __init__(
        self,
        settings: Settings,
        *,
        enable_prefix_caching: bool = True,
        engine_kwargs: Mapping[str, Any] | None = None,
        sampling_overrides: Mapping[str, Any] | None = None,
        engine_stats: bool = False,
        shutdown_timeout: float = 30.0,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.enable_prefix_caching = enable_prefix_caching
        self.engine_kwargs = dict(engine_kwargs or {})
        self.sampling_overrides: dict[str, Any] = dict(sampling_overrides or {})
        self.engine_stats = engine_stats
        self.shutdown_timeout = shutdown_timeout
        self.load = EngineLoad()
        self.start_s: float | None = None  # seconds the engine took to start
        self._engine: AsyncLLM | None = None
        self._render: Any = None  # (model_config, parse_model_prompt) or None: pass raw text
        self._tokenizer: Any = None  # renders chat prompts
        self._ids = itertools.count()
        self._id_prefix = f"prover-{uuid.uuid4().hex[:8]}"
        self._in_flight: set[str] = set()  # engine request ids submitted and not finished
        self._peak_in_flight = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False
        self.stats.extra.update(cached_prompt_tokens=0.0, aborted_requests=0.0)

    # ------------------------------------------------------------------------------ lifecycle

    @property
    def engine(self) -> AsyncLLM:
        """The running `AsyncLLM` (for diagnostics); raises when not started."""
        if self._engine is None:
            raise GenerationError("the vLLM backend is not started (use `async with` or start())")
        return self._engine

    @property
    def in_flight(self) -> int:
        """Engine requests submitted by this generator and not finished or aborted yet."""
        return len(self._in_flight)

    @property
    def peak_in_flight(self) -> int:
        """Most engine requests this generator had in flight at once since the last reset."""
        return self._peak_in_flight

    def reset_peaks(self) -> None:
        """Start new peak measurements (`peak_in_flight`, `load.peak_*`), e.g. per benchmark."""
        self._peak_in_flight = len(self._in_flight)
        self.load.reset_peaks()

    def engine_args(self) -> Any:
        """The `AsyncEngineArgs` this generator starts with (also used by the benchmark)."""
        from vllm import AsyncEngineArgs

        s = self.settings
        kwargs: dict[str, Any] = {
            "model": s.model,
            "dtype": s.model_dtype,
            "max_model_len": s.model_max_len,
            "tensor_parallel_size": s.model_tensor_parallel,
            "gpu_memory_utilization": s.model_gpu_memory,
            "seed": s.model_seed,
            "enable_prefix_caching": self.enable_prefix_caching,
            # Stats go to our own logger only (engine_stats); vLLM's default loggers would print
            # a throughput line every few seconds into the service's log.
            "disable_log_stats": True,
        }
        kwargs.update(self.engine_kwargs)
        return AsyncEngineArgs(**kwargs)

    async def start(self) -> None:
        """Start the engine (tens of seconds to minutes); `BackendUnavailable` says why not."""
        if self._engine is not None:
            return
        try:
            from vllm.v1.engine.async_llm import AsyncLLM
        except ImportError as exc:  # factory.require_packages normally catches this first
            raise BackendUnavailable(
                f"PROVER_MODEL_BACKEND=vllm cannot import vllm ({exc}): "
                "pip install 'lean-prover-service[vllm]' (on a GPU machine: pip install vllm)"
            ) from exc
        try:
            args = self.engine_args()
        except Exception as exc:  # a bad field in engine_kwargs
            raise BackendUnavailable(f"vLLM engine arguments rejected: {exc}") from exc
        loggers = [self._probe_factory()] if self.engine_stats else None
        context = _throughput_context()
        t0 = time.perf_counter()
        # The engine start blocks for a long time (model load, KV cache profiling), so it runs in
        # a thread and the event loop stays responsive. AsyncLLM starts its output handler on
        # the first request, in the loop that makes it.
        with _OutputTail() as tail:
            job = asyncio.ensure_future(
                asyncio.to_thread(AsyncLLM.from_engine_args, args, stat_loggers=loggers,
                                  **context)
            )
            try:
                engine = await asyncio.shield(job)
            except asyncio.CancelledError:
                # The thread cannot be interrupted; shut the engine down once it exists.
                job.add_done_callback(_shutdown_when_started)
                raise
            except Exception as exc:
                # The half-built engine is referenced from the traceback's frames; free it now,
                # while the interpreter is whole, not at exit (its __del__ shuts down).
                _clear_frames(exc)
                gc.collect()
                _reap_children()
                cause = await asyncio.to_thread(tail.root_cause) or _describe(exc)
                raise BackendUnavailable(self._explain_start_failure(cause)) from exc
            finally:
                tail.stop_keeping()
        self._engine = engine
        self._render = _renderer_of(engine)
        tokenizer = engine.get_tokenizer()
        if inspect.isawaitable(tokenizer):  # vLLM before 0.11 made this a coroutine
            tokenizer = await tokenizer
        self._tokenizer = tokenizer
        try:
            require_template(tokenizer, self.settings)
        except BackendUnavailable:
            del engine, job, tokenizer
            await self.close()
            raise
        self.start_s = time.perf_counter() - t0
        self.stats.extra["engine_start_s"] = round(self.start_s, 3)
        # vLLM keeps tracebacks of some imports made above, whose frames link back to this one:
        # hold no reference to the engine here, or it outlives close() and is finalised at exit.
        del engine, job

    async def close(self) -> None:
        """Abort what is still running, stop the engine processes and reap them; idempotent."""
        engine = self._engine
        if engine is None:
            return
        self._closing = True
        try:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()  # each aborts its engine request; its caller gets GenerationError
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            self._engine = None
            # Synchronous on purpose: shutdown closes the ZMQ sockets the loop's output task
            # reads, which must not happen from another thread while that task runs. It waits
            # (up to shutdown_timeout) for the engine-core and worker processes to exit.
            engine.shutdown(timeout=self.shutdown_timeout)
            _reap_children()
            self._closing = False
            self._render = self._tokenizer = None
            # AsyncLLM sits in reference cycles; collect it now, while the interpreter is whole,
            # not at exit, where its __del__ (a second, harmless shutdown) fails noisily.
            del engine
            gc.collect()

    # ------------------------------------------------------------------------------ sampling

    def render_chat(self, chat: Chat) -> str:
        if self._tokenizer is None:
            raise GenerationError("VllmGenerator.generate called before start()")
        return render(self._tokenizer, chat)

    async def _generate(
        self, prompts: Sequence[str], n: int, params: SamplingParams
    ) -> list[list[Completion]]:
        engine = self.engine
        if self._closing:
            raise GenerationError("the vLLM backend is closing")
        vllm_params = self._vllm_params(n, params)
        inputs = await self._inputs(engine, prompts)
        tasks: list[asyncio.Task[RequestOutput]] = []
        try:
            async with asyncio.TaskGroup() as group:
                for item in inputs:
                    task = group.create_task(self._request(engine, item, vllm_params))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                    tasks.append(task)
        except BaseExceptionGroup as group_error:
            # One failed request fails the call (its siblings were cancelled and aborted); the
            # caller gets the backend's error type, not a group.
            first = group_error.exceptions[0]
            if isinstance(first, GenerationError):
                raise first from None
            raise GenerationError(f"vLLM request failed: {first!r}") from first
        if any(t.cancelled() for t in tasks):  # close() cancelled them, not our caller
            raise GenerationError("the vLLM backend was closed while this request ran")
        return [self._completions(t.result()) for t in tasks]

    def _vllm_params(self, n: int, params: SamplingParams) -> Any:
        from vllm.sampling_params import RequestOutputKind
        from vllm.sampling_params import SamplingParams as VllmSamplingParams

        fields: dict[str, Any] = {
            "n": n,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_tokens,
            "seed": params.seed,
            "stop": list(params.stop) or None,
            "output_kind": RequestOutputKind.FINAL_ONLY,
        }
        if params.logprobs:
            fields["logprobs"] = 0  # the sampled tokens' own: fills `cumulative_logprob`
        fields.update(self.sampling_overrides)
        try:
            return VllmSamplingParams(**fields)
        except (TypeError, ValueError) as exc:
            raise GenerationError(f"vLLM rejected the sampling parameters: {exc}") from exc

    async def _inputs(self, engine: AsyncLLM, prompts: Sequence[str]) -> list[Any]:
        """Tokenize the call's prompts together, in vLLM's renderer (off the event loop).

        Passing raw text to `AsyncLLM.generate` is deprecated in vLLM 0.32; where the renderer API
        is missing (other vLLM versions) raw text is passed and vLLM tokenizes it itself.
        """
        if self._render is None:
            return list(prompts)
        model_config, parse = self._render
        try:
            return list(
                await engine.renderer.render_cmpl_async([parse(model_config, p) for p in prompts])
            )
        except Exception as exc:
            raise GenerationError(f"vLLM could not tokenize the prompt: {exc}") from exc

    async def _request(self, engine: AsyncLLM, item: Any, params: Any) -> RequestOutput:
        """Run one prompt as one engine request; on cancellation vLLM aborts it."""
        request_id = f"{self._id_prefix}-{next(self._ids)}"
        self._in_flight.add(request_id)
        self._peak_in_flight = max(self._peak_in_flight, len(self._in_flight))
        final: RequestOutput | None = None
        try:
            async for output in engine.generate(item, params, request_id):
                final = output
        except asyncio.CancelledError:
            # AsyncLLM.generate aborts the request itself, except when the cancellation lands
            # while it is still submitting it; aborting by our (external) id covers that window
            # and is a no-op otherwise. Shielded: a second cancellation must not skip it.
            self.stats.extra["aborted_requests"] += 1
            with contextlib.suppress(Exception):
                await asyncio.shield(engine.abort(request_id))
            raise
        except Exception as exc:
            raise GenerationError(f"vLLM request failed: {_describe(exc)}") from exc
        finally:
            self._in_flight.discard(request_id)
        if final is None or not final.finished:
            raise GenerationError("vLLM ended the request without a final output")
        return final

    def _completions(self, output: RequestOutput) -> list[Completion]:
        prompt_tokens = len(output.prompt_token_ids or ())
        self.stats.extra["cached_prompt_tokens"] += output.num_cached_tokens or 0
        out = []
        for c in sorted(output.outputs, key=lambda c: c.index):
            reason = c.finish_reason
            if reason in ("abort", "error"):
                raise GenerationError(f"vLLM finished a sample with finish_reason={reason!r}")
            out.append(Completion(
                text=c.text,
                tokens=len(c.token_ids),
                prompt_tokens=prompt_tokens,
                finish_reason="length" if reason == "length" else "stop",
                logprob=c.cumulative_logprob,
            ))
        return out

    # ------------------------------------------------------------------------------ diagnostics

    def _probe_factory(self) -> Any:
        """A vLLM per-engine stat logger that copies scheduler statistics into `self.load`."""
        from vllm.v1.metrics.loggers import StatLoggerBase

        load = self.load

        class SchedulerProbe(StatLoggerBase):
            def __init__(self, vllm_config: Any, engine_index: int = 0) -> None:
                pass

            def record(
                self,
                scheduler_stats: Any,
                iteration_stats: Any,
                mm_cache_stats: Any = None,
                engine_idx: int = 0,
            ) -> None:
                if scheduler_stats is None:
                    return
                load.steps += 1
                load.running = scheduler_stats.num_running_reqs
                load.waiting = scheduler_stats.num_waiting_reqs
                load.peak_running = max(load.peak_running, load.running)
                load.peak_waiting = max(load.peak_waiting, load.waiting)
                cache = scheduler_stats.prefix_cache_stats
                load.prefix_cache_queries += cache.queries
                load.prefix_cache_hits += cache.hits

            def log_engine_initialized(self) -> None:
                pass

        return SchedulerProbe

    def _explain_start_failure(self, cause: str) -> str:
        """The message of `BackendUnavailable`: the root cause and the setting to change."""
        s = self.settings
        low = cause.lower()
        if any(k in low for k in ("memory", "kv cache", "out of memory", "oom", "cuda error")):
            fix = (
                f"PROVER_MODEL_GPU_MEMORY={s.model_gpu_memory:g} is the fraction of GPU memory "
                "(on CPU: of the NUMA node's memory) vLLM takes for weights and KV cache: lower "
                "it if that memory is not free (other processes), raise it if the weights and "
                "the KV cache do not fit in it; a smaller PROVER_MODEL_MAX_LEN"
                f"{f' (now {s.model_max_len})' if s.model_max_len else ''} needs less KV cache"
            )
        elif "max_model_len" in low or "max model len" in low or "context length" in low:
            fix = "set PROVER_MODEL_MAX_LEN to at most the model's context length"
        elif "tensor_parallel" in low or "tensor parallel" in low or "world size" in low:
            fix = (f"PROVER_MODEL_TENSOR_PARALLEL={s.model_tensor_parallel} must divide the "
                   "model's attention heads and not exceed the number of GPUs")
        elif any(k in low for k in ("not found", "no such file", "repo id", "does not appear",
                                    "repository", "huggingface", "connection")):
            fix = ("PROVER_MODEL must be a local model directory or a Hugging Face model id "
                   "reachable from this machine")
        elif "dtype" in low or "bfloat16" in low or "float16" in low:
            fix = f"PROVER_MODEL_DTYPE={s.model_dtype}: try float16 or float32 on this device"
        else:
            fix = ("see the engine's log lines above; PROVER_MODEL_BACKEND=openai against a "
                   "separately started `vllm serve` is the alternative")
        return f"vLLM could not start model {s.model!r}: {cause.rstrip('. ')}. Fix: {fix}."


# ---------------------------------------------------------------------------------- helpers


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _throughput_context() -> dict[str, Any]:
    """`usage_context` for `AsyncLLM.from_engine_args`: the batch limits of `vllm.LLM`.

    vLLM sizes `max_num_seqs` and `max_num_batched_tokens` by usage context when they are not
    set. `AsyncLLM`'s default context gets the generic 128 sequences and 2,048 tokens per step,
    while `vllm.LLM` (offline, throughput) gets the hardware's defaults: 1,024 and 16,384 on an
    H100/H200-class GPU. The search is a throughput workload with hundreds of samples in
    flight, so it asks for the latter (vLLM 0.25 to 0.32); `engine_kwargs` still override both.
    """
    try:
        from vllm.usage.usage_lib import UsageContext
    except ImportError:
        return {}
    context = getattr(UsageContext, "LLM_CLASS", None)
    return {} if context is None else {"usage_context": context}


def _renderer_of(engine: AsyncLLM) -> Any:
    """(model_config, parse_model_prompt) when this vLLM has the renderer API, else None."""
    try:
        from vllm.renderers.inputs.preprocess import parse_model_prompt
    except ImportError:
        return None
    if not hasattr(getattr(engine, "renderer", None), "render_cmpl_async"):
        return None
    return (engine.model_config, parse_model_prompt)


def _clear_frames(exc: BaseException) -> None:
    """Drop the local variables of the frames in an exception chain (tracebacks stay)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        traceback.clear_frames(e.__traceback__)
        todo += [e.__cause__, e.__context__]


def _reap_children() -> None:
    """Collect exited engine processes, so none is left behind as a zombie."""
    multiprocessing.active_children()


def _shutdown_when_started(job: asyncio.Future[Any]) -> None:
    if not job.cancelled() and job.exception() is None:
        job.result().shutdown()
        _reap_children()


# Lines such as "(EngineCore pid=12) ERROR 11-30 04:17:04 [core.py:1510] ValueError: ...".
_ERROR_LINE = re.compile(r"\b([A-Z]\w*(?:Error|Exception)): (.+)$")
# vLLM's wrappers around a child's error: "Worker failed with error '<the error>', please ...".
_WRAPPED = re.compile(r"failed with error '(.+)'")
_WRAPPERS = ("Engine core initialization failed", "failed with error", "died unexpectedly")


class _OutputTail:
    """Copies what is written to file descriptors 1 and 2 into a ring buffer, still printing it.

    Used only around the engine start. vLLM's engine-core and worker processes log to stdout
    (its logging default) and print tracebacks to stderr; they inherit the pipes as their
    stdout/stderr and keep them for life, so daemon threads forward their output to the real
    stdout/stderr for as long as they write. Best effort: where a descriptor cannot be redirected
    it is left alone, and the error message falls back to the parent's exception.
    """

    def __init__(self, fds: tuple[int, ...] = (1, 2), keep_lines: int = 4000) -> None:
        self._fds = fds
        self._lines: deque[str] = deque(maxlen=keep_lines)
        self._saved: dict[int, int] = {}
        self._last_data = time.monotonic()
        self._lock = threading.Lock()
        self._keep = True

    def stop_keeping(self) -> None:
        """Keep forwarding, stop buffering: the engine has started (or failed and was read)."""
        with self._lock:
            self._keep = False

    def __enter__(self) -> _OutputTail:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError, AttributeError):
                stream.flush()
        for fd in self._fds:
            try:
                read_fd, write_fd = os.pipe()
                saved = os.dup(fd)
            except OSError:
                continue
            try:
                os.dup2(write_fd, fd)
            except OSError:
                os.close(saved)
                os.close(read_fd)
                continue
            finally:
                os.close(write_fd)
            self._saved[fd] = saved
            threading.Thread(
                target=self._pump, args=(read_fd, os.dup(saved)), name=f"vllm-output-{fd}",
                daemon=True,
            ).start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError, AttributeError):
                stream.flush()
        for fd, saved in self._saved.items():
            os.dup2(saved, fd)
            os.close(saved)
        self._saved.clear()

    def _pump(self, read_fd: int, out_fd: int) -> None:
        partial = b""
        try:
            while chunk := os.read(read_fd, 65536):
                with contextlib.suppress(OSError):
                    os.write(out_fd, chunk)
                *lines, partial = (partial + chunk).split(b"\n")
                with self._lock:
                    if self._keep:
                        self._lines.extend(x.decode("utf-8", "replace") for x in lines)
                    self._last_data = time.monotonic()
        finally:
            os.close(read_fd)
            os.close(out_fd)

    def root_cause(self, settle_s: float = 0.5, max_wait_s: float = 3.0) -> str | None:
        """The first exception the engine processes logged, unwrapped from vLLM's wrappers."""
        deadline = time.monotonic() + max_wait_s
        while time.monotonic() < deadline:  # let the dying processes' last lines arrive
            with self._lock:
                quiet = time.monotonic() - self._last_data
            if quiet >= settle_s:
                break
            time.sleep(0.05)
        with self._lock:
            lines = list(self._lines)
        direct: list[str] = []
        wrapped: list[str] = []
        for line in lines:
            m = _ERROR_LINE.search(line)
            if m is None:
                continue
            text = m.group(2).strip()
            if not any(w in text for w in _WRAPPERS):
                direct.append(f"{m.group(1)}: {text}")
            elif inner := _WRAPPED.search(text):
                wrapped.append(inner.group(1))
        found = direct or wrapped
        return found[0] if found else None
