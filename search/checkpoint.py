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
from typing import Any

FORMAT = "lean-prover-rmaxts-checkpoint"
VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint file exists but cannot be used; the message says why and what to do."""


def fingerprint(header: str, statement: str) -> str:
    return hashlib.sha256((header + "\0" + statement).encode("utf-8")).hexdigest()[:32]


def write(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"format": FORMAT, "version": VERSION, **payload}
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


def read(path: Path, expected_fingerprint: str) -> dict[str, Any] | None:
    """The checkpoint's payload, or None when there is no file yet."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CheckpointError(
            f"checkpoint {path} is not valid JSON ({exc}); delete it to start the search afresh"
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an RMaxTS checkpoint of this program")
    if data.get("version") != VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format version {data.get('version')}, this program reads "
            f"version {VERSION}; finish it with the version that wrote it or delete it"
        )
    if data.get("fingerprint") != expected_fingerprint:
        raise CheckpointError(
            f"checkpoint {path} belongs to a different problem (header or statement differ); "
            "use another --checkpoint path or delete it"
        )
    return data
