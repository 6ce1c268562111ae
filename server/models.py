"""The JSON the HTTP API reads and writes (interface.md's field names, exactly).

Requests are strict: unknown fields are refused (a misspelt `budjet` must not silently become the
default budget) and types are not coerced (`"budget": "5"` or `5.0` is a mistake worth a 422, not
a guess). Responses allow fields beyond the documented ones, so the job store and the verifier can
extend their objects without the API dropping the additions.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from prover.verify_items import Text  # text a UTF-8 pipe can carry; the batch items' too
from search.types import TacticPrompt

VERDICTS = ("proved", "incomplete", "failed", "rejected", "timeout", "system_error")
Verdict = Literal["proved", "incomplete", "failed", "rejected", "timeout", "system_error"]
JobStatusName = Literal["queued", "running", "succeeded", "failed", "cancelled"]
HealthStatus = Literal["ok", "degraded", "draining"]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _Response(BaseModel):
    model_config = ConfigDict(extra="allow")


# ------------------------------------------------------------------------------ verify


class VerifyRequest(_Request):
    code: Text = Field(min_length=1, description="a complete Lean file, header included")
    statement: Text | None = Field(
        None, description="the theorem that must be proved, as in a dataset's "
        "`formal_statement` (the trailing `:= by` is optional); without it every named theorem "
        "of the file is checked")
    timeout: float | None = Field(
        None, gt=0, description="seconds for the check; at most, and by default, "
        "PROVER_LEAN_TIMEOUT")
    lean_env: Text | None = Field(
        None, description="the Lean environment to check in (a name of PROVER_LEAN_ENVS, or "
        "`default`); the default environment when absent. Unknown names are 422, listing the "
        "known ones")
    cache: bool = Field(True, description="false: check again even when the results cache "
                        "holds a verdict for this file and statement")
    context: Text | None = Field(
        None, description="text the file begins with, in which `statement` is read, so the "
        "statement may mention its definitions (a PutnamBench header with the submitted answer, "
        "a file's text before its theorem); a file that does not begin with it is rejected")

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "code": "import Mathlib\ntheorem t (a : Nat) : a + 0 = a := by\n  simp\n",
        "statement": "theorem t (a : Nat) : a + 0 = a := by",
    }]})


class MessageOut(_Response):
    severity: str
    line: int | None
    column: int | None
    end_line: int | None
    end_column: int | None
    text: str


class SorryOut(_Response):
    line: int | None
    column: int | None
    end_line: int | None
    end_column: int | None
    goal: str | None = None


class VerifyResponse(_Response):
    """The verify object of interface.md (the same as `prover verify --json`)."""

    verdict: Verdict
    messages: list[MessageOut]
    sorries: list[SorryOut]
    axioms: list[str]
    rejection: str | None
    error: str | None
    time_s: float
    cached: bool = Field(description="the verdict came from the results cache, not a new Lean run")


# ------------------------------------------------------------------------------ prove / jobs


class ProveRequest(_Request):
    formal_statement: Text = Field(
        min_length=1, description="the theorem to prove, e.g. `theorem t (a : Nat) : a = a := by`")
    header: Text | None = Field(
        None, description="Lean header (imports, opens); the prover's default (`import Mathlib` "
        "and DeepSeek-Prover's opens) when absent")
    informal_prefix: Text | None = Field(
        None, description="natural-language statement or hint placed before the theorem, as a "
        "comment, in the prompt")
    search: Literal["sampling", "rmaxts", "repair", "bfs"] | None = Field(
        None, description="search algorithm; default: the workers' prover profile's (`rmaxts` "
        "for deepseek-v1.5, `repair` for goedel-v2 and kimina-prover, `sampling` for "
        "deepseek-v2); `bfs`: best-first tactic search, the budget then counts expansions")
    budget: int | None = Field(
        None, ge=1, description="samples (model generations) to spend; 1..PROVER_MAX_BUDGET, "
        "default 128 (or PROVER_MAX_BUDGET if smaller)")
    concurrency: int | None = Field(None, ge=1, le=1024, description="samples in flight at once; "
                                    "the worker's default when absent")
    seed: int | None = Field(None, ge=0, le=2**63 - 1, description="sampling seed")
    lean_env: Text | None = Field(
        None, description="the Lean environment to check in (a name of PROVER_LEAN_ENVS, or "
        "`default`); the default environment when absent. Unknown names are 422, listing the "
        "known ones")
    samples: int | None = Field(None, ge=1, le=4096, description="repair: first-round "
                                "samples (default 8)")
    corrections: int | None = Field(None, ge=0, le=64, description="repair: corrections "
                                    "asked per failed attempt per round (default 2)")
    rounds: int | None = Field(None, ge=0, le=64, description="repair: correction rounds "
                               "(default 2)")
    tactics: int | None = Field(None, ge=1, le=1024, description="bfs: tactics sampled per "
                                "expansion (default 8), as `prover prove --tactics`")
    tactic_prompt: TacticPrompt | None = Field(
        None, description="bfs: the tactic prompt format, BFS-Prover's `{state}:::` "
        "(`bfs-prover`, default) or ReProver's state alone (`reprover`), as `prover prove "
        "--tactic-prompt`")

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "formal_statement": "theorem t (a : Nat) : a + 0 = a := by",
        "search": "rmaxts", "budget": 256,
    }]})


class JobCreated(_Response):
    job_id: str


class JobProgress(_Response):
    samples: int = Field(description="samples spent so far")
    budget: int | None = Field(description="the job's budget")
    tree_size: int = Field(description="RMaxTS tree nodes (0 for sampling)")


class ProveResult(_Response):
    """The prove object of interface.md (the same as `prover prove --json`)."""

    proved: bool
    proof: str | None = Field(description="the whole checked Lean file, when proved")
    verdict: str
    samples: int
    tree_size: int
    time_s: float


class JobView(_Response):
    job_id: str
    status: JobStatusName
    progress: JobProgress | None = None
    result: ProveResult | None = None
    error: str | None = Field(None, description="why the job failed, when it did")


# ------------------------------------------------------------------------------ health


class LeanEnvironmentView(_Response):
    name: str
    lean_version: str | None = Field(description="e.g. `4.9.0-rc1`")
    mathlib_version: str | None = Field(description="Mathlib's commit")
    workers: int
    default: bool = Field(description="used when a request names no `lean_env`")


class Health(_Response):
    status: HealthStatus = Field(
        description="`ok`; `degraded` (HTTP 503) when Redis is unreachable, so jobs cannot be "
        "taken; `draining` (HTTP 503) while the process shuts down")
    lean_workers: int = Field(description="Lean REPL workers of this process's verify pools "
                              "(all environments)")
    model_backend: str = Field(description="PROVER_MODEL_BACKEND (the workers' model)")
    model_profile: str = Field("deepseek-v1.5", description="PROVER_MODEL_PROFILE (how the "
                               "workers' model is prompted) and its default search")
    default_search: str = Field("rmaxts", description="the search a prove job without "
                                "`search` runs")
    redis: bool = Field(description="whether Redis answered a ping")
    environments: list[LeanEnvironmentView] = Field(
        default_factory=list, description="the Lean environments of this process's verify "
        "pools (PROVER_LEAN_ENVS), each with its Lean and Mathlib")


