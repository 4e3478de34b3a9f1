"""The local cloud's persistence at scale: 20 models, 200 versions, 10,000 objects, 1,000,000 capture records.

Each step runs in a process of its own (persist_cloud.py): a start that populates the state through moto's
backends, snapshots it, and measures small S3 PUTs over HTTP in windows without snapshots alternated with
windows with a snapshot every 0.2 s (10 times the cloud's rate); then empty starts and starts that restore
it, alternated (the first step warmed the synthesis cache). Goals (issue 16): a start with restore adds under 5 s over an empty
start; a snapshot stalls no request by more than 50 ms.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import ROOT

STARTS = 2  # of each kind, alternated: the machine is shared, the fastest of each is compared


def _step(step: str, data_dir: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.benchmarks.persist_cloud", step, str(data_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_restore_and_snapshot_at_scale(tmp_path: Path) -> None:
    populated = _step("populate", tmp_path / "data")
    empties, restores = [], []
    for n in range(STARTS):
        empties.append(_step("empty", tmp_path / f"empty-{n}"))
        restores.append(_step("restore", tmp_path / "data"))
    empty = min(empties, key=lambda r: r["start_seconds"])
    restored = min(restores, key=lambda r: r["start_seconds"])
    added = restored["start_seconds"] - empty["start_seconds"]
    restore_work = restored["restored"]["read_seconds"] + restored["restored"]["seconds"]
    latency, first = populated["latency"], populated["first_snapshot"]
    without, during = latency["without_snapshots"], latency["during_snapshots"]
    stall = during["p99_ms"] - without["p99_ms"]
    print(
        "\npersistence at scale (20 models, 200 versions, 10,000 objects, 1,000,000 capture records):"
        f"\n  starts: empty {[r['start_seconds'] for r in empties]} s, with restore "
        f"{[r['start_seconds'] for r in restores]} s: +{added:.2f} s (fastest of each); restore work "
        f"{restore_work:.2f} s (reading and verifying {restored['restored']['read_seconds']:.2f} s, applying "
        f"{restored['restored']['seconds']:.2f} s); stop after restore {restored['stop_seconds']} s"
        f"\n  restored objects read over HTTP: first read {restored['reads']['first']}, again {restored['reads']['again']}"
        f"\n  first snapshot (every body new) {first['seconds']} s; PUTs during it {first['during']}, around it "
        f"{first['without']}"
        f"\n  {latency['snapshots']} snapshots, one every 0.2 s: {latency['snapshot_seconds_p50']} s each (p50; max "
        f"{latency['snapshot_seconds_max']} s), {latency['snapshot_cpu_ms_p50']} ms of CPU each (p50)"
        f"\n  S3 PUT latency without snapshots {without}; during snapshots {during}"
        f"\n  added by snapshots: p99 {stall:+.1f} ms, max {during['max_ms'] - without['max_ms']:+.1f} ms;"
        f" data dir {restored['data_dir_mb']} MB"
        f"\n  full garbage collections in the windows: {latency['full_collections']} (longest "
        f"{latency['full_collection_ms_max']} ms, snapshot or not); the requests none overlapped: without snapshots "
        f"{latency['without_snapshots_no_full_gc']}, during {latency['during_snapshots_no_full_gc']}"
    )
    assert restored["restored"]["objects"] >= 10_000
    assert added < 5.0, "a start with restore adds under 5 s over an empty start"
    assert restore_work < 5.0
    # The machine is shared (2 cores, several agents): the 99th percentile is the robust comparison; the
    # slowest request is held to the goal too (full garbage collections, which used to stall it for ~170 ms
    # when a snapshot brought one on, no longer walk the frozen state).
    assert stall < 50.0, "a snapshot stalls no request by more than 50 ms"
    assert during["max_ms"] - without["max_ms"] < 50.0, "the slowest request during snapshots, too"
