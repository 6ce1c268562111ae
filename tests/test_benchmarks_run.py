"""The pool benchmark runs end to end in quick mode and ends with its JSON summary.

Timings are not asserted (they depend on the machine); only the shape of the report and the
header-elaboration count, which must not exceed the number of workers used.
"""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "benchmarks" / "verifier_pool.py"

KEYS = (
    "overhead_ms_p50",
    "bare_ms_p50",
    "pool_ms_p50",
    "scaling",
    "header_elaborations",
    "reference_header_elaborations",
    "checks",
)


def test_quick_benchmark_prints_json_summary_last() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"],
        cwd=REPO, capture_output=True, text=True, timeout=110,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) > 1, "human-readable lines come before the JSON"
    report = json.loads(lines[-1])
    assert isinstance(report, dict)
    missing = [k for k in KEYS if k not in report]
    assert not missing, missing
    for key in ("overhead_ms_p50", "bare_ms_p50", "pool_ms_p50"):
        assert isinstance(report[key], (int, float))
    assert set(report["scaling"]) == {"1", "2", "4"}
    assert all(isinstance(v, (int, float)) and v > 0 for v in report["scaling"].values())
    assert report["checks"] == report["reference_header_elaborations"] > 0
    workers = report["workers"]
    assert 1 <= report["header_elaborations"] <= workers
    assert report["repl_header_imports"] <= workers


def test_search_benchmark_reports_cost_per_tree_size_and_speedup() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "search.py"), "--quick"],
        cwd=REPO, capture_output=True, text=True, timeout=110,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    report = json.loads(lines[-1])
    assert set(report["ms_per_sample"]) == {"1000", "10000", "100000"}
    assert all(v > 0 for v in report["ms_per_sample"].values())
    for key in ("speedup_vs_polling", "speedup_vs_polling_20ms"):
        assert report[key] > 0
    # Both loops ran the whole budget (nothing is provable in the benchmark's toy problem).
    assert report["samples_per_s_vs_polling"]["polling"] > 0
