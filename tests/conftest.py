"""Shared test set-up: the fake REPL command, settings for it, and the real-Lean marker.

Tests marked `lean` need a real toolchain (`make lean`). Where none exists they are skipped, and
the run says so in its summary: a skip must never be silent.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from prover.config import Settings
from prover.lean.launch import LeanSetupError, repl_command
from prover.lean.session import ReplSession
from tests.fixtures.redis_server import RedisServer

FIXTURES = Path(__file__).resolve().parent / "fixtures"
REPO = FIXTURES.parent.parent
FAKE_REPL = FIXTURES / "fake_repl.py"
TRANSCRIPTS = Path(
    os.environ.get("PROVER_TRANSCRIPTS_DIR", REPO.parent / "shared/data/repl-transcripts")
)

_real_lean_reason: str | None = None
# Built artefacts the tests reuse across runs (the tiny model); safe to delete.
TEST_CACHE = Path(os.environ.get("PROVER_TEST_CACHE", REPO / ".test-cache"))


def fake_cmd(**env: str) -> str:
    """The command line that starts one fake REPL with the given FAKE_REPL_* variables."""
    prefix = ["env", *(f"FAKE_REPL_{k.upper()}={v}" for k, v in env.items())] if env else []
    return shlex.join([*prefix, sys.executable, "-S", str(FAKE_REPL)])


def fake_settings(cmd: str | None = None, **values: object) -> Settings:
    """Settings for the fake REPL; keyword names are PROVER_* suffixes in lower case."""
    environ = {"PROVER_LEAN_REPL_CMD": cmd or fake_cmd(), "PROVER_LEAN_WORKERS": "2"}
    environ.update({f"PROVER_{k.upper()}": str(v) for k, v in values.items()})
    return Settings.load(environ=environ)


def real_lean_missing() -> str | None:
    """Why real-Lean tests cannot run here, or None when a toolchain is ready."""
    try:
        repl_command(Settings.load())
    except LeanSetupError as exc:
        return str(exc)
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    global _real_lean_reason
    # A user who pointed PROVER_LEAN_REPL_CMD at a REPL is trusted to have a real one.
    _real_lean_reason = None if os.environ.get("PROVER_LEAN_REPL_CMD") else real_lean_missing()
    if _real_lean_reason is None:
        return
    skip = pytest.mark.skip(reason=f"no real Lean toolchain: {_real_lean_reason}")
    for item in items:
        if "lean" in item.keywords:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    skipped = [
        r for r in terminalreporter.stats.get("skipped", []) if "no real Lean toolchain" in str(
            getattr(r, "longrepr", "")
        )
    ]
    if skipped:
        terminalreporter.write_line(
            f"NOTE: {len(skipped)} real-Lean test(s) were SKIPPED because no Lean toolchain is "
            f"installed here ({_real_lean_reason}). Run `make lean` and `make test-lean` on a "
            "machine with internet access to run them.",
            yellow=True,
        )


@pytest.fixture(scope="session")
def tiny_model() -> Path:
    """Directory of a tiny random LLaMA model + tokenizer, built locally (no network)."""
    sys.path.insert(0, str(FIXTURES))
    try:
        from tiny_model import build
    finally:
        sys.path.remove(str(FIXTURES))
    return build(TEST_CACHE / "tiny-llama")


@pytest.fixture(scope="session")
def tiny_chat_model(tiny_model: Path) -> Path:
    """The tiny model with a chat template, for the chat prover profiles."""
    sys.path.insert(0, str(FIXTURES))
    try:
        from tiny_model import with_chat_template
    finally:
        sys.path.remove(str(FIXTURES))
    return with_chat_template(tiny_model, TEST_CACHE / "tiny-llama-chat")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """URL of the session's Redis, emptied before each test."""
    import redis

    if redis_server.process is None or redis_server.process.poll() is not None:
        redis_server.start()  # a test stopped it
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture
def commands(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The text of every command the pool's REPLs are sent (how many times Lean ran)."""
    sent: list[str] = []
    request = ReplSession.request

    async def counting(self: ReplSession, req: dict[str, object], timeout: float) -> object:
        sent.append(str(req.get("cmd", "")))
        return await request(self, req, timeout)  # type: ignore[arg-type]

    monkeypatch.setattr(ReplSession, "request", counting)
    return sent
