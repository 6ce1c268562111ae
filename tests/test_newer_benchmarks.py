"""The newer benchmarks (PutnamBench, the maintained miniF2F port, ProofNet#, ProofNet-Verified):
loaded by name and pinned by SHA-256, PutnamBench's answers judged safely, and an evaluation on
a PutnamBench slice that runs in the environment the dataset targets and says so in its report.
Fake REPLs and a stub model server; the files are those of ../shared/data/benchmarks."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator, Sequence
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from prover.answers import AnswerError, answer_slot, submitted_answer
from prover.cli import main
from prover.dataset_catalog import CATALOG
from prover.dataset_fetch import sha256_of
from prover.datasets import DatasetError, dataset_path, load_problems
from prover.lean.checker import CheckRequest
from prover.lean.verdict import CheckResult, Verdict
from prover.model.base import Completion, Prompt, SamplingParams
from prover.model.scripted import ScriptedGenerator
from prover.profiles import PLAN_INSTRUCTION, get_profile
from prover.prompts import full_code
from tests.conftest import REPO, fake_cmd
from tests.openai_stub import openai_stub
from tests.test_lean_environments import env_table

SHARED = REPO.parent / "shared" / "data" / "benchmarks"
SIZES = {"putnambench": {"test": 672}, "putnambench-solutions": {"test": 672},
         "minif2f-recent": {"valid": 244, "test": 244},
         "proofnet-sharp": {"valid": 185, "test": 186},
         "proofnet-verified": {"valid": 183, "test": 184}}
PROVING = "  nlinarith [sq_nonneg 1]"  # the fake REPL's toy Lean accepts this as a proof


@pytest.mark.parametrize("name", sorted(SIZES))
def test_each_benchmark_loads_by_name_and_is_the_pinned_file(name: str) -> None:
    problems = load_problems(name)
    counts: dict[str, int] = {}
    for p in problems:
        counts[p.split] = counts.get(p.split, 0) + 1
        assert p.formal_statement.startswith("theorem ") and p.goal == ""
    assert counts == SIZES[name]
    assert sha256_of(dataset_path(name)) == CATALOG[name].sha256
    assert CATALOG[name].lean_env.startswith("v4_")


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def no_local_copies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    empty = tmp_path / "no-local-copies"
    empty.mkdir()
    monkeypatch.setenv("PROVER_DATA_DIR", str(empty))
    monkeypatch.setenv("PROVER_DATA_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("PROVER_DATA_URL", raising=False)
    return tmp_path / "cache"


@pytest.fixture
def mirror(tmp_path: Path, no_local_copies: Path,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    served = tmp_path / "served"
    served.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(served)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("PROVER_DATA_URL",
                       f"http://127.0.0.1:{server.server_address[1]}/{{name}}.jsonl")
    yield served
    server.shutdown()


def test_a_newer_benchmark_is_fetched_from_a_mirror_and_checked(mirror: Path,
                                                                 tmp_path: Path) -> None:
    data = (SHARED / "putnambench.jsonl").read_bytes()
    (mirror / "putnambench.jsonl").write_bytes(data.replace(b"theorem", b"lemma", 1))
    with pytest.raises(DatasetError, match="not the pinned putnambench dataset"):
        load_problems("putnambench")
    (mirror / "putnambench.jsonl").write_bytes(data)
    assert len(load_problems("putnambench")) == 672
    assert (tmp_path / "cache" / "putnambench.jsonl").is_file()


def test_without_a_mirror_the_error_names_the_source_and_the_way_out(
        no_local_copies: Path) -> None:
    with pytest.raises(DatasetError) as refused:
        load_problems("proofnet-verified")
    message = str(refused.value)
    assert "marcusm117/ProofNet-Verified" in message and "PROVER_DATA_URL" in message
    assert "--dataset FILE.jsonl" in message


# ------------------------------------------------------------------------------ answers


def test_the_346_answer_problems_and_only_they_have_an_answer_slot() -> None:
    problems = load_problems("putnambench")
    slots = {p.name: answer_slot(p.header) for p in problems}
    answered = {n for n, s in slots.items() if s is not None}
    assert len(answered) == 346
    assert all(s is None or s.name == f"{n}_solution" for n, s in slots.items())
    assert all(answer_slot(p.header) is None for p in load_problems("putnambench-solutions"))


def test_a_submission_may_replace_the_answer_and_nothing_else() -> None:
    problem = next(p for p in load_problems("putnambench") if p.name == "putnam_1962_a2")
    slot = answer_slot(problem.header)
    assert slot is not None
    code = full_code(problem, PROVING)
    answer = "{f : ℝ → ℝ | ∃ a b : ℝ, ∀ x, f x = a * x + b}"
    good = code[:slot.start] + answer + code[slot.end:]
    assert submitted_answer(problem, good) == answer
    with_docstring = (problem.header[:slot.start] + answer + problem.header[slot.end:]
                      + problem.informal_prefix + problem.formal_statement + PROVING)
    assert submitted_answer(problem, with_docstring) == answer
    refused = {
        "kept sorry": code,
        "sorry inside": code[:slot.start] + "(sorry : Set (ℝ → ℝ))" + code[slot.end:],
        "other type": good.replace(": Set (ℝ → ℝ) :=", ": Prop :=", 1),
        "other header": good.replace("open MeasureTheory Set", "open Set", 1),
        "other statement": good.replace("0 ≤ f ∧", "True ∨", 1),
        "new command": code[:slot.start] + answer + "\n\naxiom cheat : False\n"
        + code[slot.end:],
        "empty": code[:slot.start] + "  " + code[slot.end:],
    }
    for why, submission in refused.items():
        with pytest.raises(AnswerError):
            submitted_answer(problem, submission)
            pytest.fail(f"accepted a submission with {why}")


def test_verify_judges_a_putnambench_file_with_its_answer(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PROVER_LEAN_REPL_CMD", fake_cmd())
    monkeypatch.setenv("PROVER_LEAN_SANDBOX", "none")
    problem = next(p for p in load_problems("putnambench") if p.name == "putnam_1962_a2")
    slot = answer_slot(problem.header)
    assert slot is not None
    code = full_code(problem, PROVING)
    cases = {"answered": (code[:slot.start] + "{f | f = 0}" + code[slot.end:], 0, "proved"),
             "no answer": (code, 1, "incomplete"),
             "changed statement": (code[:slot.start] + "{f | f = 0}"
                                   + code[slot.end:].replace("0 ≤ f ∧", "True ∨", 1),
                                   1, "rejected")}
    for name, (text, status, verdict) in cases.items():
        path = tmp_path / f"{name}.lean"
        path.write_text(text)
        assert main(["verify", str(path), "--dataset", "putnambench", "--problem",
                     "putnam_1962_a2", "--json"]) == status, name
        result = json.loads(capsys.readouterr().out)
        assert result["verdict"] == verdict, (name, result)
    assert "the statement exactly as given" in result["rejection"]
    # A plain problem whose statement uses a definition of its header (`dist_to_int`).
    plain = next(p for p in load_problems("putnambench-solutions") if p.name == "putnam_1997_b1")
    path = tmp_path / "plain.lean"
    path.write_text(full_code(plain, PROVING))
    assert main(["verify", str(path), "--dataset", "putnambench-solutions", "--problem",
                 "putnam_1997_b1", "--json"]) == 0, capsys.readouterr().out


# ------------------------------------------------------------------------------ evaluation


def model(prompt: str) -> str:
    """Answers when asked for an answer (the prompt ends at the definition's `:=`), else
    writes a proof the toy Lean accepts."""
    if prompt.rstrip().endswith(":="):
        return "{f | f = 0}\n\ntheorem putnam_1962_a2 : True := by\n  trivial\n```"
    return PROVING + "\n```"


def test_answers_are_cut_from_the_completion_and_must_be_terms() -> None:
    from search.answer import answer_prompt, cut_answer, usable_answers

    problem = next(p for p in load_problems("putnambench") if p.name == "putnam_1962_a2")
    prompt = answer_prompt(problem)
    assert prompt.endswith(problem.informal_prefix +
                           "abbrev putnam_1962_a2_solution : Set (ℝ → ℝ) := ")
    assert cut_answer(" {f | f = 0}\n\ntheorem x : True := trivial") == "{f | f = 0}"
    assert cut_answer(" {f |\n    f = 0}\naxiom cheat : False") == "{f |\n    f = 0}"
    assert usable_answers(problem, [" sorry", " (sorry : Set (ℝ → ℝ))", " {f | f = 0}",
                                    "{f | f = 0}\n```", " ", " {f | f = 1}"]) == [
        "{f | f = 0}", "{f | f = 1}"]


class RecordingGenerator(ScriptedGenerator):
    """A scripted model that also keeps the sampling settings of each call."""

    def __init__(self, script: Any) -> None:
        super().__init__(script)
        self.params: list[SamplingParams] = []

    async def _generate(self, prompts: Sequence[Prompt], n: int,
                        params: SamplingParams) -> list[list[Completion]]:
        self.params.append(params)
        return await super()._generate(prompts, n, params)


class AnswerLean:
    """Proves a file whose answer is `{f | f = 0}` and whose proof is `trivial`."""

    async def check(self, request: CheckRequest) -> CheckResult:
        proved = ":= {f | f = 0}" in request.code and "trivial" in request.code
        return CheckResult(Verdict.PROVED if proved else Verdict.FAILED)


async def test_a_chat_profile_is_asked_for_the_answer_in_its_own_format() -> None:
    """Under goedel-v2 the answer is asked with the profile's chat prompt (the whole file, the
    answer's `sorry` shown) at its sampling settings, read from the reply's Lean code, and the
    proof is then searched as a chat too."""
    from search import SearchConfig, search_with_answer

    problem = next(p for p in load_problems("putnambench") if p.name == "putnam_1962_a2")
    statement = problem.formal_statement.rstrip("\n")

    def chat_model(prompt: Prompt, seed: int) -> str:
        assert not isinstance(prompt, str), "a chat profile asks in chat messages"
        asked = prompt[-1].content
        if ":= sorry" in asked.split("theorem")[0]:  # the answer is still to be found
            header = problem.header.replace(":= sorry", ":= {f | f = 0}")
            return f"Plan: f = 0.\n```lean4\n{header}{statement}\n  sorry\n```"
        return f"```lean4\n{statement}\n  trivial\n```"

    generator = RecordingGenerator(chat_model)
    profile = get_profile("goedel-v2")
    result = await search_with_answer(problem, generator, AnswerLean(),
                                      SearchConfig(algorithm="sampling", budget=10,
                                                   concurrency=1),
                                      params=profile.sampling(), mode="cot", profile=profile)
    assert result.proved and result.proof is not None
    assert submitted_answer(problem, result.proof) == "{f | f = 0}"
    first = generator.prompts[0]
    assert not isinstance(first, str) and PLAN_INSTRUCTION in first[-1].content
    assert generator.params[0].max_tokens == profile.max_tokens  # the plan is not cut off


async def test_a_search_the_profile_cannot_drive_is_refused_before_answers_are_asked() -> None:
    from search import SearchConfig, SearchSetupError, search_with_answer

    problem = next(p for p in load_problems("putnambench") if p.name == "putnam_1962_a2")
    generator = ScriptedGenerator(lambda prompt, seed: "")
    with pytest.raises(SearchSetupError, match="use --search repair or sampling"):
        await search_with_answer(problem, generator, AnswerLean(),
                                 SearchConfig(algorithm="rmaxts"), profile=get_profile("goedel-v2"))
    assert generator.prompts == []


def test_an_eval_on_a_putnambench_slice_runs_in_its_environment_and_says_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    envs, stats = env_table(tmp_path)  # v4_9 (old REPL style) and v4_27 (new)
    monkeypatch.setenv("PROVER_LEAN_ENVS", json.dumps(envs))
    monkeypatch.setenv("PROVER_LEAN_SANDBOX", "none")
    out = tmp_path / "out"
    with openai_stub(model) as stub:
        for key, value in stub.env().items():
            monkeypatch.setenv(key, value)
        assert main(["eval", "--dataset", "putnambench", "--limit", "4", "--search",
                     "sampling", "--budget", "2", "--concurrency", "1", "--out", str(out),
                     "-q"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["lean_env"]["name"] == "v4_27"  # the environment PutnamBench targets
    summary = json.loads((out / "summary.json").read_text())
    assert summary["lean_env"] == {"name": "v4_27", "lean_version": "4.27.0",
                                   "mathlib_version": "mathlib-of-v4_27"}
    revision = summary["dataset_revision"]
    assert revision["repository"] == "trishullab/PutnamBench"
    assert revision["commit"] == "3c9b9268ebd132d482938b8e9d242dd71fc1ebc0"
    assert revision["pinned"] is True and revision["sha256"] == CATALOG["putnambench"].sha256
    # putnam_1962_a1, a3, a4 are plain theorems; a2 asks for an answer: the model gave one,
    # and the proof that was found carries it in place of the `sorry`
    assert summary["problems"] == 4 and summary["answer_problems"] == 1
    assert summary["proved_problems"] == ["putnam_1962_a1", "putnam_1962_a2", "putnam_1962_a3",
                                          "putnam_1962_a4"]
    rows = {r["name"]: r for r in map(json.loads, (out / "results.jsonl").read_text().split(
        "\n")[:-1])}
    answered = rows["putnam_1962_a2"]["proof"]
    assert "abbrev putnam_1962_a2_solution : Set (ℝ → ℝ) := {f | f = 0}" in answered
    problem = next(p for p in load_problems("putnambench") if p.name == "putnam_1962_a2")
    assert submitted_answer(problem, answered) == "{f | f = 0}"
    table = (out / "summary.md").read_text()
    assert "Lean environment: v4_27 (Lean 4.27.0" in table
    assert "trishullab/PutnamBench at 3c9b9268ebd1" in table
    assert json.loads((out / "config.json").read_text())["lean_env"] == "v4_27"
    imports = {name: sum(line.startswith("import ") for line in path.read_text().splitlines())
               for name, path in stats.items() if path.exists()}
    assert imports.get("v4_27", 0) >= 1 and imports.get("v4_9", 0) == 0


# ------------------------------------------------------------------------------ goals


async def test_goals_are_computed_by_the_checking_lean_once() -> None:
    from prover.lean import LeanPool
    from prover.lean.goals import GoalError, statement_goal
    from tests.conftest import fake_settings

    class Counting:
        def __init__(self, pool: LeanPool) -> None:
            self.pool = pool
            self.calls = 0

        async def check(self, request: CheckRequest) -> CheckResult:
            self.calls += 1
            return await self.pool.check(request)

    problems = load_problems("minif2f-recent", split="test")[:2]
    async with LeanPool(fake_settings(lean_sandbox="none")) as pool:
        verifier = Counting(pool)
        goals = [await statement_goal(verifier, p) for p in problems + problems]
        assert verifier.calls == 2  # the repeats came from the cache
        assert all(g and "⊢" in g for g in goals) and goals[:2] == goals[2:]
        broken = dataclasses.replace(problems[0], name="broken",
                                     formal_statement="theorem broken (n : Nat) : n = n\n")
        with pytest.raises(GoalError, match="broken does not elaborate"):
            await statement_goal(verifier, broken)
