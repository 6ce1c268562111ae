"""The command-line side of the MCP server: `prover mcp` (stdio) and the `/mcp` of `prover serve`.

Registered by prover/cli.py with a few lines; imports the SDK only when a command runs, so the
CLI works (and says what to install) without the `mcp` extra.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prover.config import ConfigError, Settings

if TYPE_CHECKING:
    from server.app import Addon

log = logging.getLogger("apps.mcp")
INSTALL_HINT = "the MCP server needs the `mcp` package: pip install -e '.[mcp]'"


def _roots(dirs: list[str], flag: str) -> list[str]:
    for d in dirs:
        if not Path(d).expanduser().is_dir():
            raise ConfigError(f"{flag} {d}: not a directory")
    return dirs


def add_parser(sub: Any) -> None:
    """`prover mcp`: its options, on the CLI's sub-command parser."""
    p = sub.add_parser("mcp", help="run the MCP server for coding agents on stdio",
                       description="Serve the prover's tools (verify, prove, fill_sorries, "
                       "complete, find_problem, explain_verdict) to an MCP client on standard "
                       "input/output, on a local Lean pool and model started on first use. "
                       "Over HTTP, use /mcp of `prover serve`.")
    p.add_argument("--allow-root", action="append", default=[], metavar="DIR",
                   help="a directory whose .lean files fill_sorries and complete may read and "
                   "write (repeatable; none: only text is accepted)")
    p.set_defaults(run=run_stdio)


def add_serve_options(serve: argparse.ArgumentParser) -> None:
    serve.add_argument("--mcp-allow-root", action="append", default=[], metavar="DIR",
                       help="a directory whose .lean files /mcp's fill_sorries may read and "
                       "write, on this machine (repeatable)")


async def run_stdio(args: argparse.Namespace, settings: Settings) -> int:
    try:
        from apps.mcp_server.backends import LocalBackend
        from apps.mcp_server.roots import AllowedRoots
        from apps.mcp_server.server import build_server
    except ImportError as exc:
        raise ConfigError(f"{INSTALL_HINT} ({exc})") from None
    backend = LocalBackend(settings)
    server = build_server(backend, AllowedRoots(_roots(args.allow_root, "--allow-root")))
    try:
        await server.run_stdio_async()
    finally:
        await backend.aclose()
    return 0


def serve_addons(args: argparse.Namespace, settings: Settings) -> list[Addon]:
    """What `prover serve` mounts besides the API: `/mcp`, when the SDK is installed."""
    roots = _roots(args.mcp_allow_root, "--mcp-allow-root")
    try:
        from apps.mcp_server.mount import mcp_addon
    except ImportError as exc:
        if roots:
            raise ConfigError(f"--mcp-allow-root given, but {INSTALL_HINT} ({exc})") from None
        log.warning("no /mcp endpoint: %s", INSTALL_HINT)
        return []
    return [mcp_addon(settings, roots)]


def register_worker_kinds() -> None:
    """The job kinds `prover worker` runs for the MCP endpoint (`fill`)."""
    from apps.mcp_server.fill_job import register

    register()
