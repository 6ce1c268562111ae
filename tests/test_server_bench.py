"""The service benchmark runs end to end in quick mode and ends with its JSON summary.

Timings are not asserted (they depend on the machine), only the report's shape and the counts
that must hold whatever the speed: every queued job ran and was proved."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_quick_service_benchmark_prints_its_json_summary_last() -> None:
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "service.py"), "--quick"],
                          cwd=REPO, capture_output=True, text=True, timeout=110)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) > 1, "human-readable lines come before the JSON"
    report = json.loads(lines[-1])
    for key in ("http_rps", "inproc_rps", "p50_ms", "p99_ms", "submit_to_start_ms_p50",
                "idle_submit_to_start_ms_p50", "drain_jobs_per_s"):
        assert isinstance(report[key], (int, float)) and report[key] > 0, key
    assert report["p99_ms"] >= report["p50_ms"]
    assert report["jobs_proved"] == report["queued_jobs"] > 0
