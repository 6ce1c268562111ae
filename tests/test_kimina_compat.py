"""Kimina Lean Server's API on our server, driven by the real `kimina-client` 0.2.1 (installed
from PyPI into a Python 3.12 venv of its own) and judged by Kimina's own validity helpers: what we
do not call proved must never read as valid there. Lean is the fake REPL."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from server.app import create_app
from server.kimina import command_response
from tests.fixtures.peer_venv import PeerSetupError, ensure_venv
from tests.server_support import (
    BAD,
    GOOD,
    HEADER,
    SORRY,
    STATEMENT,
    asgi_client,
    error_of,
    live_server,
    settings,
)

DRIVER = Path(__file__).resolve().parent / "fixtures" / "kimina_driver.py"
AXIOM = f"{HEADER}axiom cheat : False\n{STATEMENT}\n  exact cheat.elim\n"
NATIVE = f"{HEADER}{STATEMENT}\n  native_decide\n"
SLOW = f"{HEADER}{STATEMENT}\n  rfl -- fake:sleep=5\n"
WEAKER = "theorem t1 (a : Nat) : a + 0 = a := by"


@pytest.fixture(scope="module")
def kimina_python() -> Path:
    try:
        return ensure_venv("kimina-client", ["kimina-client==0.2.1", "pygments"])
    except PeerSetupError as exc:  # no PyPI, no Python 3.12: say so loudly, never pass quietly
        pytest.fail(f"cannot install kimina-client for this test: {exc}")


async def test_the_real_kimina_client_works_and_reads_our_refusals_as_not_valid(
        kimina_python: Path, tmp_path: Path) -> None:
    s = settings(lean_workers=2, api_keys="secret-key", api_rate_limit=10_000, lean_timeout=30)
    app = create_app(s)
    burst = [GOOD if i % 3 else BAD for i in range(60)]
    plan: dict[str, Any] = {
        "api_key": "secret-key",
        "snippets": [["good", GOOD], ["bad", BAD], ["sorry", SORRY], ["axiom", AXIOM],
                     ["native", NATIVE]],
        "slow": [["slow", SLOW]],
        "extension": [{"id": "asked", "code": GOOD, "statement": STATEMENT},
                      {"id": "other", "code": GOOD, "statement": WEAKER}],
        "legacy": [{"custom_id": "good", "proof": GOOD}, {"custom_id": "bad", "code": BAD},
                   {"custom_id": "sorry", "proof": SORRY}, {"custom_id": "axiom", "proof": AXIOM},
                   {"custom_id": "other", "proof": GOOD, "statement": WEAKER}],
        "burst": burst,
    }
    async with live_server(app, s) as url:
        plan["url"] = url
        (tmp_path / "plan.json").write_text(json.dumps(plan))
        driver = await asyncio.create_subprocess_exec(
            str(kimina_python), str(DRIVER), str(tmp_path / "plan.json"),
            str(tmp_path / "out.json"), stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT)
        log, _ = await driver.communicate()
    assert driver.returncode == 0, log.decode()[-3000:]
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["health"] == {"status": "ok"}
    expected = {"good": "valid", "bad": "lean_error", "sorry": "sorry", "axiom": "lean_error",
                "native": "lean_error"}
    assert out["sync"] == expected and out["async"] == expected
    assert out["sync_timeout"] == {"slow": "timeout_error"}
    assert out["extension"] == {"asked": "valid", "other": "lean_error"}
    assert out["legacy"] == {"good": True, "bad": False, "sorry": False, "axiom": False,
                             "other": False}
    want = {"valid" if c == GOOD else "lean_error" for c in burst}
    assert set(out["async_burst"].values()) == want and len(out["async_burst"]) == len(burst)
    assert [out["async_burst"][f"b{i}"] for i in range(len(burst))] == [
        "valid" if c == GOOD else "lean_error" for c in burst]
    assert [out["sync_burst"][f"s{i}"] for i in range(len(burst))] == [
        "valid" if c == GOOD else "lean_error" for c in burst]
    assert app.state.service.admission.refused == 0


async def test_kimina_routes_take_our_keys_in_either_header_and_their_bad_input_is_422() -> None:
    app = create_app(settings(api_keys="k1", max_batch=2))
    body = {"snippets": [{"id": "a", "code": GOOD}]}
    async with asgi_client(app) as client:
        assert (await client.post("/api/check", json=body)).status_code == 401
        assert (await client.get("/health")).status_code == 401
        wrong = await client.post("/api/check", json=body, headers={"X-Auth-Token": "k2"})
        assert wrong.status_code == 401 and error_of(wrong)["code"] == "unauthorized"
        for headers in ({"Authorization": "Bearer k1"}, {"X-Auth-Token": "k1"},
                        {"X-Auth-Token": "Bearer k1"}):
            r = await client.post("/api/check", json=body, headers=headers)
            assert r.status_code == 200, r.text
            assert r.json()["results"][0]["id"] == "a"
            assert "error" not in r.json()["results"][0]
        ok = {"X-Auth-Token": "k1"}
        empty = await client.post("/api/check", json={"snippets": []}, headers=ok)
        twice = await client.post("/api/check", headers=ok, json={"snippets": [
            {"id": "a", "code": GOOD}, {"id": "a", "code": BAD}]})
        many = await client.post("/verify", headers=ok, json={"codes": [
            {"custom_id": i, "proof": GOOD} for i in range(3)]})
        missing = await client.post("/api/check", headers=ok, json={"snippets": [{"id": "x"}]})
    assert empty.status_code == 422 and twice.status_code == 422 and many.status_code == 413
    result = missing.json()["results"][0]  # one malformed snippet: its own error
    assert result["id"] == "x" and "code" in result["error"] and "response" not in result


def test_what_we_judge_not_proved_never_reads_as_valid_in_kimina_terms() -> None:
    def verdict(name: str, **kw: Any) -> dict[str, Any]:
        base: dict[str, Any] = {"verdict": name, "messages": [], "sorries": [], "axioms": [],
                                "rejection": None, "error": None, "time_s": 0.1}
        return base | kw

    def is_valid(response: dict[str, Any]) -> bool:  # Kimina's is_valid, restated
        return not any(m["severity"] == "error" for m in response["messages"]) and not (
            response.get("sorries"))

    assert is_valid(command_response(verdict("proved")))
    hidden_sorry = command_response(verdict("incomplete", axioms=["sorryAx"]))
    assert hidden_sorry["sorries"] and any(
        "declaration uses 'sorry'" in m["data"] for m in hidden_sorry["messages"])
    for judged in (verdict("rejected", rejection="depends on non-standard axioms: cheat"),
                   verdict("rejected", rejection="`native_decide` is not allowed"),
                   verdict("failed", error="the header does not elaborate")):
        response = command_response(judged)
        assert not is_valid(response)
        assert any(m["severity"] == "error" for m in response["messages"])

