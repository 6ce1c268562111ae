"""A job's event stream as Server-Sent Events.

Each event goes out as `id: <stream id>` + one `data: <JSON>` line, so a client that reconnects
with `Last-Event-ID` (browsers do it on their own) resumes exactly after the last event it got.
The stream ends after the result event. While nothing happens a comment line is sent every
`heartbeat_s`, because proxies and load balancers close connections that stay silent for a minute
or so, and a long search can go that long between progress steps.

Events are read from Redis by a separate task into a small bounded queue: the reader blocks when
the client is slow (back-pressure, not an unbounded buffer), and the writer can wait on "next
event, heartbeat due, or server draining" at once without cancelling a Redis read half-way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

log = logging.getLogger("server.sse")

_END = object()


def format_event(event_id: str, data: dict[str, Any]) -> str:
    # json.dumps escapes newlines, so the payload is always exactly one `data:` line.
    return f"id: {event_id}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


async def event_stream(
    source: AsyncIterator[tuple[str, dict[str, Any]]],
    *,
    heartbeat_s: float,
    draining: asyncio.Event,
    retry_ms: int = 3000,
    queue_size: int = 16,
) -> AsyncIterator[str]:
    """The SSE text of `source`; ends after it ends, or when `draining` is set (the client then
    reconnects, to this server's successor, with Last-Event-ID)."""
    queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=queue_size)

    async def pump() -> None:
        try:
            async for item in source:
                await queue.put(item)
        except Exception as exc:  # Redis went away mid-stream: end it, the client resumes
            log.warning("event stream source failed: %s", exc)
        await queue.put(_END)  # not on cancellation: then nobody reads the queue any more

    reader = asyncio.create_task(pump())
    drained = asyncio.create_task(draining.wait())
    getter: asyncio.Task[Any] | None = None
    try:
        yield f"retry: {retry_ms}\n\n"
        while True:
            if getter is None:
                getter = asyncio.create_task(queue.get())
            done, _ = await asyncio.wait({getter, drained}, timeout=heartbeat_s,
                                         return_when=asyncio.FIRST_COMPLETED)
            if getter in done:
                item = getter.result()
                getter = None
                if item is _END:
                    return
                event_id, data = item
                yield format_event(event_id, data)
            elif drained in done:
                yield ": server shutting down; reconnect with Last-Event-ID\n\n"
                return
            else:
                yield ": heartbeat\n\n"
    finally:
        for task in (getter, drained, reader):
            if task is not None:
                task.cancel()
        for task in (getter, drained, reader):
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        aclose = getattr(source, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()
