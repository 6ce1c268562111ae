#!/usr/bin/env python3
"""Check that the Lean pins of each Lean environment agree with its versions.env.

Each environment is a Lake workspace: lean_workspace/ itself (`v4_9`, DeepSeek-Prover's Lean,
with the editor package ProverTactic) and lean_workspace/envs/NAME/ for the others. In each,
versions.env is the single place where the Lean toolchain, the Mathlib revision and the
REPL revision are chosen. lean-toolchain and lakefile.lean repeat them (Lean tooling reads
only those files); this script makes sure the copies did not drift. When a
lake-manifest.json exists (it is written by Lake on a machine that ran `make lean`), the
revisions Lake actually locked are checked too.

Exit status: 0 when everything agrees, 1 on any disagreement or missing file, 2 on bad
usage. Standard library only.

    python3 scripts/check_lean_pins.py [--workspace DIR | --env NAME | --all] [--quiet]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

REQUIRED_KEYS = ("LEAN_TOOLCHAIN", "MATHLIB_GIT", "MATHLIB_REV", "REPL_GIT", "REPL_REV")

# lakefile require name -> (versions.env key of the git URL, key of the revision)
REQUIRES = {
    "mathlib": ("MATHLIB_GIT", "MATHLIB_REV"),
    "REPL": ("REPL_GIT", "REPL_REV"),
}

TACTIC_LIB = "ProverTactic"
MAIN_ENV = "v4_9"  # lean_workspace/ itself; the others are lean_workspace/envs/NAME
_SHA = re.compile(r"[0-9a-f]{40}")

_KEY_LINE = re.compile(r"^([A-Z][A-Z0-9_]*)=(.*)$")
_LINE_COMMENT = re.compile(r"--[^\n]*")
_BLOCK_COMMENT = re.compile(r"/-.*?-/", re.DOTALL)


def default_workspace() -> Path:
    return Path(__file__).resolve().parent.parent / "lean_workspace"


def env_workspace(name: str) -> Path:
    """The workspace of environment NAME (what `make lean ENV=NAME` installs)."""
    return default_workspace() if name == MAIN_ENV else default_workspace() / "envs" / name


def all_workspaces() -> list[Path]:
    envs = default_workspace() / "envs"
    others = sorted(p for p in envs.iterdir() if (p / "versions.env").is_file()) \
        if envs.is_dir() else []
    return [default_workspace(), *others]


def parse_versions_env(text: str) -> tuple[dict[str, str], list[str]]:
    """Parse KEY=value lines; return (values, problems)."""
    values: dict[str, str] = {}
    problems: list[str] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _KEY_LINE.match(line)
        if m is None:
            problems.append(f"versions.env line {lineno}: not a KEY=value line: {raw!r}")
            continue
        key, value = m.group(1), m.group(2).strip()
        if value[:1] in ("'", '"') or "$" in value or " " in value:
            problems.append(
                f"versions.env line {lineno}: {key} must be a bare value "
                f"(no quotes, spaces or $): {value!r}"
            )
        if key in values:
            problems.append(f"versions.env line {lineno}: {key} is set twice")
        values[key] = value
    for key in REQUIRED_KEYS:
        if not values.get(key):
            problems.append(f"versions.env: {key} is missing or empty")
    return values, problems


def strip_lean_comments(text: str) -> str:
    # Block comments first (this also removes doc comments), then line comments.
    # Good enough for a lakefile: the URLs and revisions we look for contain no "--".
    return _LINE_COMMENT.sub("", _BLOCK_COMMENT.sub("", text))


def parse_requires(lakefile_text: str) -> dict[str, list[tuple[str, str | None]]]:
    """Map require name -> list of (git url, rev or None) found in the lakefile."""
    code = strip_lean_comments(lakefile_text)
    pattern = re.compile(
        r'\brequire\s+(?:«([^»]+)»|([A-Za-z_][A-Za-z0-9_\-!?\']*))\s+from\s+git\s+'
        r'"([^"]*)"(?:\s*@\s*"([^"]*)")?'
    )
    found: dict[str, list[tuple[str, str | None]]] = {}
    for m in pattern.finditer(code):
        name = m.group(1) or m.group(2)
        found.setdefault(name, []).append((m.group(3), m.group(4)))
    return found


def has_lean_lib(lakefile_text: str, name: str) -> bool:
    code = strip_lean_comments(lakefile_text)
    return re.search(rf"\blean_lib\s+(?:«{name}»|{name})(?![A-Za-z0-9_])", code) is not None


def _norm_url(url: str) -> str:
    url = url.strip().rstrip("/")
    return url[:-4] if url.endswith(".git") else url


def check(workspace: Path) -> list[str]:
    """Return a list of human-readable problems (empty when all pins agree). The editor
    package is required in lean_workspace/ (it is written for its Lean only) and nowhere
    else."""
    main_workspace = workspace.resolve() == default_workspace().resolve()
    problems: list[str] = []
    env_path = workspace / "versions.env"
    toolchain_path = workspace / "lean-toolchain"
    lakefile_path = workspace / "lakefile.lean"

    if not env_path.is_file():
        return [f"{env_path} not found (it holds the Lean pins)"]
    pins, env_problems = parse_versions_env(env_path.read_text(encoding="utf-8"))
    problems += env_problems

    # lean-toolchain
    if not toolchain_path.is_file():
        problems.append(f"{toolchain_path} not found")
    else:
        toolchain = toolchain_path.read_text(encoding="utf-8").strip()
        want = pins.get("LEAN_TOOLCHAIN", "")
        if want and toolchain != want:
            problems.append(
                f"lean-toolchain says {toolchain!r} but versions.env LEAN_TOOLCHAIN={want}"
            )

    # lakefile.lean
    if not lakefile_path.is_file():
        problems.append(f"{lakefile_path} not found")
    else:
        lakefile = lakefile_path.read_text(encoding="utf-8")
        requires = parse_requires(lakefile)
        for name, (url_key, rev_key) in REQUIRES.items():
            entries = requires.get(name, [])
            if not entries:
                problems.append(
                    f'lakefile.lean has no `require {name} from git "..." @ "..."` line'
                )
                continue
            if len(entries) > 1:
                problems.append(f"lakefile.lean requires {name} {len(entries)} times")
            url, rev = entries[0]
            want_url, want_rev = pins.get(url_key, ""), pins.get(rev_key, "")
            if want_url and _norm_url(url) != _norm_url(want_url):
                problems.append(
                    f"lakefile.lean requires {name} from {url!r} but versions.env "
                    f"{url_key}={want_url}"
                )
            if rev is None:
                problems.append(f"lakefile.lean requires {name} without a revision (@ \"...\")")
            elif want_rev and rev != want_rev:
                problems.append(
                    f"lakefile.lean pins {name} at {rev!r} but versions.env {rev_key}={want_rev}"
                )
        if main_workspace:
            if not has_lean_lib(lakefile, TACTIC_LIB):
                problems.append(f"lakefile.lean declares no `lean_lib {TACTIC_LIB}`")
            if not (workspace / f"{TACTIC_LIB}.lean").is_file():
                problems.append(f"{workspace / (TACTIC_LIB + '.lean')} not found")
        elif has_lean_lib(lakefile, TACTIC_LIB):
            problems.append(f"lakefile.lean declares `lean_lib {TACTIC_LIB}`, which is written "
                            "for v4.9.0-rc1 only (see docs/editor.md)")

    # lake-manifest.json (only present after Lake resolved the dependencies)
    manifest_path = workspace / "lake-manifest.json"
    if manifest_path.is_file():
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            packages = {p.get("name"): p for p in manifest.get("packages", [])}
        except (ValueError, AttributeError) as exc:
            problems.append(f"lake-manifest.json is not valid: {exc}")
        else:
            for name, (_, rev_key) in REQUIRES.items():
                want_rev = pins.get(rev_key, "")
                entry = packages.get(name)
                if entry is None:
                    problems.append(f"lake-manifest.json has no package {name!r}")
                elif want_rev and not _SHA.fullmatch(want_rev):  # a tag: Lake locks its commit
                    if entry.get("inputRev") != want_rev:
                        problems.append(
                            f"lake-manifest.json resolved {name} from "
                            f"{entry.get('inputRev')!r} but versions.env {rev_key}={want_rev}")
                elif want_rev and entry.get("rev") != want_rev:
                    problems.append(
                        f"lake-manifest.json locks {name} at {entry.get('rev')!r} but "
                        f"versions.env {rev_key}={want_rev} (run `lake update` in "
                        f"lean_workspace, or delete lake-manifest.json)"
                    )
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--workspace",
        type=Path,
        help="Lake workspace to check (default: lean_workspace/ next to scripts/)",
    )
    which.add_argument("--env", help=f"environment to check ({MAIN_ENV}: lean_workspace/; "
                       "others: lean_workspace/envs/NAME)")
    which.add_argument("--all", action="store_true", help="check every environment")
    parser.add_argument("--quiet", action="store_true", help="print nothing on success")
    args = parser.parse_args(argv)

    if args.all:
        workspaces = all_workspaces()
    elif args.env:
        workspaces = [env_workspace(args.env)]
        if not workspaces[0].is_dir():
            known = ", ".join([MAIN_ENV, *(p.name for p in all_workspaces()[1:])])
            print(f"no Lean environment {args.env!r} (known: {known})", file=sys.stderr)
            return 2
    else:
        workspaces = [args.workspace or default_workspace()]
    status = 0
    for workspace in workspaces:
        problems = check(workspace)
        if problems:
            print(f"Lean pins disagree with {workspace / 'versions.env'}:", file=sys.stderr)
            for problem in problems:
                print(f"  - {problem}", file=sys.stderr)
            status = 1
            continue
        if not args.quiet:
            pins, _ = parse_versions_env((workspace / "versions.env").read_text("utf-8"))
            print(
                f"Lean pins OK ({workspace}): "
                f"{pins['LEAN_TOOLCHAIN']}, mathlib {pins['MATHLIB_REV'][:12]}, "
                f"REPL {pins['REPL_REV'][:12]}"
            )
    return status


if __name__ == "__main__":
    sys.exit(main())
