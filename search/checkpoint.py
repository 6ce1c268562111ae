"""RMaxTS checkpoints: the whole tree and the sample count as versioned JSON, written atomically.

A search of thousands of samples costs GPU hours; a killed process must resume where it stopped.
The file is replaced with a rename after an fsync, so a kill mid-write leaves the previous
checkpoint intact; a checkpoint of another problem or format version is refused, not misread.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Protocol

FORMAT = "lean-prover-rmaxts-checkpoint"
VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint file exists but cannot be used; the message says why and what to do."""


def fingerprint(header: str, statement: str) -> str:
    return hashlib.sha256((header + "\0" + statement).encode("utf-8")).hexdigest()[:32]


class CheckpointStore(Protocol):
    """Where a search keeps its checkpoint: a file for the CLI, Redis for the service's workers
    (so a job resumes on whichever machine picks it up). `save` must not block the search's
    event loop for long; `flush` waits until the last saved state is durable."""

    where: str  # for messages

    async def load(self) -> bytes | None: ...  # the stored JSON, None when there is none

    def save(self, data: dict[str, Any]) -> None: ...

    async def flush(self) -> None: ...


def envelope(payload: dict[str, Any]) -> dict[str, Any]:
    return {"format": FORMAT, "version": VERSION, **payload}


def decode(text: str | bytes, where: str, expected_fingerprint: str) -> dict[str, Any]:
    """A stored checkpoint, validated: this program's format and version, this problem."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(
            f"checkpoint {where} is not valid JSON ({exc}); delete it to start the search afresh"
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{where} is not an RMaxTS checkpoint of this program")
    if data.get("version") != VERSION:
        raise CheckpointError(
            f"checkpoint {where} has format version {data.get('version')}, this program reads "
            f"version {VERSION}; finish it with the version that wrote it or delete it"
        )
    if data.get("fingerprint") != expected_fingerprint:
        raise CheckpointError(
            f"checkpoint {where} belongs to a different problem (header or statement differ); "
            "use another --checkpoint path or delete it"
        )
    return data


class FileCheckpoint:
    """A JSON file replaced atomically (write to a temporary file, fsync, rename)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = str(path)

    async def load(self) -> bytes | None:
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return None

    def save(self, data: dict[str, Any]) -> None:
        path = self.path
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, ensure_ascii=False, separators=(",", ":"))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    async def flush(self) -> None:
        return None


async def load(store: CheckpointStore, expected_fingerprint: str) -> dict[str, Any] | None:
    raw = await store.load()
    return None if raw is None else decode(raw, store.where, expected_fingerprint)
