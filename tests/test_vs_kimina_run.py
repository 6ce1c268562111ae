"""benchmarks/vs_kimina.py runs end to end in quick mode, and its fake-REPL cost model is honest.

Timings are not asserted (they depend on the machine); the report's shape, the verdicts (ours
misclassify nothing; Kimina accepts every cheat of the load, the behaviour the issue reports) and
the header imports (at most one per REPL and run) are. Kimina's server comes from PyPI into a
Python 3.12 venv under the test cache, built once.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.fake_repl import CostModel

REPO = Path(__file__).resolve().parent.parent

FLAT = {"FAKE_REPL_COST": "flat"}
LIGHT = {"FAKE_REPL_COST": "light"}


@pytest.mark.parametrize(
    ("text", "flat", "light"),
    [
        ("import Mathlib\nimport Aesop", 0.0, 0.0),  # the import delay is the whole cost
        ("#eval 1", 0.302, 0.03),
        ("#print axioms t\nset_option pp.all true in #check @t", 0.304, 0.03),
        ("theorem t (x : Nat) :\n  x = x := by\n  sorry", 0.306, 0.03),
        ("open Real\nset_option maxHeartbeats 400000", 0.304, 0.03),
        ("theorem t : 1 = 1 := by\n  rfl", 0.304, 0.304),
        # A statement, a proof and audit queries in one command cost like a proof, plus lines.
        ("theorem r : P := sorry\n#print axioms r\ntheorem t : P := by\n  simp\n"
         "#print axioms t\n#check @t\n#check @r\n", 0.316, 0.316),
        ("@[simp]\ntheorem t : 1 = 1 := by rfl", 0.304, 0.304),
    ],
)
def test_cost_model_charges_proofs_not_queries(text: str, flat: float, light: float) -> None:
    assert CostModel(FLAT).seconds(text) == pytest.approx(flat)
    assert CostModel(LIGHT).seconds(text) == pytest.approx(light)
    assert CostModel({}).seconds(text) == 0.0  # no model: no cost


@pytest.mark.timeout(300)
def test_quick_benchmark_against_kimina_prints_json_summary_last() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "vs_kimina.py"), "--quick", "--models", "flat"],
        cwd=REPO, capture_output=True, text=True, timeout=280,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) > 2, "human-readable lines come before the JSON"
    report = json.loads(lines[-1])
    for key in ("throughput_ratio_vs_kimina", "unique_throughput_ratio_vs_kimina",
                "p99_ratio_vs_kimina"):
        assert report[key] > 0
    assert report["misclassified"] == 0
    cheats = report["cheats_in_loads"]
    assert report["kimina_misclassified"] == 2 * (cheats["unique"] + cheats["rl"])
    for who in ("ours", "kimina"):
        for load in ("unique", "rl"):
            for mode in ("batch", "singles"):
                run = report["results"][who]["flat"][load][mode]
                assert 1 <= run["header_imports"] <= report["repls"]
                assert run["proofs_per_s"] > 0 and run["peak_rss_mb"] > 0
