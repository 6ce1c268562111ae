"""The OpenAI-compatible backend, against small in-test HTTP servers and a real vLLM server.

The in-test servers are raw asyncio HTTP/1.1 on 127.0.0.1, scripted per test (429 then 200, 500
forever, a hang, a 401, a dropped connection), so every failure path is exercised without
mocking httpx. The `vllm` tests start `python -m vllm.entrypoints.openai.api_server` on the tiny
model once for this module; deselect them with `-m 'not vllm'`.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from prover.config import Settings
from prover.model.base import BackendUnavailable, ChatMessage, GenerationError, SamplingParams
from prover.model.factory import create_generator
from prover.model.openai_backend import OpenAIGenerator
from tests.fixtures.redis_server import free_port

MODEL = "test-model"


# ------------------------------------------------------------------------- in-test HTTP server


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


# A handler returns (status, headers, JSON body), or None to drop the connection unanswered.
Reply = tuple[int, dict[str, str], Any] | None
Handler = Callable[[Seen], Awaitable[Reply]]


def completion_body(request: Seen, *, token_ids: bool = True) -> dict[str, Any]:
    """A vLLM-shaped answer to a /v1/completions request: n choices of 3 tokens each."""
    n = request.body.get("n", 1)
    choices = []
    for i in range(n):
        choice: dict[str, Any] = {"index": i, "text": f"sample {i}", "finish_reason": "length"}
        if token_ids:
            choice |= {"token_ids": [5, 6, 7], "prompt_token_ids": [0, 1]}
        choices.append(choice)
    usage = {"prompt_tokens": 2, "completion_tokens": 3 * n, "total_tokens": 2 + 3 * n}
    return {"object": "text_completion", "model": MODEL, "choices": choices, "usage": usage}


@dataclass
class FakeServer:
    """An OpenAI-ish server whose /v1/completions answers come from `handler`."""

    handler: Handler
    models: tuple[str, ...] = (MODEL,)
    seen: list[Seen] = field(default_factory=list)
    url: str = ""
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)
    released: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def completions(self) -> list[Seen]:
        return [r for r in self.seen if r.path.endswith("/completions")]

    async def __aenter__(self) -> FakeServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.released.set()  # lets hanging handlers finish
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while line := await reader.readline():
                method, path, _ = line.decode().split(" ", 2)
                headers: dict[str, str] = {}
                while (header := await reader.readline()) not in (b"\r\n", b""):
                    name, value = header.decode().split(":", 1)
                    headers[name.strip().lower()] = value.strip()
                raw = await reader.readexactly(int(headers.get("content-length", "0")))
                request = Seen(method, path, headers, json.loads(raw) if raw else None)
                self.seen.append(request)
                if path.endswith("/models"):
                    reply: Reply = (200, {}, {"data": [{"id": m} for m in self.models]})
                else:
                    reply = await self.handler(request)
                if reply is None:
                    break  # drop the connection without an answer
                status, extra, body = reply
                data = json.dumps(body).encode()
                head = [f"HTTP/1.1 {status} X", "Content-Type: application/json",
                        f"Content-Length: {len(data)}", *(f"{k}: {v}" for k, v in extra.items())]
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()


async def ok(request: Seen) -> Reply:
    return 200, {}, completion_body(request)


def settings_for(url: str | None, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "model_backend": "openai", "model": MODEL, "openai_base_url": url,
        "openai_timeout": 10.0, "openai_max_retries": 3,
    }
    values.update(changes)
    return Settings(**values)


def generator(url: str | None, **changes: Any) -> OpenAIGenerator:
    # Millisecond backoff: the tests check how often and why it retries, not how long it waits.
    return OpenAIGenerator(settings_for(url, **changes), backoff_base=0.001, backoff_cap=0.01)


# ------------------------------------------------------------------------- request and answer


async def test_sends_sampling_params_and_maps_token_counts() -> None:
    async with FakeServer(ok) as server, generator(server.url) as gen:
        params = SamplingParams(temperature=0.7, top_p=0.9, max_tokens=33, seed=5, stop=("\n\n",))
        result = await gen.generate(["p1", "p2"], n=3, params=params)
    assert [len(row) for row in result] == [3, 3]
    assert [c.text for c in result[0]] == ["sample 0", "sample 1", "sample 2"]
    assert all(c.tokens == 3 and c.prompt_tokens == 2 for row in result for c in row)
    assert all(c.finish_reason == "length" for row in result for c in row)
    # One HTTP request per prompt, each asking for all n samples of it.
    bodies = sorted((r.body for r in server.completions), key=lambda b: b["prompt"])
    assert [b["prompt"] for b in bodies] == ["p1", "p2"]
    for body in bodies:
        assert body["model"] == MODEL
        assert (body["n"], body["temperature"], body["top_p"]) == (3, 0.7, 0.9)
        assert (body["max_tokens"], body["seed"], body["stop"]) == (33, 5, ["\n\n"])
    assert gen.stats.completions == 6 and gen.stats.generated_tokens == 18


async def test_chat_prompts_go_to_the_chat_endpoint() -> None:
    async def chat_ok(request: Seen) -> Reply:
        n = request.body.get("n", 1)
        choices = [{"index": i, "message": {"role": "assistant", "content": f"answer {i}"},
                    "finish_reason": "stop"} for i in range(n)]
        return 200, {}, {"choices": choices,
                         "usage": {"prompt_tokens": 7, "completion_tokens": 4 * n}}

    chat = (ChatMessage("system", "You prove."), ChatMessage("user", "Prove t."))
    async with FakeServer(chat_ok) as server, generator(server.url) as gen:
        [row] = await gen.generate([chat], n=2, params=SamplingParams(max_tokens=40))
    assert [c.text for c in row] == ["answer 0", "answer 1"]
    assert sum(c.tokens for c in row) == 8 and row[0].prompt_tokens == 7
    [request] = [r for r in server.seen if r.method == "POST"]
    assert request.path == "/v1/chat/completions"
    assert request.body["messages"] == [{"role": "system", "content": "You prove."},
                                        {"role": "user", "content": "Prove t."}]
    assert "prompt" not in request.body and request.body["max_tokens"] == 40


async def test_log_probabilities_are_summed_from_either_endpoint() -> None:
    """Best-first search ranks states by them: /completions takes `logprobs: 0` and answers
    `token_logprobs`, /chat/completions takes `logprobs: true` and answers `content[].logprob`."""
    async def with_logprobs(request: Seen) -> Reply:
        chat = request.path.endswith("/chat/completions")
        choice: dict[str, Any] = (
            {"message": {"role": "assistant", "content": "simp"},
             "logprobs": {"content": [{"token": "si", "logprob": -0.5},
                                      {"token": "mp", "logprob": -0.25}]}} if chat
            else {"text": "simp", "logprobs": {"tokens": ["si", "mp"],
                                               "token_logprobs": [-1.0, -0.125]}})
        if "logprobs" not in request.body:  # not asked: not returned
            del choice["logprobs"]
        return 200, {}, {"choices": [{"index": 0, "finish_reason": "stop", **choice}],
                         "usage": {"prompt_tokens": 3, "completion_tokens": 2}}

    params = SamplingParams(max_tokens=8, logprobs=True)
    async with FakeServer(with_logprobs) as server, generator(server.url) as gen:
        [[raw], [chat]] = await gen.generate(["x = x:::", (ChatMessage("user", "x = x"),)],
                                             params=params)
        [[plain]] = await gen.generate(["x = x:::"])
    assert (raw.logprob, chat.logprob, plain.logprob) == (-1.125, -0.75, None)
    asked = {r.path: r.body.get("logprobs") for r in server.seen if r.method == "POST"
             and "logprobs" in r.body}
    assert asked == {"/v1/completions": 0, "/v1/chat/completions": True}


async def test_a_server_without_a_chat_template_says_so() -> None:
    async def no_template(request: Seen) -> Reply:
        return 400, {}, {"error": {"message": "As of transformers v4.44, default chat template "
                                              "is no longer allowed"}}

    async with FakeServer(no_template) as server, generator(
            server.url, model_profile="goedel-v2") as gen:
        with pytest.raises(GenerationError, match="profile goedel-v2 needs the model's chat"):
            await gen.generate([(ChatMessage("user", "hi"),)])


async def test_base_url_with_v1_suffix_is_accepted() -> None:
    async with FakeServer(ok) as server, generator(server.url + "/v1/") as gen:
        await gen.generate(["p"])
    assert [r.path for r in server.seen] == ["/v1/models", "/v1/completions"]


async def test_usage_is_split_when_the_server_returns_no_token_ids() -> None:
    async def no_ids(request: Seen) -> Reply:
        body = completion_body(request, token_ids=False)
        body["choices"][0]["text"] = "a much longer sample than the others"
        body["usage"]["completion_tokens"] = 10
        return 200, {}, body

    async with FakeServer(no_ids) as server, generator(server.url) as gen:
        (row,) = await gen.generate(["p"], n=3)
        (single,) = await gen.generate(["p"], n=1)
    assert sum(c.tokens for c in row) == 10  # the request's total stays exact
    assert row[0].tokens > row[1].tokens  # and the longest text gets the largest share
    assert all(c.prompt_tokens == 2 for c in row)
    assert single[0].tokens == 10  # n = 1: usage is exact


async def test_server_rejecting_return_token_ids_is_asked_again_without_it() -> None:
    async def strict(request: Seen) -> Reply:
        if "return_token_ids" in request.body:
            return 400, {}, {"error": {"message": "Unrecognized request argument supplied: "
                                                  "return_token_ids"}}
        return 200, {}, completion_body(request, token_ids=False)

    async with FakeServer(strict) as server, generator(server.url) as gen:
        (first,) = await gen.generate(["p"], n=2)
        await gen.generate(["p"], n=2)
    assert [len(first)] == [2]
    # Asked with the field once, then without it from then on.
    assert ["return_token_ids" in r.body for r in server.completions] == [True, False, False]


async def test_concurrent_callers_fan_out_as_concurrent_requests() -> None:
    callers, prompts = 3, 2
    arrived = 0
    all_here = asyncio.Event()

    async def gather_then_answer(request: Seen) -> Reply:
        # No request is answered until all prompts of all callers are in flight together: a
        # client that sent them one after another would never get an answer (and time out).
        nonlocal arrived
        arrived += 1
        if arrived == callers * prompts:
            all_here.set()
        await all_here.wait()
        return 200, {}, completion_body(request)

    async with FakeServer(gather_then_answer) as server, generator(server.url) as gen:
        results = await asyncio.gather(
            *(gen.generate([f"p{i}", f"q{i}"], n=2) for i in range(callers))
        )
    assert [[len(row) for row in r] for r in results] == [[2, 2]] * callers
    assert len(server.completions) == callers * prompts


async def test_connection_limit_bounds_requests_in_flight() -> None:
    in_flight = peak = 0

    async def slowish(request: Seen) -> Reply:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        for _ in range(20):  # yield to let other requests arrive, if the client sends them
            await asyncio.sleep(0)
        in_flight -= 1
        return 200, {}, completion_body(request)

    async with FakeServer(slowish) as server, generator(
        server.url, openai_max_connections=2
    ) as gen:
        await asyncio.gather(*(gen.generate([f"p{i}"]) for i in range(8)))
    assert len(server.completions) == 8
    assert 1 <= peak <= 2


# ------------------------------------------------------------------------- failures and retries


async def test_429_with_retry_after_is_retried() -> None:
    async def busy_once(request: Seen) -> Reply:
        if len(server.completions) == 1:
            return 429, {"Retry-After": "0"}, {"error": {"message": "slow down"}}
        return 200, {}, completion_body(request)

    async with FakeServer(busy_once) as server, generator(server.url) as gen:
        (row,) = await gen.generate(["p"], n=2)
    assert len(row) == 2
    assert len(server.completions) == 2
    assert gen.stats.extra["http_retries"] == 1


async def test_dropped_connection_is_retried() -> None:
    async def drop_once(request: Seen) -> Reply:
        return None if len(server.completions) == 1 else (200, {}, completion_body(request))

    async with FakeServer(drop_once) as server, generator(server.url) as gen:
        (row,) = await gen.generate(["p"])
    assert len(row) == 1 and len(server.completions) == 2


async def test_500_forever_gives_up_after_max_retries() -> None:
    async def broken(request: Seen) -> Reply:
        return 500, {}, {"error": {"message": "engine dead"}}

    async with FakeServer(broken) as server, generator(server.url, openai_max_retries=2) as gen:
        with pytest.raises(GenerationError) as excinfo:
            await gen.generate(["p"])
    assert len(server.completions) == 3  # max_retries + 1 attempts
    message = str(excinfo.value)
    assert "HTTP 500" in message and "engine dead" in message
    assert "PROVER_OPENAI_MAX_RETRIES=2" in message


async def test_hanging_server_ends_in_a_timeout_error() -> None:
    async def hang(request: Seen) -> Reply:
        await server.released.wait()
        return 200, {}, completion_body(request)

    async with FakeServer(hang) as server, generator(
        server.url, openai_timeout=0.3, openai_max_retries=3
    ) as gen:
        with pytest.raises(GenerationError) as excinfo:
            await gen.generate(["p"])
    message = str(excinfo.value)
    assert f"{server.url}/v1/completions" in message
    assert "0.3 s" in message and "PROVER_OPENAI_TIMEOUT" in message
    assert len(server.completions) == 1  # a timeout is not retried


async def test_401_fails_at_once_with_the_server_message() -> None:
    async def unauthorized(request: Seen) -> Reply:
        return 401, {}, {"error": {"message": "Invalid API key", "type": "auth"}}

    async with FakeServer(unauthorized) as server, generator(server.url) as gen:
        with pytest.raises(GenerationError, match="HTTP 401: Invalid API key"):
            await gen.generate(["p"])
    assert len(server.completions) == 1


async def test_api_key_is_sent_as_bearer() -> None:
    async with FakeServer(ok) as server:
        async with generator(server.url, openai_api_key="sk-test") as gen:
            await gen.generate(["p"])
        async with generator(server.url) as gen:
            await gen.generate(["p"])
    with_key, without_key = server.seen[:2], server.seen[2:]
    assert [r.headers.get("authorization") for r in with_key] == ["Bearer sk-test"] * 2
    assert [r.headers.get("authorization") for r in without_key] == [None, None]


# ------------------------------------------------------------------------- start()


async def test_missing_base_url_names_the_variable() -> None:
    with pytest.raises(BackendUnavailable, match="PROVER_OPENAI_BASE_URL"):
        await generator(None).start()


async def test_unreachable_server_fails_at_start() -> None:
    with socket.socket() as s:  # a port that nothing listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(BackendUnavailable, match=r"cannot reach .*PROVER_OPENAI_BASE_URL"):
        await generator(f"http://127.0.0.1:{port}").start()


async def test_model_not_served_fails_at_start() -> None:
    async with FakeServer(ok, models=("other-model",)) as server:
        with pytest.raises(BackendUnavailable) as excinfo:
            await generator(server.url).start()
    assert "PROVER_MODEL='test-model'" in str(excinfo.value)
    assert "'other-model'" in str(excinfo.value)


async def test_generate_before_start_is_an_error() -> None:
    with pytest.raises(GenerationError, match="before start"):
        await generator("http://127.0.0.1:9").generate(["p"])


# ------------------------------------------------------------------------- factory


def test_factory_builds_the_openai_backend() -> None:
    assert isinstance(create_generator(settings_for("http://127.0.0.1:9")), OpenAIGenerator)


def test_factory_names_the_missing_package(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def without_httpx(name: str, *args: Any, **kwargs: Any) -> Any:
        return None if name == "httpx" else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", without_httpx)
    with pytest.raises(BackendUnavailable) as excinfo:
        create_generator(settings_for("http://127.0.0.1:9"))
    message = str(excinfo.value)
    assert "\n" not in message
    assert "httpx" in message and "pip install 'lean-prover-service[openai]'" in message


# ------------------------------------------------------------------------- a real vLLM server

VLLM_START_TIMEOUT_S = 300.0


def _tail(path: Path, lines: int = 40) -> str:
    text = path.read_text(errors="replace") if path.exists() else "(no log)"
    return "\n".join(text.splitlines()[-lines:])


@pytest.fixture(scope="module")
def vllm_server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a real vLLM OpenAI server on the tiny model, started once.

    Module scope, not session: only this module uses it, and stopping it when the module ends
    gives its ~2 GiB and its busy engine threads back before the rest of the suite runs.

    On this CPU build, `--gpu-memory-utilization` is a share of NUMA node 0 (about 8 GiB here)
    that must also cover the worker's own ~0.9 GiB, so small values fail; an explicit 128 MiB KV
    cache (room for ~100k tokens of the tiny model) is what keeps the reservation small.
    """
    port = free_port()
    log = tmp_path_factory.mktemp("vllm") / "server.log"
    cmd = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(tiny_model), "--host", "127.0.0.1", "--port", str(port),
        "--max-model-len", "4096", "--dtype", "float32", "--gpu-memory-utilization", "0.1",
        "--kv-cache-memory-bytes", str(128 * 2**20), "--enforce-eager", "--seed", "0",
    ]
    env = {**os.environ, "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"

    def stop() -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    started = time.monotonic()
    try:
        # Bounded readiness loop on /health: the only way to learn that a subprocess is ready.
        while True:
            if proc.poll() is not None:
                pytest.fail(f"vLLM server exited with {proc.returncode}; log tail:\n{_tail(log)}")
            if time.monotonic() - started > VLLM_START_TIMEOUT_S:
                pytest.fail(f"vLLM server not ready in {VLLM_START_TIMEOUT_S:g} s; log tail:\n"
                            f"{_tail(log)}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            time.sleep(0.5)
    except BaseException:
        stop()
        raise
    print(f"vLLM server ready in {time.monotonic() - started:.1f} s")
    try:
        yield url
    finally:
        stop()


@pytest.fixture
def vllm_settings(vllm_server: str, tiny_model: Path) -> Settings:
    return settings_for(vllm_server, model=str(tiny_model), openai_timeout=120.0)


def vllm_test(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Marks a test as needing the vLLM server; its timeout covers the server's start-up."""
    return pytest.mark.vllm(pytest.mark.timeout(VLLM_START_TIMEOUT_S + 120)(fn))


@vllm_test
async def test_vllm_n_samples_per_prompt_and_max_tokens(vllm_settings: Settings) -> None:
    async with OpenAIGenerator(vllm_settings) as gen:
        result = await gen.generate(["theorem a", "lemma b :", "example"], n=4,
                                    params=SamplingParams(max_tokens=12, seed=3))
    assert [len(row) for row in result] == [4, 4, 4]
    completions = [c for row in result for c in row]
    assert all(1 <= c.tokens <= 12 and c.prompt_tokens > 0 for c in completions)
    assert all(c.finish_reason == ("length" if c.tokens == 12 else "stop") for c in completions)
    assert any(c.finish_reason == "length" for c in completions)  # a random model rarely stops
    assert gen.stats.generated_tokens == sum(c.tokens for c in completions)


@vllm_test
async def test_vllm_seeds_are_deterministic(vllm_settings: Settings) -> None:
    def texts(rows: list[list[Any]]) -> list[list[str]]:
        return [[c.text for c in row] for row in rows]

    async with OpenAIGenerator(vllm_settings) as gen:
        prompts = ["theorem a", "lemma b"]
        first = await gen.generate(prompts, n=3, params=SamplingParams(max_tokens=16, seed=1))
        # The same seed again, this time alongside unseeded traffic.
        again, *_ = await asyncio.gather(
            gen.generate(prompts, n=3, params=SamplingParams(max_tokens=16, seed=1)),
            *(gen.generate([f"noise {i}"], n=2, params=SamplingParams(max_tokens=16))
              for i in range(4)),
        )
        other = await gen.generate(prompts, n=3, params=SamplingParams(max_tokens=16, seed=2))
    assert texts(again) == texts(first)
    assert texts(other) != texts(first)


@vllm_test
async def test_vllm_stop_strings(vllm_settings: Settings) -> None:
    async with OpenAIGenerator(vllm_settings) as gen:
        params = SamplingParams(max_tokens=32, seed=4)
        ((full,),) = await gen.generate(["theorem a"], params=params)
        stop = _ascii_piece(full.text)
        ((cut,),) = await gen.generate(
            ["theorem a"], params=SamplingParams(max_tokens=32, seed=4, stop=(stop,))
        )
    assert cut.text == full.text[: full.text.index(stop)]
    assert cut.finish_reason == "stop" and cut.tokens < full.tokens


@vllm_test
async def test_vllm_unknown_model_fails_at_start(vllm_settings: Settings) -> None:
    gen = OpenAIGenerator(vllm_settings.with_overrides(model="not-served"))
    with pytest.raises(BackendUnavailable, match="PROVER_MODEL='not-served' is not served"):
        await gen.start()


def _ascii_piece(text: str) -> str:
    """Two ASCII letters from past the start of `text`, to use as a stop string."""
    for i in range(2, len(text) - 1):
        piece = text[i : i + 2]
        if piece.isascii() and piece.isalpha():
            return piece
    raise AssertionError(f"no ASCII letters to stop at in {text!r}")
