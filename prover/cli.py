"""The `prover` command line (interface.md). Exit codes: 0 success, 1 other verdict, 2 usage."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import sys
from pathlib import Path

from apps.mcp_server.command import add_parser as add_mcp_parser
from apps.mcp_server.command import add_serve_options as add_mcp_serve_options
from prover.config import MODEL_BACKENDS, PROMPT_MODES, ConfigError, Settings
from prover.datasets import DatasetError, Problem, find_problem
from prover.evaluation.store import EvalDirError
from prover.lean import CheckRequest, CheckResult, LeanPool, LeanSetupError, StatementError
from prover.lean.environments import UnknownEnvironment, environment, select
from prover.lean.process import ReplStartError
from prover.model import BackendUnavailable, GenerationError, SamplingParams
from prover.problem_input import problem_from_lean_file, problem_from_statement
from prover.profiles import PROFILE_NAMES, Profile, ProfileError, get_profile
from prover.verify_batch import BatchFileError
from search import ALGORITHMS, CheckpointError, SearchSetupError
from search.types import TACTIC_PROMPTS

EXIT_OK, EXIT_NOT_PROVED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    pass


def _read_text(path: str, what: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {what} {path}: {exc}") from exc


def _print_human(result: CheckResult, source_name: str) -> None:
    for m in result.messages:
        print(f"{source_name}:{m.pos.line}:{m.pos.column}: {m.severity}: {m.data}")
    line = f"{result.verdict.value} ({result.time_s:.2f} s)"
    if result.rejection:
        line += f": {result.rejection}"
    if result.error:
        line += f": {result.error}"
    print(line)


async def _verify(args: argparse.Namespace, settings: Settings) -> int:
    if args.batch:
        return await _verify_batch(args, settings)
    if args.file is None or args.out:
        raise UsageError("give a Lean FILE, or --batch FILE.jsonl (with --out)")
    code = _read_text(args.file, "the Lean file")
    statement = args.statement
    if args.statement_file:
        statement = _read_text(args.statement_file, "the statement file")
    lean_env = args.lean_env
    result: CheckResult | None = None
    if args.dataset is not None or args.problem is not None:
        from prover.answers import AnswerError, answer_check
        from prover.evaluation.plan import target_environment
        from prover.lean import Verdict

        if args.dataset is None or args.problem is None or statement is not None:
            raise UsageError("--dataset and --problem go together, instead of --statement")
        problem = find_problem(args.dataset, args.problem)
        lean_env = target_environment(args.dataset, args.lean_env, settings)
        try:
            request = answer_check(problem, code, timeout=args.timeout)
        except AnswerError as exc:
            result = CheckResult(Verdict.REJECTED, rejection=str(exc))
    else:
        request = CheckRequest(code=code, statement=statement, timeout=args.timeout)
    if result is None:
        env = environment(select(settings, lean_env))
        async with LeanPool(env.settings, workers=1) as pool:
            result = await pool.check(request)
    if args.json:
        print(json.dumps(result.to_json(), ensure_ascii=False))
    else:
        _print_human(result, "<stdin>" if args.file == "-" else args.file)
    return EXIT_OK if result.proved else EXIT_NOT_PROVED


async def _verify_batch(args: argparse.Namespace, settings: Settings) -> int:
    """`prover verify --batch`: the work is in prover/verify_batch.py."""
    from prover.verify_batch import verify_batch

    if (args.file or args.statement or args.statement_file or args.timeout or args.json
            or args.dataset or args.problem):
        raise UsageError("--batch takes no FILE, --statement, --timeout, --json, --dataset or "
                         "--problem: each JSONL item carries its own fields")
    env = environment(select(settings, args.lean_env))  # UnknownEnvironment: exit 2
    counts = await verify_batch(args.batch, args.out, env.settings)
    print("prover verify: " + ", ".join(f"{n} {v}" for v, n in sorted(counts.items())),
          file=sys.stderr)
    return EXIT_OK if set(counts) <= {"proved"} else EXIT_NOT_PROVED


def _problem_of(args: argparse.Namespace) -> Problem:
    sources = [bool(args.file), args.statement is not None, args.dataset is not None]
    if sum(sources) != 1:
        raise UsageError("give exactly one of FILE, --statement or --dataset with --problem")
    if args.dataset is not None:
        if not args.problem:
            raise UsageError("--dataset needs --problem NAME")
        problem = find_problem(args.dataset, args.problem)
        if args.header is not None:
            problem = dataclasses.replace(problem, header=args.header)
        return problem
    if args.problem:
        raise UsageError("--problem goes with --dataset")
    if args.statement is not None:
        return problem_from_statement(args.statement, header=args.header)
    return problem_from_lean_file(_read_text(args.file, "the Lean file"), header=args.header)


async def _prove(args: argparse.Namespace, settings: Settings) -> int:
    from prover.evaluation.plan import target_environment
    from search import SearchConfig, SearchProgress, search_with_answer
    from search.progress import ProgressBar

    problem = _problem_of(args)
    lean_env = args.lean_env
    if args.dataset is not None:  # the environment the dataset targets, when there is one
        lean_env = target_environment(args.dataset, args.lean_env, settings)
    settings = select(_model_overrides(args, settings), lean_env)
    profile = get_profile(settings.model_profile)
    config = SearchConfig(
        algorithm=args.search or profile.default_search,  # type: ignore[arg-type]
        budget=args.budget, concurrency=args.concurrency, seed=args.seed,
        tactic_state_comment=not args.no_tactic_state,
        checkpoint=Path(args.checkpoint) if args.checkpoint else None,
        ordered=args.deterministic, samples=args.samples, corrections=args.corrections,
        rounds=args.rounds, tactics_per_expansion=args.tactics, prompt_format=args.tactic_prompt,
    )
    params = _sampling(args, profile)
    from prover.runtime import Runtime

    bar = ProgressBar(config, problem.name, enabled=not args.quiet)
    async with Runtime(settings) as runtime:
        def progress(p: SearchProgress) -> None:
            bar.update(p)

        try:
            result = await search_with_answer(
                problem, runtime.generator, runtime.pool, config, params=params,
                mode=args.prompt or settings.model_prompt,  # type: ignore[arg-type]
                check_timeout=args.timeout, progress=progress, profile=profile,
            )
        finally:
            bar.close()
    if args.json:
        print(json.dumps(result.to_json(), ensure_ascii=False))
    else:
        status = "proved" if result.proved else f"not proved (last verdict: {result.verdict})"
        if result.round:
            status += f" in correction round {result.round}"
        print(f"{problem.name}: {status} after {result.samples} samples, tree of "
              f"{result.tree_size} nodes, {result.time_s:.1f} s", file=sys.stderr)
        if result.proof:
            print(result.proof)
    return EXIT_OK if result.proved else EXIT_NOT_PROVED


async def _eval(args: argparse.Namespace, settings: Settings) -> int:
    from prover.evaluation import EvalSpec, evaluate, local_solver, plan
    from prover.evaluation.plan import target_environment
    from prover.evaluation.store import ResultStore
    from prover.runtime import Runtime

    settings = _model_overrides(args, settings)
    lean_env = target_environment(args.dataset, args.lean_env, settings)
    settings = select(settings, lean_env)
    profile = get_profile(settings.model_profile)
    spec = EvalSpec(
        dataset=args.dataset, split=None if args.split == "all" else args.split,
        limit=args.limit,
        problems=tuple(p.strip() for p in args.problems.split(",") if p.strip())
        if args.problems else (),
        search=args.search or profile.default_search, budget=args.budget, runs=args.runs,
        mode=args.mode, seed=args.seed, concurrency=args.concurrency, profile=profile.name,
        samples=args.samples, corrections=args.corrections, rounds=args.rounds,
        lean_env=lean_env,
    )
    out = Path(args.out)
    env = environment(settings, lean_env)
    env_view = {"name": env.name, "lean_version": env.lean_version,
                "mathlib_version": env.mathlib_version}
    params = _sampling(args, profile)
    # Dataset and output-directory mistakes surface before a model loads for minutes.
    plan(spec)
    ResultStore(out, spec).open().close()
    if spec.dataset.startswith("leandojo:"):
        _report_leandojo_skips(spec.dataset, out)
    if args.queue:
        from prover.evaluation.distributed import queue_solver

        settings = settings.with_overrides(redis_url=args.queue)
        async with queue_solver(spec, settings, params) as solve:
            summary = await evaluate(spec, out, solve, parallel=args.parallel or 256,
                                     progress=not args.quiet, lean_env=env_view)
    else:
        async with Runtime(settings) as runtime:
            solve = local_solver(spec, out, runtime.generator, runtime.pool, params,
                                 check_timeout=args.timeout)
            summary = await evaluate(spec, out, solve, parallel=args.parallel or 4,
                                     progress=not args.quiet, lean_env=env_view)
    print(f"{summary['dataset']} {summary['split'] or ''}: {summary['proved']}/"
          f"{summary['problems']} proved, pass rate {summary['pass_rate']:.2%} "
          f"({summary['unfinished']} unfinished); reports in {out}", file=sys.stderr)
    print(json.dumps({k: summary[k] for k in ("dataset", "split", "problems", "proved",
                                               "pass_rate", "profile", "search", "budget",
                                               "runs", "lean_env")}))
    return EXIT_OK


def _report_leandojo_skips(dataset: str, out: Path) -> None:
    """Every LeanDojo theorem that cannot be proved here, with why, on stderr and in
    DIR/skipped.jsonl (they are not in the plan, so not in the pass rate)."""
    from prover.leandojo import load_benchmark

    _, skipped = load_benchmark(dataset)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "skipped.jsonl").open("w", encoding="utf-8") as f:
        for s in skipped:
            f.write(json.dumps({"full_name": s.theorem.full_name, "url": s.theorem.url,
                                "file_path": s.theorem.file_path, "reason": s.reason}) + "\n")
            print(f"skipped {s.theorem.full_name}: {s.reason}", file=sys.stderr)
    if skipped:
        print(f"{len(skipped)} LeanDojo theorem(s) skipped; listed in {out / 'skipped.jsonl'}",
              file=sys.stderr)


def _eval_compare(argv: list[str]) -> int:
    from prover.evaluation import compare

    parser = argparse.ArgumentParser(prog="prover eval compare",
                                     description="problems each evaluation proved and the "
                                     "other did not")
    parser.add_argument("first")
    parser.add_argument("second")
    args = parser.parse_args(argv)
    for d in (args.first, args.second):
        if not (Path(d) / "results.jsonl").is_file():
            print(f"prover: {d} has no results.jsonl (not an evaluation output directory)",
                  file=sys.stderr)
            return EXIT_USAGE
    print(compare(Path(args.first), Path(args.second)))
    return EXIT_OK


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from apps.mcp_server.command import serve_addons
    from server.app import serve

    overrides: dict[str, object] = {}
    if args.host:
        overrides["server_host"] = args.host
    if args.port:
        overrides["server_port"] = args.port
    settings = settings.with_overrides(**overrides)
    serve(settings, addons=serve_addons(args, settings))  # /mcp (apps/mcp_server)
    return EXIT_OK


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from apps.mcp_server.command import register_worker_kinds
    from server.worker import run_worker

    register_worker_kinds()  # `fill` jobs of /mcp's fill_sorries

    if args.queue:
        settings = settings.with_overrides(redis_url=args.queue)
    if args.jobs:
        settings = settings.with_overrides(worker_jobs=args.jobs)
    asyncio.run(run_worker(settings, name=args.name))
    return EXIT_OK


async def _fill(args: argparse.Namespace, settings: Settings) -> int:
    """`prover fill FILE.lean [--dry-run]`: the work is in prover/fill.py."""
    from prover.fill import Filler, FillError, FillOptions, mode_of, read_lean, write_back
    from prover.runtime import Runtime
    from search import SearchConfig

    settings = select(_model_overrides(args, settings), args.lean_env)
    path = Path(args.file)
    options = FillOptions(
        search=SearchConfig(algorithm=args.search, budget=args.budget,
                            concurrency=args.concurrency, seed=args.seed),
        params=SamplingParams(max_tokens=args.max_tokens or SamplingParams.max_tokens),
        mode=mode_of(args.prompt, settings),
        check_timeout=args.timeout)

    def note(text: str) -> None:
        if not args.quiet:
            print(f"prover fill: {text}", file=sys.stderr)

    try:
        text = read_lean(path)  # an unreadable file fails before the model loads
        async with Runtime(settings) as runtime:
            report = await Filler(runtime.generator, runtime.pool, options, settings,
                                  progress=note).fill(text)
    except FillError as exc:
        print(f"prover: {path}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.dry_run:
        sys.stdout.write(report.diff(str(path)))
        print(report.summary(str(path)), file=sys.stderr)
    else:
        backup = write_back(path, report)
        print(report.summary(str(path)))
        print(f"backup: {backup}" if backup else "file unchanged")
    return EXIT_OK if report.proved == len(report.outcomes) else EXIT_NOT_PROVED


def _add_model_options(parser: argparse.ArgumentParser, quiet_help: str) -> None:
    """The options every command that samples from the model shares."""
    parser.add_argument("--backend", choices=MODEL_BACKENDS,
                        help="overrides PROVER_MODEL_BACKEND")
    parser.add_argument("--model", help="overrides PROVER_MODEL")
    parser.add_argument("--max-tokens", type=_positive_int,
                        help="tokens per answer (default: the profile's; 2048 for deepseek-v1.5)")
    parser.add_argument("--timeout", type=_positive_float, help="seconds per Lean check")
    parser.add_argument("-q", "--quiet", action="store_true", help=quiet_help)


def _add_lean_env_option(parser: argparse.ArgumentParser, more: str = "") -> None:
    parser.add_argument("--lean-env", metavar="NAME",
                        help="the Lean environment to check in (a name of PROVER_LEAN_ENVS)"
                        + (more or "; default: PROVER_LEAN_DEFAULT_ENV"))


def _add_profile_options(parser: argparse.ArgumentParser) -> None:
    """The prover profile, and the settings of the repair search it may use."""
    parser.add_argument("--profile", choices=PROFILE_NAMES,
                        help="prover profile: prompt, answer and correction format "
                        "(overrides PROVER_MODEL_PROFILE, default deepseek-v1.5)")
    parser.add_argument("--samples", type=_positive_int, default=8,
                        help="repair: first-round samples (default 8)")
    parser.add_argument("--corrections", type=_non_negative_int, default=2,
                        help="repair: corrections asked per failed attempt per round (default 2)")
    parser.add_argument("--rounds", type=_non_negative_int, default=2,
                        help="repair: correction rounds (default 2)")


def _sampling(args: argparse.Namespace, profile: Profile) -> SamplingParams:
    """The command line's sampling settings, the profile's defaults for those not given."""
    def given(name: str, default: float) -> float:
        value = getattr(args, name, None)
        return default if value is None else value

    return SamplingParams(temperature=given("temperature", profile.temperature),
                          top_p=given("top_p", profile.top_p),
                          max_tokens=args.max_tokens or profile.max_tokens)


def _model_overrides(args: argparse.Namespace, settings: Settings) -> Settings:
    if getattr(args, "profile", None):
        settings = settings.with_overrides(model_profile=args.profile)
    if args.backend:
        settings = settings.with_overrides(model_backend=args.backend)
    if args.model:
        settings = settings.with_overrides(model=args.model)
    return settings


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="prover", description="Lean 4 theorem proving: verify, search, evaluate, serve."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    verify = sub.add_parser("verify", help="check one complete Lean file (or a JSONL batch)")
    verify.add_argument("file", nargs="?", help="the Lean file, or - for standard input")
    group = verify.add_mutually_exclusive_group()
    group.add_argument("--statement", help="the theorem that must be proved (formal_statement)")
    group.add_argument("--statement-file", help="read the statement from this file")
    verify.add_argument("--timeout", type=_positive_float, help="seconds for the check")
    verify.add_argument("--json", action="store_true", help="print one JSON object")
    verify.add_argument("--dataset", help="judge FILE as a proof of --problem of this dataset "
                        "(PutnamBench answers included: README, how each benchmark is scored)")
    verify.add_argument("--problem", help="the problem's name in --dataset")
    _add_lean_env_option(verify, "; with --dataset: the environment it targets when this "
                         "service has it, else the default one; with --batch: of every item")
    verify.add_argument("--batch", metavar="FILE.jsonl", help="check every item "
                        "({id, code, statement?, timeout?} per line; - for standard input) on "
                        "a local pool; one JSONL result per item")
    verify.add_argument("--out", metavar="RESULTS.jsonl", help="with --batch: append results "
                        "here instead of standard output; ids already there are skipped (resume)")
    verify.set_defaults(run=_verify)

    prove = sub.add_parser("prove", help="search for a proof of one theorem")
    prove.add_argument("file", nargs="?", help="a Lean file whose last theorem is to be proved")
    prove.add_argument("--statement", help="the theorem to prove (formal_statement)")
    prove.add_argument("--dataset", help="minif2f, proofnet or a .jsonl file (with --problem)")
    prove.add_argument("--problem", help="the problem's name in --dataset")
    prove.add_argument("--header", help="Lean header (imports, opens) to use instead of the "
                       "default / the file's / the dataset's")
    prove.add_argument("--search", choices=ALGORITHMS,
                       help="default: the profile's (rmaxts for deepseek-v1.5, repair for "
                       "goedel-v2 and kimina-prover, sampling for deepseek-v2); bfs: "
                       "best-first tactic search (docs/tactics.md)")
    prove.add_argument("--budget", type=_positive_int, default=128,
                       help="samples, corrections included, or expansions with bfs "
                       "(default 128)")
    prove.add_argument("--tactics", type=_positive_int, default=8,
                       help="bfs: tactics sampled per expansion (default 8)")
    prove.add_argument("--tactic-prompt", choices=TACTIC_PROMPTS,
                       default="bfs-prover", help="bfs: BFS-Prover's `{state}:::` (default) "
                       "or ReProver's state alone")
    prove.add_argument("--concurrency", type=_positive_int, default=32,
                       help="samples in flight (default 32)")
    prove.add_argument("--seed", type=int, default=0)
    prove.add_argument("--json", action="store_true", help="print one JSON object")
    prove.add_argument("--checkpoint", help="RMaxTS: resume from and save the tree to this file")
    prove.add_argument("--deterministic", action="store_true",
                       help="handle samples in start order (reproducible with a fixed seed)")
    prove.add_argument("--no-tactic-state", action="store_true",
                       help="RMaxTS: no /- tactic state -/ comments in resumed prompts")
    prove.add_argument("--prompt", choices=PROMPT_MODES, help="prompt format "
                       "(default: PROVER_MODEL_PROMPT, non-cot)")
    prove.add_argument("--temperature", type=float, help="default: the profile's")
    prove.add_argument("--top-p", type=float, help="default: the profile's")
    _add_model_options(prove, "no progress bar")
    _add_lean_env_option(prove, "; with --dataset: the environment it targets when this "
                         "service has it, else the default one")
    _add_profile_options(prove)
    prove.set_defaults(run=_prove)

    ev = sub.add_parser("eval", help="evaluate on a dataset (and `prover eval compare A B`)")
    ev.add_argument("--dataset", required=True, help="minif2f, proofnet, a .jsonl file, or "
                    "leandojo:PATH (LeanDojo Benchmark 4 JSON; see docs/tactics.md)")
    ev.add_argument("--split", default="test", help="test, valid or all (default test)")
    ev.add_argument("--limit", type=_positive_int, help="first N problems only")
    ev.add_argument("--problems", help="comma-separated problem names")
    ev.add_argument("--search", choices=ALGORITHMS, help="default: the profile's")
    ev.add_argument("--budget", type=_positive_int, default=128,
                    help="samples per problem per run (default 128)")
    ev.add_argument("--runs", type=_positive_int, default=1, help="independent runs (default 1)")
    ev.add_argument("--mode", choices=("non-cot", "cot", "mix"), default="non-cot",
                    help="prompt format; mix alternates runs between the two")
    ev.add_argument("--concurrency", type=_positive_int, default=32,
                    help="samples in flight per problem (default 32)")
    ev.add_argument("--parallel", type=_positive_int,
                    help="problems searched at once (default 4; 256 jobs with --queue)")
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--queue", help="redis:// URL: run the problems on `prover worker`s")
    ev.add_argument("--out", required=True, help="output directory (rerun it to resume)")
    _add_model_options(ev, "no progress bar")
    _add_lean_env_option(ev, "; default: the environment the dataset targets when this service "
                         "has it, else the default one")
    _add_profile_options(ev)
    ev.set_defaults(run=_eval)

    fill = sub.add_parser("fill", help="replace every sorry of a Lean file that can be proved")
    fill.add_argument("file", help="the Lean file (rewritten in place, original kept as .bak)")
    fill.add_argument("--dry-run", action="store_true",
                      help="print a unified diff instead of writing the file")
    fill.add_argument("--search", choices=("sampling", "rmaxts"), default="rmaxts",
                      help="search for a sorry that is a whole proof (default rmaxts)")
    fill.add_argument("--budget", type=_positive_int, default=32,
                      help="samples per sorry (default 32)")
    fill.add_argument("--concurrency", type=_positive_int, default=8,
                      help="samples in flight (default 8)")
    fill.add_argument("--seed", type=int, default=0)
    fill.add_argument("--prompt", choices=PROMPT_MODES, help="prompt format "
                      "(default: PROVER_MODEL_PROMPT, non-cot)")
    _add_model_options(fill, "no progress lines")
    _add_lean_env_option(fill)
    fill.set_defaults(run=_fill)

    serve = sub.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", help="address to listen on (default PROVER_SERVER_HOST)")
    serve.add_argument("--port", type=int, help="port (default PROVER_SERVER_PORT, 8000)")
    add_mcp_serve_options(serve)
    serve.set_defaults(run=_serve, sync=True)

    worker = sub.add_parser("worker", help="run a search worker that takes jobs from Redis")
    worker.add_argument("--queue", help="Redis URL (default PROVER_REDIS_URL)")
    worker.add_argument("--jobs", type=_positive_int,
                        help="search jobs run at once (default PROVER_WORKER_JOBS)")
    worker.add_argument("--name", help="consumer name (default: host name and process id)")
    worker.set_defaults(run=_worker, sync=True)

    add_mcp_parser(sub)  # `prover mcp` (apps/mcp_server/command.py)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:2] == ["eval", "compare"]:
        return _eval_compare(argv[2:])
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = Settings.load()
        if getattr(args, "sync", False):  # runs its own event loop (uvicorn, worker)
            return int(args.run(args, settings))
        return int(asyncio.run(args.run(args, settings)))
    except (ConfigError, LeanSetupError, ReplStartError, StatementError, UsageError,
            DatasetError, BackendUnavailable, GenerationError, CheckpointError,
            SearchSetupError, EvalDirError, UnknownEnvironment, ProfileError,
            BatchFileError) as exc:
        print(f"prover: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("prover: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
