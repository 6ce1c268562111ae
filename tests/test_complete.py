"""`POST /v1/complete` (the editor tactics' endpoint) and the completion search behind it.

The request the Lean tactic sends is pinned in one file shared with the Lean tests,
lean_workspace/ProverTacticTest/fixtures/complete_request.json: here it must validate and be
answered; there (tests/test_editor_lean.py, real Lean) the tactic must send exactly it.
Generation is scripted and Lean is the fake REPL (any proof without `fail` and `sorry` checks).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from prover.config import Settings
from prover.lean import LeanPool
from prover.model.base import Completion, Generator, SamplingParams
from prover.model.scripted import ScriptedGenerator
from prover.runtime import Runtime
from search.complete import (
    CompletionRequest,
    build_completion_prompt,
    checkable,
    complete,
    cut_block,
    cut_step,
    locate,
    proof_started,
)
from server.app import create_app
from server.complete import CompleteRequest
from server.jobs import JobStatus, JobStore
from server.worker import run_worker
from tests.conftest import REPO
from tests.server_support import asgi_client, settings

FIXTURE = REPO / "lean_workspace/ProverTacticTest/fixtures/complete_request.json"


def fixture() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(FIXTURE.read_text(encoding="utf-8"))
    return data


def by_theorem(prompt: str) -> str:
    """Scripted model: a proof that fails for theorems named `hard*`, `simp` otherwise, a
    sorry for `lazy*`; for steps (the prompt ends inside a line), a tactic and a second one."""
    code = prompt.rsplit("```lean4\n", 1)[-1]
    if not code.endswith("\n"):  # a step: continue the tactic line (and write one more)
        return ("mp" if code.endswith("si") else "simp") + "\n  rfl\n```"
    if "theorem hard" in code:
        return "  linarith [fail]\n```"
    if "theorem lazy" in code:
        return "  sorry\n```"
    return "  simp\n```"


class Slow(Generator):
    name = "slow"

    async def _generate(self, prompts: Sequence[str], n: int,
                        params: SamplingParams) -> list[list[Completion]]:
        await asyncio.sleep(30)
        return [[Completion("  simp", 1)] * n for _ in prompts]


# ---------------------------------------------------------------------- text handling


def test_locate_keeps_the_tactic_column_or_opens_a_block() -> None:
    site = locate("theorem t : P := by\n    ")
    assert site.body_prefix == "theorem t : P := by\n" and site.indent == 4
    inline = locate("theorem t : P := by ")
    assert inline.body_prefix == "theorem t : P := by\n" and inline.indent == 2
    nested = locate("theorem t : P := by\n  have h : Q := by ")
    assert nested.body_prefix.endswith("have h : Q := by\n") and nested.indent == 4


def test_cutting_completions() -> None:
    # a proof block ends where the model dedents (text meant for an enclosing block)
    assert cut_block("    simp\n      at h\n    rfl\n  exact h\n```") == "simp\n  at h\nrfl"
    assert cut_block("  simp\n\n  rfl\n```\nmore") == "simp\n\nrfl"
    # a step is the prefix, its line, and deeper-indented continuation lines
    assert cut_step("nlinarith [", "sq_nonneg x]\n  simp\n```", 2) == "nlinarith [sq_nonneg x]"
    assert cut_step("have h : a = a := by", "\n    rfl\n  simp", 2) == "have h : a = a := by\n  rfl"


def test_prompt_is_deepseeks_layout_with_the_state_once_the_proof_began() -> None:
    root = CompletionRequest(header="import Mathlib\n", declaration="theorem t (a : Nat) : "
                             "a = a := by\n  ", goals=("a : ℕ\n⊢ a = a",))
    prompt = build_completion_prompt(root, locate(root.declaration))
    assert prompt == ("Complete the following Lean 4 code:\n\n```lean4\nimport Mathlib\n"
                      "theorem t (a : Nat) : a = a := by\n")
    later = CompletionRequest(header="import Mathlib", declaration="theorem t (a : Nat) : "
                              "a = a := by\n  intro x\n  ", goals=("a : ℕ\n⊢ a = a",),
                              kind="step", tactic_prefix="exact")
    prompt = build_completion_prompt(later, locate(later.declaration))
    assert prompt.endswith("  intro x\n  /- tactic state:\n    a : ℕ\n    ⊢ a = a\n  -/\n"
                           "  exact")
    assert not proof_started("theorem t : P := by\n") and proof_started("theorem t : P := by\n"
                                                                         "  intro x\n")
    # the editor's own import is not needed (nor usually installed) where the service runs
    pinned = fixture()
    request = CompletionRequest(header=pinned["header"], declaration=pinned["declaration"],
                                goals=tuple(pinned["goals"]))
    assert "ProverTactic" not in build_completion_prompt(request, locate(request.declaration))


def test_an_example_is_checked_under_a_name() -> None:
    body, statement = checkable("example (a : Nat) : a = a := by\n")
    assert body.startswith("theorem _prover_complete_example (a : Nat)")
    assert statement == "theorem _prover_complete_example (a : Nat) : a = a"
    assert checkable("def f : Nat := by\n")[1] is None


# ---------------------------------------------------------------------- the search


async def test_complete_checks_deduplicates_and_ranks(tmp_path: Path) -> None:
    s = settings(lean_workers=1)
    answers = iter(["  linarith [fail]\n```", "  simp\n```", "  simp\n```", "  sorry\n```",
                    "    simp\n  rfl\n```"])
    gen = ScriptedGenerator(lambda prompt, seed: next(answers))
    request = CompletionRequest(header="import Mathlib\n", declaration="theorem t1 (a : Nat) : "
                                "a = a := by\n  ", goals=("⊢ a = a",), num_samples=5)
    async with LeanPool(s) as pool:
        result = await complete(request, gen, pool)
    texts = [c.text for c in result.candidates]
    assert result.samples == 5 and not result.timed_out
    assert texts[0] == "simp" and result.candidates[0].samples == 3  # "    simp" cut the same
    assert result.candidates[0].verified and result.candidates[0].verdict == "proved"
    assert "sorry" not in texts  # never offered
    failed = next(c for c in result.candidates if c.text == "linarith [fail]")
    assert not failed.verified and failed.verdict == "failed" and "linarith" in (failed.error or "")


async def test_complete_step_reports_progress_and_goals_after() -> None:
    s = settings(lean_workers=1)
    gen = ScriptedGenerator(lambda prompt, seed: by_theorem(prompt))
    request = CompletionRequest(header="import Mathlib\n", declaration="theorem t1 (a : Nat) : "
                                "a = a := by\n  intro x\n  ", goals=("⊢ a = a",), kind="step",
                                tactic_prefix="", num_samples=2)
    async with LeanPool(s) as pool:
        result = await complete(request, gen, pool)
    [only] = result.candidates
    assert only.text == "simp" and only.samples == 2 and only.verified
    assert only.verdict == "incomplete" and "intro x; simp" in (only.goals_after or "")
    assert gen.prompts[0].endswith("  -/\n  ")


async def test_complete_without_verification_and_with_a_slow_model() -> None:
    s = settings(lean_workers=1)
    async with LeanPool(s) as pool:
        gen = ScriptedGenerator(lambda prompt, seed: "  simp\n```")
        request = CompletionRequest(header="", declaration="theorem t1 : True := by\n  ",
                                    goals=(), num_samples=2, verify=False)
        result = await complete(request, gen, pool)
        assert [(c.text, c.verified, c.verdict) for c in result.candidates] == [
            ("simp", False, None)]
        slow = CompletionRequest(header="", declaration="theorem t1 : True := by\n  ",
                                 goals=(), timeout=0.3)
        result = await complete(slow, Slow(), pool)
        assert result.timed_out and result.candidates == () and result.samples == 0


# ---------------------------------------------------------------------- the HTTP API


def test_the_shared_fixture_is_a_valid_request() -> None:
    body = CompleteRequest.model_validate_json(FIXTURE.read_bytes())
    assert body.kind == "proof" and body.goals == ["n : Nat\n⊢ n + 0 = n"]
    assert body.num_samples == 4 and body.timeout == 20 and body.lean_version == "4.9.0-rc1"
    # what the fixture pins must survive a round trip through the job request
    assert json.loads(json.dumps(body.model_dump())) == {**fixture(), "seed": None,
                                                          "lean_env": None}


@contextlib.asynccontextmanager
async def service_and_worker(redis_url: str, generator: Generator | None = None,
                             worker: bool = True, **values: object,
                             ) -> AsyncIterator[tuple[httpx.AsyncClient, Settings]]:
    s = settings(redis_url, lean_workers=1, worker_jobs=2, job_claim_idle_s=5, **values)
    app = create_app(s)
    async with contextlib.AsyncExitStack() as stack:
        client = await stack.enter_async_context(asgi_client(app))
        if worker:
            gen = generator or ScriptedGenerator(lambda prompt, seed: by_theorem(prompt))
            runtime = await stack.enter_async_context(
                Runtime(s, generator=gen, pool=LeanPool(s)))
            stop = asyncio.Event()
            task = asyncio.create_task(run_worker(s, "w-complete", runtime=runtime, stop=stop))

            async def stop_worker() -> None:
                stop.set()
                await asyncio.wait_for(task, 30)

            stack.push_async_callback(stop_worker)
        yield client, s


async def test_complete_endpoint_runs_on_a_worker(redis_url: str) -> None:
    async with service_and_worker(redis_url) as (client, s):
        response = await client.post("/v1/complete", json=fixture())
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["candidates"] == [{"text": "simp", "verified": True, "verdict": "proved",
                                       "samples": 4, "error": None, "goals_after": None}]
        assert body["samples"] == 4 and body["timed_out"] is False and body["notes"] == []
        assert body["server"] == {"lean_env": "v4_9", "lean_version": "4.9.0-rc1",
                                  "mathlib_version": "d1d1e4b72c6e009edd97cabe1d661b021fe8eeae"}
        store = JobStore.from_settings(s)
        try:
            job = await store.get(body["job_id"])
        finally:
            await store.close()
        assert job is not None and job.kind == "complete" and job.status is JobStatus.SUCCEEDED

        # another Lean, and a step request with a prefix the candidates extend
        step = {**fixture(), "kind": "step", "tactic_prefix": "si", "lean_version": "4.12.0",
                "declaration": "theorem fixture_goal (n : Nat) : n + 0 = n := by\n  intro x\n  "}
        response = await client.post("/v1/complete", json=step)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["notes"] == ["your Lean is 4.12.0, the service checks with 4.9.0-rc1"]
        assert [c["text"] for c in body["candidates"]] == ["simp"]


async def test_complete_a_hard_goal_answers_unverified_candidates(redis_url: str) -> None:
    async with service_and_worker(redis_url) as (client, _):
        request = {**fixture(), "declaration": "theorem hard (n : Nat) : n + 0 = n := by\n  ",
                   "num_samples": 2}
        body = (await client.post("/v1/complete", json=request)).json()
        [c] = body["candidates"]
        assert c["text"] == "linarith [fail]" and c["verified"] is False
        assert c["verdict"] == "failed" and c["samples"] == 2


async def test_complete_without_a_worker_times_out_and_cancels(redis_url: str) -> None:
    async with service_and_worker(redis_url, worker=False) as (client, s):
        response = await client.post("/v1/complete", json={**fixture(), "timeout": 0.5})
        assert response.status_code == 504
        error = response.json()["error"]
        assert error["code"] == "timeout" and "prover worker" in error["message"]
        job_id = error["message"].split("(job ")[1].split(";")[0]
        store = JobStore.from_settings(s)
        try:
            job = await store.get(job_id)
        finally:
            await store.close()
        assert job is not None and job.status is JobStatus.CANCELLED


@pytest.mark.parametrize("change,where", [
    ({"num_samples": 0}, "num_samples"),
    ({"num_samples": 65}, "num_samples"),
    ({"kind": "lemma"}, "kind"),
    ({"budget": 3}, "budget"),
    ({"declaration": ""}, "declaration"),
    ({"timeout": "20"}, "timeout"),
])
async def test_complete_refuses_bad_requests(redis_url: str, change: dict[str, Any],
                                             where: str) -> None:
    async with service_and_worker(redis_url, worker=False) as (client, _):
        response = await client.post("/v1/complete", json={**fixture(), **change})
        assert response.status_code == 422, response.text
        assert response.json()["error"]["details"][0]["loc"] == [where]


async def test_complete_needs_the_key_and_is_documented(redis_url: str) -> None:
    async with service_and_worker(redis_url, worker=False, api_keys="k1") as (client, _):
        response = await client.post("/v1/complete", json=fixture())
        assert response.status_code == 401
        schema = (await client.get("/openapi.json")).json()
        operation = schema["paths"]["/v1/complete"]["post"]
        assert {"200", "422", "504"} <= set(operation["responses"])
        fields = schema["components"]["schemas"]["CompleteRequest"]["properties"]
        assert set(fixture()) <= set(fields)
