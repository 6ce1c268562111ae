"""`--search bfs`: best-first tactic search (search/bfs.py) on the fake REPL's stairs world,
where `⊢ stairs N` needs N `step` tactics, `skip` leaves the goals as they are (a state to
merge), `fake_unsolved` closes the goal in tactic mode only (the whole-file check finds it
unsolved), and anything else does not parse. The scripted step prover gets `step` right only
sometimes."""

from __future__ import annotations

import json
import math
import random

import pytest

from prover.lean import LeanPool
from prover.model.scripted import ScriptedGenerator
from prover.problem_input import problem_from_statement
from search import SearchConfig, SearchProgress, SearchSetupError, search_proof
from search.bfs import BestFirstSearch
from tests.conftest import fake_settings

DEPTH = 4
STATEMENT = f"theorem climb (n : Nat) : stairs {DEPTH}"
WRONG = ("skip", "fake_unsolved", "simp", "omega", "linarith")


def step_prover(p: float) -> ScriptedGenerator:
    """Writes `step` with probability p, else one of WRONG; log-probabilities to match."""
    prompts: list[str] = []

    def script(prompt: str, seed: int) -> tuple[str, float]:
        prompts.append(prompt)
        rng = random.Random(seed)
        if rng.random() < p:
            return "step", math.log(p)
        return rng.choice(WRONG), math.log((1 - p) / len(WRONG))

    gen = ScriptedGenerator(script)
    gen.seen = prompts  # type: ignore[attr-defined]
    return gen


async def test_bfs_proves_what_the_model_gets_right_only_sometimes() -> None:
    problem = problem_from_statement(STATEMENT, header="import Mathlib\n")
    proved, merged, refused = 0, 0, 0
    async with LeanPool(fake_settings(None, lean_sandbox="none", lean_workers=1)) as pool:
        for seed in range(20):
            config = SearchConfig(algorithm="bfs", budget=12, seed=seed,
                                  tactics_per_expansion=12)
            gen = step_prover(0.3)
            events: list[SearchProgress] = []
            search = BestFirstSearch(problem, gen, pool, config, events.append)
            result = await search.run()
            merged += search.merged
            refused += search.refused
            assert result.samples <= 12 and result.samples == search.expansions
            assert events[0].tree_delta is not None and events[0].tree_delta["reset"]
            assert all(prompt.endswith(":::") for prompt in gen.seen)  # BFS-Prover's format
            if result.proved:
                proved += 1
                assert result.proof is not None
                assert result.proof.endswith(":= by\n" + "\n".join(["  step"] * DEPTH))
                assert result.check is not None and result.check.verdict.value == "proved"
                last = events[-1].tree_delta
                assert last is not None and last["proof_path"][0] == 0
                assert len(last["proof_path"]) == DEPTH + 1
    # Each state needs one `step` among 12 samples (p = 0.98), four times over: ~94% of runs.
    assert proved >= 16, proved
    assert merged > 0  # `skip` reached states already seen
    assert refused > 0  # `fake_unsolved` closed goals in tactic mode; the file check refused


async def test_bfs_ranks_by_cumulative_logprob_and_uses_the_prompt_format() -> None:
    """A likelier first tactic is expanded first; ReProver's format is the state alone."""
    problem = problem_from_statement(STATEMENT, header="import Mathlib\n")
    prompts: list[str] = []

    def script(prompt: str, seed: int) -> tuple[str, float]:
        prompts.append(prompt)
        return ("step", -0.1) if seed % 2 == 0 else ("skip", -5.0)

    async with LeanPool(fake_settings(None, lean_sandbox="none", lean_workers=1)) as pool:
        config = SearchConfig(algorithm="bfs", budget=DEPTH, tactics_per_expansion=2,
                              prompt_format="reprover")
        result = await search_proof(problem, ScriptedGenerator(script), pool, config)
    assert result.proved and result.samples == DEPTH  # never wasted an expansion
    assert prompts[0] == f"⊢ stairs {DEPTH}"


async def test_bfs_without_logprobs_says_which_backends_give_them() -> None:
    problem = problem_from_statement(STATEMENT, header="import Mathlib\n")
    async with LeanPool(fake_settings(None, lean_sandbox="none", lean_workers=1)) as pool:
        config = SearchConfig(algorithm="bfs", budget=2)
        with pytest.raises(SearchSetupError, match=r"log-probabilities.*vllm or openai"):
            await search_proof(problem, ScriptedGenerator(lambda p, s: "step"), pool, config)


