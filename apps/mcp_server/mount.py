"""`/mcp` in `prover serve`: the MCP server over streamable HTTP, on the service's pool and queue.

Mounted by the `prover serve` command as a `server.app.Addon`, so it sits behind the service's
Guard: API keys (`Authorization: Bearer KEY` on every MCP request), the per-key rate limit and
the body limit, exactly as `/v1`. Sessions are stateful (the SDK's default): a cancellation or a
progress token has to reach the request it belongs to, which lives in this API process; with
several API replicas behind a balancer, route `/mcp` with session affinity (the
`Mcp-Session-Id` header).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING

from apps.mcp_server.backends import ServiceBackend
from apps.mcp_server.roots import AllowedRoots
from apps.mcp_server.server import build_server
from prover.config import Settings

if TYPE_CHECKING:
    from server.app import Addon, Service

PATH = "/mcp"


def mcp_addon(settings: Settings, allow_roots: Sequence[str] = ()) -> Addon:
    from server.app import Addon

    backend = ServiceBackend(settings)
    mcp = build_server(backend, AllowedRoots(allow_roots))
    # host: on loopback the SDK also checks Host/Origin headers (DNS rebinding protection).
    http = mcp.streamable_http_app(streamable_http_path=PATH, host=settings.server_host)

    @contextlib.asynccontextmanager
    async def lifespan(service: Service) -> AsyncIterator[None]:
        async with backend.attached(service), mcp.session_manager.run():
            yield

    return Addon(paths=frozenset({PATH}), routes=list(http.routes), lifespan=lifespan)
