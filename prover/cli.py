"""The `prover` command line (interface.md). Exit codes: 0 success, 1 other verdict, 2 usage."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path

from prover.config import ConfigError, Settings
from prover.lean import CheckRequest, CheckResult, LeanPool, LeanSetupError, StatementError
from prover.lean.process import ReplStartError

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
    code = _read_text(args.file, "the Lean file")
    statement = args.statement
    if args.statement_file:
        statement = _read_text(args.statement_file, "the statement file")
    request = CheckRequest(code=code, statement=statement, timeout=args.timeout)
    async with LeanPool(settings, workers=1) as pool:
        result = await pool.check(request)
    if args.json:
        print(json.dumps(result.to_json(), ensure_ascii=False))
    else:
        _print_human(result, "<stdin>" if args.file == "-" else args.file)
    return EXIT_OK if result.proved else EXIT_NOT_PROVED


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

    verify = sub.add_parser("verify", help="check one complete Lean file")
    verify.add_argument("file", help="the Lean file, or - for standard input")
    group = verify.add_mutually_exclusive_group()
    group.add_argument("--statement", help="the theorem that must be proved (formal_statement)")
    group.add_argument("--statement-file", help="read the statement from this file")
    verify.add_argument("--timeout", type=_positive_float, help="seconds for the check")
    verify.add_argument("--json", action="store_true", help="print one JSON object")
    verify.set_defaults(run=_verify)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = Settings.load()
        return int(asyncio.run(args.run(args, settings)))
    except (ConfigError, LeanSetupError, ReplStartError, StatementError, UsageError) as exc:
        print(f"prover: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("prover: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
