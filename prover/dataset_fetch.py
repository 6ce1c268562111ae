"""The published datasets, fetched on first use and checked against pinned checksums.

The project does not ship the benchmarks; it pins each file by SHA-256 (prover/dataset_catalog.py:
DeepSeek-Prover-V1.5's miniF2F and ProofNet by commit, the newer files as SOURCES.md of the
shared data describes them). A file whose checksum differs is refused, not used: a silently
different benchmark would make every pass rate incomparable. The newer files are built from
their sources and published nowhere as such, so on first use they come from the mirror named
by PROVER_DATA_URL (e.g. a copy of shared/data/benchmarks), still checked against the pin.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from prover.dataset_catalog import CATALOG, DEEPSEEK_COMMIT, DEEPSEEK_URL

SOURCE_COMMIT = DEEPSEEK_COMMIT  # deepseek-ai/DeepSeek-Prover-V1.5
SHA256 = {d.name: d.sha256 for d in CATALOG.values()}
URL_ENV = "PROVER_DATA_URL"  # a mirror: a URL template with {name} (the file name without .jsonl)
CACHE_ENV = "PROVER_DATA_CACHE"
__all__ = ["DEEPSEEK_URL", "SHA256", "FetchError", "cache_dir", "fetch", "sha256_of", "verify"]


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
    expected = CATALOG[name].sha256
    actual = sha256_of(path)
    if actual != expected:
        raise FetchError(
            f"{path} is not the pinned {name} dataset (SHA-256 {actual[:16]}..., expected "
            f"{expected[:16]}...): delete it to download it again, or pass your own file "
            "with --dataset FILE.jsonl"
        )


def fetch(name: str, timeout: float = 60.0) -> Path:
    """The cached, verified copy of a published dataset, downloaded if missing."""
    source = CATALOG.get(name)
    if source is None:
        raise FetchError(f"no published dataset named {name!r}")
    target = cache_dir() / source.file
    if target.exists():
        verify(target, name)
        return target
    stem = source.file.removesuffix(".jsonl")
    mirror = os.environ.get(URL_ENV)
    url = mirror.format(name=stem) if mirror else source.url
    if url is None:
        raise FetchError(
            f"the {name} dataset ({source.file}) is built from {source.repository} at commit "
            f"{source.commit[:12]} and has no pinned download: set {URL_ENV} to a mirror of "
            "shared/data/benchmarks (a URL template with {name}), put the file in "
            "PROVER_DATA_DIR, or pass it with --dataset FILE.jsonl"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{stem}.", suffix=".part")
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
