"""Published datasets are downloaded on first use and refused when their checksum differs."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from prover.datasets import DatasetError, load_problems
from tests.conftest import REPO

SHARED = REPO.parent / "shared" / "data" / "benchmarks"


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    served = tmp_path / "served"
    served.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(served)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    empty = tmp_path / "no-local-copies"
    empty.mkdir()
    monkeypatch.setenv("PROVER_DATA_DIR", str(empty))
    monkeypatch.setenv("PROVER_DATA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PROVER_DATA_URL",
                       f"http://127.0.0.1:{server.server_address[1]}/{{name}}.jsonl")
    yield served
    server.shutdown()


def test_first_use_downloads_and_verifies_then_uses_the_cache(mirror: Path, tmp_path: Path
                                                              ) -> None:
    (mirror / "minif2f.jsonl").write_bytes((SHARED / "minif2f.jsonl").read_bytes())
    assert len(load_problems("minif2f", split="test")) == 244
    cached = tmp_path / "cache" / "minif2f.jsonl"
    assert cached.is_file()
    (mirror / "minif2f.jsonl").unlink()  # the second use needs no network
    assert len(load_problems("minif2f", split="valid")) == 244


def test_a_file_with_another_checksum_is_refused(mirror: Path, tmp_path: Path) -> None:
    data = (SHARED / "proofnet.jsonl").read_bytes()
    (mirror / "proofnet.jsonl").write_bytes(data.replace(b"theorem", b"lemma", 1))
    with pytest.raises(DatasetError, match="not the pinned proofnet dataset"):
        load_problems("proofnet")
    assert not (tmp_path / "cache" / "proofnet.jsonl").exists()  # nothing half-trusted kept


def test_unreachable_source_says_how_to_work_offline(mirror: Path) -> None:
    with pytest.raises(DatasetError, match=r"--dataset FILE\.jsonl"):
        load_problems("minif2f")  # the mirror has no such file: 404
