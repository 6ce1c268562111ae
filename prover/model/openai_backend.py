"""Sampling from any OpenAI-compatible server (`vllm serve`, SGLang, a hosted endpoint).

The server does the batching: vLLM and SGLang batch continuously, so the best a client can do is
put every caller's work on the wire at once. Each prompt becomes one `/v1/completions` request
(a chat prompt: one `/v1/chat/completions` request, the server applying the chat template) asking
for `n` choices (one prompt per request keeps a slow prompt from holding back the others
and makes the per-request usage numbers per-prompt numbers), and all requests of all callers run
concurrently, bounded only by `PROVER_OPENAI_MAX_CONNECTIONS`. Callers past that bound wait on a
semaphore, not in a poll loop.

Failures are split by whether trying again can help:

- 429, 5xx and connection failures are retried with exponential backoff and jitter (a server's
  `Retry-After` wins over the computed delay), up to `PROVER_OPENAI_MAX_RETRIES` retries;
- a request that runs past `PROVER_OPENAI_TIMEOUT` is *not* retried: the server is alive but too
  slow, and sending the same work again would multiply both the wait and the server's load;
- any other 4xx (bad key, unknown model, too many tokens) fails at once with the server's message.

Token counts. vLLM answers `return_token_ids: true` with each choice's generated and prompt token
ids, the only exact per-choice count (its `usage` covers the whole request, i.e. all `n`
choices). We ask for them; a server that returns no ids falls back to `usage`: exact for `n = 1`,
and for `n > 1` the request's `completion_tokens` is split over the choices in proportion to their
text length (the totals stay exact, the split is an estimate). A server that rejects the unknown
field with a 400 is asked again without it, once per generator.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import math
import random
import time
from collections.abc import Sequence
from typing import Any, cast

import httpx

from prover.config import Settings
from prover.model.base import (
    BackendUnavailable,
    Chat,
    Completion,
    GenerationError,
    Generator,
    Prompt,
    SamplingParams,
)

# Longest wait a server's Retry-After may impose; past it a misconfigured proxy would stall a
# search for hours.
MAX_RETRY_AFTER_S = 300.0


class OpenAIGenerator(Generator):
    """Client of `/v1/completions` (text prompts) and `/v1/chat/completions` (the chat prompts
    of chat prover profiles: the server applies the model's chat template); safe to share
    between any number of concurrent callers."""

    name = "openai"
    native_chat = True

    def __init__(
        self, settings: Settings, *, backoff_base: float = 0.5, backoff_cap: float = 30.0
    ) -> None:
        super().__init__()
        self._settings = settings
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._client: httpx.AsyncClient | None = None
        self._slots: asyncio.Semaphore | None = None
        self._api_root = ""
        # Cleared when the server refuses vLLM's `return_token_ids` extension.
        self._ask_token_ids = True
        self.stats.extra.update({"http_requests": 0, "http_retries": 0})

    @property
    def completions_url(self) -> str:
        return f"{self._api_root}/completions"

    @property
    def chat_url(self) -> str:
        return f"{self._api_root}/chat/completions"

    async def start(self) -> None:
        """Open the connection pool and check once that the server serves `PROVER_MODEL`."""
        if self._client is not None:
            return
        s = self._settings
        if not s.openai_base_url:
            raise BackendUnavailable(
                "PROVER_MODEL_BACKEND=openai needs PROVER_OPENAI_BASE_URL, the base URL of an "
                "OpenAI-compatible server (for `vllm serve` on this machine: "
                "http://127.0.0.1:8000)"
            )
        base = s.openai_base_url.rstrip("/")
        # Both conventions are in use: the server root (interface.md) and the OpenAI SDK's
        # ".../v1"; accept either rather than calling ".../v1/v1/completions".
        self._api_root = base if base.endswith("/v1") else base + "/v1"
        headers = {"Authorization": f"Bearer {s.openai_api_key}"} if s.openai_api_key else {}
        self._slots = asyncio.Semaphore(s.openai_max_connections)
        self._client = httpx.AsyncClient(
            headers=headers,
            # Waiting for a free connection is bounded by the semaphore, not by the timeout.
            timeout=httpx.Timeout(s.openai_timeout, pool=None),
            limits=httpx.Limits(
                max_connections=s.openai_max_connections,
                max_keepalive_connections=s.openai_max_connections,
            ),
        )
        try:
            await self._check_model()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def _check_model(self) -> None:
        assert self._client is not None
        url = f"{self._api_root}/models"
        try:
            resp = await self._client.get(url, timeout=min(self._settings.openai_timeout, 30.0))
        except httpx.HTTPError as exc:
            raise BackendUnavailable(
                f"cannot reach the model server at {url} (PROVER_OPENAI_BASE_URL): "
                f"{_describe(exc)}"
            ) from exc
        if resp.status_code in (401, 403):
            raise BackendUnavailable(
                f"the model server at {url} refused the API key (HTTP {resp.status_code}: "
                f"{_server_message(resp)}); set PROVER_OPENAI_API_KEY"
            )
        if resp.status_code in (404, 405):
            return  # a server without a model list; the first completion will tell
        if resp.status_code != 200:
            raise BackendUnavailable(
                f"the model server at {url} answered HTTP {resp.status_code}: "
                f"{_server_message(resp)}"
            )
        try:
            served = [str(m["id"]) for m in resp.json()["data"]]
        except (ValueError, KeyError, TypeError):
            return  # not the OpenAI shape; do not refuse a server over its model list
        model = self._settings.model
        if model not in served:
            raise BackendUnavailable(
                f"PROVER_MODEL={model!r} is not served by {self._api_root}; it serves "
                f"{', '.join(map(repr, served)) or 'nothing'} (set PROVER_MODEL to one of them)"
            )

    async def _generate(
        self, prompts: Sequence[Prompt], n: int, params: SamplingParams
    ) -> list[list[Completion]]:
        if self._client is None:
            raise GenerationError("OpenAIGenerator.generate called before start()")
        return list(await asyncio.gather(*(self._complete(p, n, params) for p in prompts)))

    async def _complete(self, prompt: Prompt, n: int, params: SamplingParams) -> list[Completion]:
        chat = not isinstance(prompt, str)
        payload: dict[str, Any] = {
            "model": self._settings.model,
            **({"messages": [m.to_json() for m in cast(Chat, prompt)]} if chat
               else {"prompt": prompt}),
            "n": n,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_tokens,
        }
        if params.seed is not None:
            payload["seed"] = params.seed
        if params.stop:
            payload["stop"] = list(params.stop)
        if params.logprobs:
            # Per sampled token, summed into Completion.logprob: the chat endpoint takes a
            # flag, the completions endpoint the number of alternatives (none) per token.
            payload["logprobs"] = True if chat else 0
        url = self.chat_url if chat else self.completions_url
        body = await self._post(payload, url)
        return _completions(body, n, url)

    async def _post(self, payload: dict[str, Any], url: str) -> dict[str, Any]:
        """POST with retries; returns the decoded JSON body of a 200 answer."""
        client, slots = self._client, self._slots
        assert client is not None and slots is not None
        timeout = self._settings.openai_timeout
        attempts = self._settings.openai_max_retries + 1
        attempt = 0
        while True:
            asked_token_ids = self._ask_token_ids
            if asked_token_ids:
                payload["return_token_ids"] = True
            else:
                payload.pop("return_token_ids", None)
            attempt += 1
            self.stats.extra["http_requests"] += 1
            try:
                async with slots:
                    # asyncio.timeout bounds the whole exchange; httpx's timeout alone bounds
                    # each read, which a server trickling bytes would never trip.
                    async with asyncio.timeout(timeout):
                        resp = await client.post(url, json=payload)
            except (TimeoutError, httpx.ReadTimeout, httpx.WriteTimeout) as exc:
                raise GenerationError(
                    f"{url} did not answer within {timeout:g} s; raise PROVER_OPENAI_TIMEOUT "
                    "if the server is merely slow (long generations, a deep queue)"
                ) from exc
            except httpx.TransportError as exc:  # refused, reset, DNS, connect timeout
                cause = _describe(exc)
                delay = self._backoff(attempt)
            else:
                if resp.status_code == 200:
                    try:
                        data = resp.json()
                    except ValueError as exc:
                        raise GenerationError(
                            f"{url} answered 200 with a body that is not JSON: {resp.text[:300]!r}"
                        ) from exc
                    if not isinstance(data, dict):
                        raise GenerationError(f"{url} answered 200 with {type(data).__name__}")
                    return data
                message = _server_message(resp)
                if resp.status_code == 429 or resp.status_code >= 500:
                    cause = f"HTTP {resp.status_code}: {message}"
                    retry_after = _retry_after(resp)
                    delay = self._backoff(attempt) if retry_after is None else retry_after
                elif resp.status_code == 400 and asked_token_ids and "return_token_ids" in message:
                    self._ask_token_ids = False  # not vLLM; ask again without the extension
                    attempt -= 1
                    continue
                elif "chat template" in message and "messages" in payload:
                    raise GenerationError(
                        f"{url} cannot chat with PROVER_MODEL={self._settings.model!r} (HTTP "
                        f"{resp.status_code}: {message}); profile {self._settings.model_profile}"
                        " needs the model's chat template: serve the chat model it is for")
                else:
                    raise GenerationError(f"{url} answered HTTP {resp.status_code}: {message}")
            if attempt >= attempts:
                raise GenerationError(
                    f"{url} failed {attempt} time{'s' if attempt > 1 else ''} "
                    f"(PROVER_OPENAI_MAX_RETRIES={attempts - 1}); last: {cause}"
                )
            self.stats.extra["http_retries"] += 1
            await asyncio.sleep(delay)  # backoff between attempts, not polling

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with 'equal jitter': half fixed, half random.

        The random half spreads out the retries of the many callers that failed together; the
        fixed half keeps each one from hammering a struggling server at once.
        """
        ceiling = min(self._backoff_cap, self._backoff_base * 2.0 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


def _completions(body: dict[str, Any], n: int, url: str) -> list[Completion]:
    """The `n` choices of one single-prompt response as `Completion`s, in index order."""
    choices = body.get("choices")
    if not isinstance(choices, list) or len(choices) != n:
        got = len(choices) if isinstance(choices, list) else "no"
        raise GenerationError(f"{url} returned {got} choices for a request of n={n}")
    choices = sorted(choices, key=lambda c: int(c.get("index", 0)))
    usage = body.get("usage") or {}
    # /completions puts the text in `text`, /chat/completions in `message.content`.
    texts = [str(c.get("text") or (c.get("message") or {}).get("content") or "")
             for c in choices]
    ids = [c.get("token_ids") for c in choices]
    if all(isinstance(t, list) for t in ids):
        counts = [len(t) for t in ids]
    else:
        counts = _split(int(usage.get("completion_tokens") or 0), texts)
    # One prompt per request, so the request's prompt_tokens is this prompt's count.
    request_prompt_tokens = int(usage.get("prompt_tokens") or 0)
    out = []
    for choice, text, count in zip(choices, texts, counts, strict=True):
        prompt_ids = choice.get("prompt_token_ids")
        prompt_tokens = len(prompt_ids) if isinstance(prompt_ids, list) else request_prompt_tokens
        reason = choice.get("finish_reason")
        out.append(
            Completion(
                text=text,
                tokens=count,
                prompt_tokens=prompt_tokens,
                # OpenAI's "length" is ours; None/"stop" (EOS or a stop string) are "stop";
                # anything else (e.g. "content_filter", "abort") is passed on as is.
                finish_reason="stop" if reason in (None, "stop") else str(reason),
                logprob=_logprob(choice),
            )
        )
    return out


def _logprob(choice: dict[str, Any]) -> float | None:
    """The sum of a choice's token log-probabilities (present when `logprobs` was asked):
    `logprobs.token_logprobs` from /completions, `logprobs.content[].logprob` from
    /chat/completions."""
    found = choice.get("logprobs")
    if not isinstance(found, dict):
        return None
    values = found.get("token_logprobs")
    if not isinstance(values, list) and isinstance(found.get("content"), list):
        values = [t.get("logprob") for t in found["content"] if isinstance(t, dict)]
    if not isinstance(values, list):
        return None
    return float(sum(v for v in values if isinstance(v, int | float)))


def _split(total: int, texts: list[str]) -> list[int]:
    """`total` tokens shared over the choices by text length, summing exactly to `total`."""
    if len(texts) == 1:
        return [total]
    weights = [max(len(t), 1) for t in texts]
    shares = [w * total / sum(weights) for w in weights]
    counts = [math.floor(s) for s in shares]
    # Largest remainders get the tokens that flooring left over.
    by_remainder = sorted(range(len(texts)), key=lambda i: shares[i] - counts[i], reverse=True)
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _retry_after(resp: httpx.Response) -> float | None:
    """Seconds from a Retry-After header (seconds or an HTTP date), capped; None if absent."""
    raw = resp.headers.get("retry-after")
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def _server_message(resp: httpx.Response) -> str:
    """The error text of an OpenAI-style (`{"error": {"message"}}`) or any other error body."""
    try:
        data = resp.json()
    except (ValueError, json.JSONDecodeError):
        return resp.text[:500].strip() or resp.reason_phrase
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict):
            for key in ("message", "detail", "msg"):
                if err.get(key):
                    return str(err[key])
        elif isinstance(err, str):
            return err
        if data.get("detail"):
            return str(data["detail"])
    return json.dumps(data)[:500]


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