async def test_bfs_runs_in_the_service_with_its_live_tree(redis_url: str) -> None:
    """`POST /v1/prove` with `"search": "bfs"`: a worker runs it, the job streams tree deltas
    like RMaxTS's, and a late viewer's `/tree` snapshot holds the proof path."""
    from server.app import create_app
    from tests.server_support import live_client, settings, sse_events, worker

    def script(prompt: str, seed: int) -> tuple[str, float]:
        return ("step", -0.2) if seed % 3 == 0 else ("ring_nf", -1.5)

    s = settings(redis_url, worker_jobs=1, lean_workers=1)
    app = create_app(s)
    async with live_client(app, s) as client, worker(s, ScriptedGenerator(script)):
        r = await client.post("/v1/prove", json={
            "formal_statement": "theorem climb (n : Nat) : stairs 2", "header": "import Mathlib\n",
            "search": "bfs", "budget": 6})
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]
        types, deltas = [], []
        async with client.stream("GET", f"/v1/jobs/{job_id}/events") as stream:
            async for event_id, data in sse_events(stream):
                if event_id is not None:
                    types.append(data["type"])
                    deltas += data.get("deltas", []) if data["type"] == "tree" else []
        assert types[-1] == "result" and "progress" in types
        assert deltas[0]["reset"] and deltas[-1]["proof_path"] == [0, 1, 2]
        view = (await client.get(f"/v1/jobs/{job_id}")).json()
        assert view["result"]["proved"] and view["result"]["proof"].endswith("  step\n  step")
        live = (await client.get(f"/v1/jobs/{job_id}/tree")).json()
        assert live["tree"]["proof_path"] == [0, 1, 2]
        assert [n["state"] for n in live["tree"]["new_nodes"]][:2] == [
            "⊢ stairs 2", "⊢ stairs 1"]


async def test_a_bfs_job_samples_the_requests_tactics_in_its_prompt_format(
        redis_url: str) -> None:
    """`POST /v1/prove {"search": "bfs", "tactics": 3, "tactic_prompt": "reprover"}`: each
    expansion asks for 3 tactics, prompted with the state alone (no BFS-Prover `:::`)."""
    from server.app import create_app
    from tests.server_support import live_client, settings, sse_events, worker

    seeds: list[int] = []

    def script(prompt: str, seed: int) -> tuple[str, float]:
        seeds.append(seed)
        return "step", -0.1

    gen = ScriptedGenerator(script)
    s = settings(redis_url, worker_jobs=1, lean_workers=1)
    app = create_app(s)
    async with live_client(app, s) as client, worker(s, gen):
        r = await client.post("/v1/prove", json={
            "formal_statement": "theorem climb (n : Nat) : stairs 2", "header": "import Mathlib\n",
            "search": "bfs", "budget": 4, "tactics": 3, "tactic_prompt": "reprover"})
        assert r.status_code == 202, r.text
        async with client.stream("GET", f"/v1/jobs/{r.json()['job_id']}/events") as stream:
            async for _ in sse_events(stream):
                pass
    assert gen.prompts and len(seeds) == 3 * len(gen.prompts)
    assert gen.prompts[0] == "⊢ stairs 2"


def test_prove_search_bfs_from_the_command_line_with_an_openai_server() -> None:
    """The OpenAI-compatible backend asks for and sums token log-probabilities."""
    from tests.openai_stub import openai_stub
    from tests.test_cli import prover
    from tests.test_cli_prove import env

    with openai_stub(lambda prompt: "step" if prompt.endswith(":::") else "sorry") as stub:
        done = prover("prove", "--statement", "theorem climb (n : Nat) : stairs 2",
                      "--header", "import Mathlib", "--search", "bfs", "--budget", "5",
                      "--tactics", "2", "--json", **env(stub))
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["proved"] and out["samples"] == 2 and out["tree_size"] == 3
    assert out["proof"].endswith("stairs 2 := by\n  step\n  step")
    assert all(p.endswith(":::") for p in stub.prompts)


def test_prove_search_bfs_from_the_command_line_when_the_model_is_right_only_sometimes() -> None:
    """The issue's check, as a user runs it: each of the K tactics of an expansion is `step`
    only with probability 0.4, the others are wrong (failing, merged or refused by the
    whole-file check), and `prover prove --search bfs` still finds the proof."""
    from tests.openai_stub import openai_stub
    from tests.test_cli import prover
    from tests.test_cli_prove import env

    rng = random.Random(3)
    replies: list[list[str]] = []

    def tactics(prompt: str) -> list[str]:
        replies.append([rng.choice(("step", "step", *WRONG[:3])) for _ in range(6)])
        return replies[-1]

    with openai_stub(tactics) as stub:
        done = prover("prove", "--statement", STATEMENT, "--header", "import Mathlib",
                      "--search", "bfs", "--budget", "20", "--tactics", "6", "--json",
                      **env(stub))
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["proved"] and out["verdict"] == "proved", out
    assert out["proof"].endswith(":= by\n" + "\n".join(["  step"] * DEPTH))
    wrong = {t for reply in replies for t in reply} - {"step"}
    assert wrong >= {"fake_unsolved", "simp"}  # the model was wrong too, and not only once


async def test_a_tactic_past_its_timeout_is_a_failed_edge_and_the_search_goes_on() -> None:
    """The hanging tactic is the likeliest at every state; each time it runs out its timeout
    the REPL is restarted, and the search reopens its session and replays the path it needs."""
    problem = problem_from_statement("theorem climb (n : Nat) : stairs 2",
                                     header="import Mathlib\n")

    def script(prompt: str, seed: int) -> tuple[str, float]:
        return ("step -- fake:hang", -0.01) if seed % 2 == 0 else ("step", -1.0)

    async with LeanPool(fake_settings(None, lean_sandbox="none", lean_workers=1)) as pool:
        config = SearchConfig(algorithm="bfs", budget=4, tactics_per_expansion=2)
        search = BestFirstSearch(problem, ScriptedGenerator(script), pool, config,
                                 tactic_timeout=0.5)
        result = await search.run()
    assert result.proved and result.samples == 2
    assert search.generation == 3  # opened, then reopened after each of the two timeouts
    assert result.proof is not None and "fake:hang" not in result.proof
