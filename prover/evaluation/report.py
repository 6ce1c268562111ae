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


def summarize(spec: EvalSpec, items: Sequence[Item], rows: Sequence[dict[str, Any]]
              ) -> dict[str, Any]:
    keys = list(dict.fromkeys(i.key for i in items))
    proved = {r["key"] for r in rows if r.get("proved")}
    done = {(r["key"], int(r["run"])) for r in rows}
    invalid = {i.key: i.invalid for i in items if i.invalid}
    per_run = []
    for run in range(spec.runs):
        run_rows = [r for r in rows if int(r["run"]) == run]
        per_run.append({"run": run, "mode": spec.mode_of_run(run), "finished": len(run_rows),
                        "proved": sum(1 for r in run_rows if r.get("proved"))})
    return {
        "dataset": spec.dataset,
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
                  rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    summary = summarize(spec, items, rows)
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
