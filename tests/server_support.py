"""Helpers for the HTTP service tests: the app in-process (ASGI) or behind a real uvicorn on a
loopback port, a search worker in-process, and a generator the test can hold back."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import httpx
from fastapi import FastAPI

from prover.config import Settings
from prover.lean import LeanPool
from prover.model.base import Completion, Generator, SamplingParams
from prover.runtime import Runtime
from server.app import build_server
from tests.conftest import fake_settings

STATEMENT = "theorem t1 (a : Nat) : a = a := by"
HEADER = "import Mathlib\n"
GOOD = f"{HEADER}{STATEMENT}\n  rfl\n"
BAD = f"{HEADER}{STATEMENT}\n  linarith [fail]\n"
SORRY = f"{HEADER}{STATEMENT}\n  sorry\n"


def settings(redis_url: str = "redis://127.0.0.1:1/0", **values: object) -> Settings:
    """Fake-REPL settings (unsandboxed: faster, and the sandbox is not under test here)."""
    values.setdefault("lean_sandbox", "none")
    values["redis_url"] = redis_url
    return fake_settings(None, **values)


@contextlib.asynccontextmanager
async def asgi_client(app: FastAPI, client: tuple[str, int] = ("127.0.0.1", 50000),
                      ) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan run, and a client that talks to it without a socket (the
    ASGI transport buffers whole responses: use `live_client` for event streams)."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as c:
            yield c


@contextlib.asynccontextmanager
async def live_server(app: FastAPI, app_settings: Settings) -> AsyncIterator[str]:
    """A real uvicorn serving `app` on a loopback port; yields the base URL. The socket is
    bound and listening before uvicorn starts, so clients may connect at once (the kernel
    queues them until uvicorn accepts): no readiness polling."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    port = sock.getsockname()[1]
    server = build_server(app_settings, app)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@contextlib.asynccontextmanager
async def live_client(app: FastAPI, app_settings: Settings, **kwargs: Any,
                      ) -> AsyncIterator[httpx.AsyncClient]:
    async with live_server(app, app_settings) as url, httpx.AsyncClient(
            base_url=url, timeout=60, **kwargs) as c:
        yield c


async def sse_events(response: httpx.Response) -> AsyncIterator[tuple[str | None, Any]]:
    """(id, parsed data) per event of a streaming response; comments as (None, ': text')."""
    event_id: str | None = None
    data: list[str] = []
    async for line in response.aiter_lines():
        if line.startswith(":"):
            yield None, line
        elif line.startswith("id:"):
            event_id = line[3:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif line == "" and data:
            yield event_id, json.loads("\n".join(data))
            event_id, data = None, []


class HeldGenerator(Generator):
    """Completions from `replies` in order (the last one repeated); before reply number
    `hold_at` (0-based) it waits for `release`, so a test can look at a job mid-search."""

    name = "held"

    def __init__(self, replies: Sequence[str], hold_at: int | None = None) -> None:
        super().__init__()
        self.replies = list(replies)
        self.hold_at = hold_at
        self.calls = 0
        self.release = asyncio.Event()
        self.holding = asyncio.Event()

    async def _generate(self, prompts: Sequence[str], n: int,
                        params: SamplingParams) -> list[list[Completion]]:
        out = []
        for _prompt in prompts:
            row = []
            for _ in range(n):
                index = self.calls
                self.calls += 1
                if index == self.hold_at:
                    self.holding.set()
                    await self.release.wait()
                else:
                    await asyncio.sleep(0)
                text = self.replies[min(index, len(self.replies) - 1)] + "\n```\n"
                row.append(Completion(text, tokens=4, prompt_tokens=10))
            out.append(row)
        return out


@contextlib.asynccontextmanager
async def worker(worker_settings: Settings, generator: Generator,
                 name: str = "test-worker") -> AsyncIterator[Runtime]:
    """`run_worker` in this event loop, on a scripted generator and the fake REPL."""
    from server.worker import run_worker

    async with Runtime(worker_settings, generator=generator,
                       pool=LeanPool(worker_settings)) as runtime:
        stop = asyncio.Event()
        task = asyncio.create_task(run_worker(worker_settings, name, runtime=runtime, stop=stop))
        try:
            yield runtime
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)  # a worker that does not stop fails, not hangs


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The `error` object of an error response, after checking the shape every error has."""
    assert response.headers["content-type"].startswith("application/json"), response.text
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error["code"], str) and error["code"], body
    assert isinstance(error["message"], str) and error["message"], body
    assert "Traceback" not in response.text
    assert error["request_id"] == response.headers["x-request-id"]
    return dict(error)


Script = Callable[[str, int], str]
