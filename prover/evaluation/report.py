"""Numbers and pictures of an evaluation: summary.json, summary.md, pass_rate.png, compare.

The pass rate counts a problem as proved when any of its runs proved it, over all problems of
the plan (unparsable ones included), as the paper does. The curve charges runs in order: a
problem first proved in run r after n samples cost r x budget + n samples, which is the x axis
of the paper's pass-rate-versus-samples figures.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prover import leandojo
from prover.answers import answer_slot
from prover.dataset_catalog import source_of
from prover.dataset_fetch import sha256_of
from prover.datasets import dataset_path
from prover.evaluation.plan import EvalSpec, Item
from prover.evaluation.store import RESULTS, SUMMARY

PLOT, TABLE = "pass_rate.png", "summary.md"


def first_proof_costs(rows: Sequence[dict[str, Any]], budget: int) -> dict[str, int]:
    """Samples spent on each proved problem up to its first proof, runs taken in order."""
    best: dict[str, int] = {}
    for r in rows:
        if r.get("proved"):
            cost = int(r["run"]) * budget + int(r["samples"])
            best[r["key"]] = min(cost, best.get(r["key"], cost))
    return best


def dataset_revision(dataset: str) -> dict[str, Any]:
    """Which file the problems came from: its SHA-256 and, for a named benchmark, its source
    repository and commit, license and target Lean, and whether the file is the pinned one."""
    if dataset.startswith(leandojo.PREFIX):  # a LeanDojo Benchmark file, not a dataset name
        local = Path(dataset.removeprefix(leandojo.PREFIX)).expanduser()
        return {"file": str(local), "sha256": sha256_of(local)}
    path = dataset_path(dataset)
    actual = sha256_of(path)
    source = source_of(dataset) or source_of(path.name)
    if source is None:
        return {"file": str(path), "sha256": actual}
    return {**source.revision(), "file": str(path), "sha256": actual,
            "pinned": actual == source.sha256}


def summarize(spec: EvalSpec, items: Sequence[Item], rows: Sequence[dict[str, Any]],
              lean_env: dict[str, Any] | None = None) -> dict[str, Any]:
    """`lean_env`: the environment the proofs were checked in (name, Lean, Mathlib)."""
    keys = list(dict.fromkeys(i.key for i in items))
    proved = {r["key"] for r in rows if r.get("proved")}
    done = {(r["key"], int(r["run"])) for r in rows}
    invalid = {i.key: i.invalid for i in items if i.invalid}
    per_run = []
    for run in range(spec.runs):
        run_rows = [r for r in rows if int(r["run"]) == run]
        per_run.append({"run": run, "mode": spec.mode_of_run(run), "finished": len(run_rows),
                        "proved": sum(1 for r in run_rows if r.get("proved"))})
    revision = dataset_revision(spec.dataset)
    env = lean_env or {"name": spec.lean_env}
    notes = []
    target = revision.get("lean_env")
    if target and env.get("name") and target != env["name"]:
        notes.append(f"the dataset targets Lean {revision['lean']} (environment {target}); "
                     f"the proofs were checked in {env['name']} (Lean "
                     f"{env.get('lean_version') or 'unknown'}): statements and proofs may "
                     "elaborate differently")
    answer_keys = {i.key for i in items if answer_slot(i.problem.header) is not None}
    return {
        "dataset": spec.dataset,
        "dataset_revision": revision,
        "lean_env": env,
        "notes": notes,
        "answer_problems": len(answer_keys),
        "split": spec.split,
        "problems": len(keys),
        "proved": len(proved & set(keys)),
        "pass_rate": round(len(proved & set(keys)) / len(keys), 6) if keys else 0.0,
        "profile": spec.profile,
        "search": spec.search,
        "budget": spec.budget,
        "runs": spec.runs,
        "mode": spec.mode,
        "samples": sum(int(r.get("samples", 0)) for r in rows),
        "time_s": round(sum(float(r.get("time_s", 0.0)) for r in rows), 3),
        "finished": len(done),
        "unfinished": sum(1 for i in items if (i.key, i.run) not in done),
        "per_run": per_run,
        "invalid": [{"name": k, "reason": v} for k, v in invalid.items()],
        "proved_problems": sorted(proved & set(keys)),
    }


def markdown(summary: dict[str, Any]) -> str:
    lines = [
        f"# {summary['dataset']} ({summary['split'] or 'all splits'}): "
        f"{summary['proved']}/{summary['problems']} proved, "
        f"pass rate {summary['pass_rate']:.1%}",
        "",
        "| dataset | split | profile | search | budget | runs | mode | problems | proved "
        "| pass rate |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        f"| {summary['dataset']} | {summary['split']} | {summary.get('profile', '')} | "
        f"{summary['search']} | "
        f"{summary['budget']} | {summary['runs']} | {summary['mode']} | {summary['problems']} | "
        f"{summary['proved']} | {summary['pass_rate']:.2%} |",
        "",
        "| run | mode | finished | proved |",
        "| --- | --- | --- | --- |",
    ]
    lines += [f"| {r['run']} | {r['mode']} | {r['finished']} | {r['proved']} |"
              for r in summary["per_run"]]
    env, rev = summary.get("lean_env") or {}, summary.get("dataset_revision") or {}
    lines += ["", f"Lean environment: {env.get('name')} (Lean {env.get('lean_version')}, "
              f"Mathlib {env.get('mathlib_version')})."]
    where = (f"{rev['repository']} at {rev['commit'][:12]}, {rev.get('license')}, targets Lean "
             f"{rev.get('lean')}" if rev.get("repository") else rev.get("file"))
    pinned = {True: "the pinned file", False: "NOT the pinned file", None: ""}[rev.get("pinned")]
    lines.append(f"Dataset: {where}; SHA-256 {str(rev.get('sha256'))[:16]}… {pinned}".rstrip())
    if summary.get("answer_problems"):
        lines.append(f"{summary['answer_problems']} problems ask for an answer "
                     "(`abbrev …_solution := sorry`): see README, \"How each benchmark is "
                     "scored\".")
    lines += [f"Note: {n}" for n in summary.get("notes", [])]
    if summary["unfinished"]:
        lines += ["", f"{summary['unfinished']} (problem, run) pairs are not finished yet."]
    if summary["invalid"]:
        lines += ["", "Problems that could not be attempted:", ""]
        lines += [f"- `{p['name']}`: {p['reason']}" for p in summary["invalid"]]
    return "\n".join(lines) + "\n"


def plot(path: Path, summary: dict[str, Any], rows: Sequence[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    budget, runs, problems = summary["budget"], summary["runs"], max(summary["problems"], 1)
    costs = sorted(first_proof_costs(rows, budget).values())
    xs, ys = [1], [0.0]
    for i, cost in enumerate(costs, start=1):
        xs += [cost, cost]
        ys += [ys[-1], i / problems]
    xs.append(max(budget * runs, xs[-1]))
    ys.append(ys[-1])
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ax.plot(xs, [100 * y for y in ys], drawstyle="default", linewidth=2)
    ax.set_xscale("log")
    ax.set_xlabel("samples per problem")
    ax.set_ylabel("pass rate (%)")
    ax.set_title(f"{summary['dataset']} {summary['split'] or ''}: {summary['search']}, "
                 f"{runs} x {budget}")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def write_reports(out: Path, spec: EvalSpec, items: Sequence[Item],
                  rows: Sequence[dict[str, Any]], lean_env: dict[str, Any] | None = None
                  ) -> dict[str, Any]:
    summary = summarize(spec, items, rows, lean_env)
    (out / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    (out / TABLE).write_text(markdown(summary), encoding="utf-8")
    plot(out / PLOT, summary, rows)
    return summary


def compare(first: Path, second: Path) -> str:
    """Which problems each evaluation proved and the other did not."""
    def proved(out: Path) -> tuple[set[str], dict[str, Any]]:
        rows = [json.loads(line) for line in (out / RESULTS).read_text().splitlines()
                if line.strip()]
        summary_path = out / SUMMARY
        summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
        return {r["key"] for r in rows if r.get("proved")}, summary

    a, sa = proved(first)
    b, sb = proved(second)
    lines = []
    for out, s, mine in ((first, sa, a), (second, sb, b)):
        rate = f", pass rate {s['pass_rate']:.2%}" if "pass_rate" in s else ""
        # Summaries written before profiles existed were all DeepSeek-Prover-V1.5 runs.
        how = (f" [{s.get('profile', 'deepseek-v1.5')}, {s['search']} x {s['budget']}]"
               if "search" in s else "")
        lines.append(f"{out}{how}: {len(mine)} proved{rate}")
    lines.append(f"both: {len(a & b)}")
    for out, only in ((first, sorted(a - b)), (second, sorted(b - a))):
        lines.append(f"only {out} ({len(only)}):")
        lines += [f"  {k}" for k in only]
    return "\n".join(lines)
