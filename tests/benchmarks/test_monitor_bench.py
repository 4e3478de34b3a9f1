"""The live monitor at scale: 1,000,000 capture records (1988-like rows, where hhninc rose) in one
window, beside the offline ``conveyor drift`` on the same rows (a CSV) against the same profile.

Run: ``make bench`` (or ``.venv/bin/python -m pytest tests/benchmarks/test_monitor_bench.py -s -p no:randomly``).
``BENCH_MONITOR_ROWS`` changes the record count. Each step runs in its own process and reports
its seconds and peak RSS. Goal: the monitor under 60 s and 2 GB. The table is printed and written
to ``.conveyor/bench/monitor.json``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
ROWS = int(os.environ.get("BENCH_MONITOR_ROWS", "1000000"))
RESULTS = ROOT / ".conveyor" / "bench" / "monitor.json"
GOAL_SECONDS = 60.0
GOAL_MB = 2048.0


def _stage(*args: str) -> dict:
    done = subprocess.run(
        [sys.executable, str(HERE / "monitor_stage.py"), *args], capture_output=True, text=True, check=False, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_live_monitor_over_a_million_capture_records(tmp_path: Path) -> None:
    written = _stage("write", str(tmp_path), str(ROWS))
    monitored = _stage("monitor", str(tmp_path))
    offline = _stage("offline", str(tmp_path))
    table = {
        "rows": ROWS,
        "capture_mb": round(written["bytes"] / 1e6, 1),
        "monitor": monitored,
        "offline_drift": offline,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(table, indent=2))
    print("\n" + json.dumps(table, indent=2))
    assert monitored["requests"] == ROWS
    assert monitored["verdict"] == "drift" and "hhninc" in monitored["drifted_features"]
    assert offline["verdict"] == "drift" and "hhninc" in offline["drifted_features"]
    assert monitored["seconds"] < GOAL_SECONDS, monitored
    assert monitored["peak_mb"] < GOAL_MB, monitored
