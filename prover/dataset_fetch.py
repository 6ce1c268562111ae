"""The published datasets, fetched on first use and checked against pinned checksums.

The project does not ship miniF2F or ProofNet; it pins DeepSeek-Prover-V1.5's copies (the exact
files its numbers were measured on) by commit and SHA-256. A file whose checksum differs is
refused, not used: a silently different benchmark would make every pass rate incomparable.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

SOURCE_COMMIT = "2c4ba9119eef74d0d611f494261b2c5bae98c69a"  # deepseek-ai/DeepSeek-Prover-V1.5
SOURCE_URL = (
    "https://raw.githubusercontent.com/deepseek-ai/DeepSeek-Prover-V1.5/"
    f"{SOURCE_COMMIT}/datasets/{{name}}.jsonl"
)
SHA256 = {
    "minif2f": "d6654c88476ff14db19d57dea25bd955a240525fb52171e460f89d98f83d7dd5",
    "proofnet": "4a4d4fd69f45d6180830f12a73adb8a7e04915f651f3fa44a2877082fe252132",
    "minif2f_valid_few_shot": "f66abb94408b27352403b3a0cd9bf4c0b8a87e8d1827af191f613e44383633b1",
}
URL_ENV = "PROVER_DATA_URL"  # a mirror: a URL template with {name}
CACHE_ENV = "PROVER_DATA_CACHE"


class FetchError(RuntimeError):
    pass


def cache_dir() -> Path:
    env = os.environ.get(CACHE_ENV)
    base = Path(env) if env else Path.home() / ".cache" / "lean-prover-service" / "datasets"
    return base


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(path: Path, name: str) -> None:
    expected = SHA256[name]
    actual = sha256_of(path)
    if actual != expected:
        raise FetchError(
            f"{path} is not the pinned {name} dataset (SHA-256 {actual[:16]}..., expected "
            f"{expected[:16]}...): delete it to download it again, or pass your own file "
            "with --dataset FILE.jsonl"
        )


def fetch(name: str, timeout: float = 60.0) -> Path:
    """The cached, verified copy of a published dataset, downloaded if missing."""
    if name not in SHA256:
        raise FetchError(f"no published dataset named {name!r}")
    target = cache_dir() / f"{name}.jsonl"
    if target.exists():
        verify(target, name)
        return target
    url = os.environ.get(URL_ENV, SOURCE_URL).format(name=name)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            while block := resp.read(1 << 20):
                out.write(block)
        verify(Path(tmp), name)
        os.replace(tmp, target)
    except (urllib.error.URLError, OSError) as exc:
        raise FetchError(
            f"could not download the {name} dataset from {url} ({exc}); on a machine without "
            f"internet access pass a local copy with --dataset FILE.jsonl, or set {URL_ENV} "
            "to a mirror"
        ) from None
    finally:
        Path(tmp).unlink(missing_ok=True)
    return target
