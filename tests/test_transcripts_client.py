"""The real client code against every recorded REPL session.

Each `.in` is replayed through `ReplProcess` to a process that answers with the recorded bytes;
the client must send requests the REPL would accept (the replayer compares them with the recorded
ones) and parse every recorded response into the right shape.
"""

from __future__ import annotations

import json
import sys

import pytest

from prover.lean import protocol
from prover.lean.process import ReplProcess
from tests.conftest import FIXTURES, TRANSCRIPTS
from tests.fixtures.replay_repl import split_requests, split_responses

NAMES = sorted(
    p.name[: -len(".expected.out")] for p in TRANSCRIPTS.glob("*.expected.out")
) if TRANSCRIPTS.is_dir() else []


def recorded(name: str) -> tuple[list[dict[str, object]], list[bytes]]:
    requests = [json.loads(q) for q in split_requests((TRANSCRIPTS / f"{name}.in").read_bytes())]
    responses = split_responses((TRANSCRIPTS / f"{name}.expected.out").read_bytes())
    return requests, responses


def test_transcripts_are_present() -> None:
    assert len(NAMES) >= 70, f"expected the recorded transcripts under {TRANSCRIPTS}"


@pytest.mark.parametrize("name", NAMES)
def test_every_recorded_response_parses(name: str) -> None:
    _, responses = recorded(name)
    for raw in responses:
        parsed = protocol.decode(raw.decode("utf-8"))
        obj = json.loads(raw)
        if "messages" in obj:
            assert not isinstance(parsed, protocol.ReplError)
            assert len(parsed.messages) == len(obj["messages"])
        if "sorries" in obj:
            assert not isinstance(parsed, protocol.ReplError)
            assert [s.goal for s in parsed.sorries] == [s["goal"] for s in obj["sorries"]]
        if isinstance(parsed, protocol.CommandResponse):
            assert parsed.env == obj["env"]
            assert len(parsed.tactics) == len(obj.get("tactics", []))
        elif isinstance(parsed, protocol.TacticResponse):
            assert list(parsed.goals) == obj["goals"]
            assert parsed.proof_status == obj.get("proofStatus")
        else:
            assert parsed.message == obj["message"]


@pytest.mark.parametrize("name", NAMES)
async def test_replaying_a_session_through_the_client(name: str, tmp_path) -> None:
    requests, responses = recorded(name)
    proc = await ReplProcess.spawn(
        [sys.executable, "-S", str(FIXTURES / "replay_repl.py"), str(TRANSCRIPTS), name],
        cwd=tmp_path, env={"PATH": "/usr/bin:/bin"},
    )
    try:
        for request, raw in zip(requests, responses, strict=True):
            got = await proc.request(request, timeout=20)
            assert got == protocol.decode(raw.decode("utf-8"))
    finally:
        await proc.close()
    assert proc.stderr_tail() == ""
