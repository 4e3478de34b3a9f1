"""Bursts (issue 11): a 20-part burst on the local cloud, from the first upload to the new version
serving (seconds, and how many trainings it took), and the latency gate's false rejections under one
busy core (a candidate identical to the champion, 100 trials: goal 0).

Run: ``make bench`` (or ``.venv/bin/python -m pytest tests/benchmarks/test_burst_bench.py -s -p no:randomly``).
The numbers are printed and written to ``.conveyor/bench/bursts.json``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from conveyor.cli.target import Target
from tests.e2e.conftest import cloud  # noqa: F401 - the local cloud fixture, started as `conveyor up`
from tests.e2e.test_bursts import _csv, _executions, _first_version, _put, _registry, _rows, _spec, _wait

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / ".conveyor" / "bench" / "bursts.json"
PARTS = 20
GATE_TRIALS = 100
results: dict[str, Any] = {}


def _save() -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))


def test_a_burst_of_20_parts_to_the_new_version_serving(cloud: Target) -> None:  # noqa: F811
    model = "bench-burst"
    _first_version(cloud, model, _spec(model, batch_window_seconds=2))
    registry = _registry(cloud)
    folder = f"{model}/incoming/export"
    parts = _rows([1986, 1987], PARTS * 100, seed=3)
    bodies = {f"{folder}/part-{i:05d}.csv": _csv(parts.iloc[i * 100 : (i + 1) * 100]) for i in range(PARTS)}
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda item: _put(cloud, *item), bodies.items()))
    uploaded = time.monotonic() - started

    def done() -> dict[str, dict[str, Any]] | None:
        executions = _executions(cloud, folder)
        finished = len(executions) == PARTS and all(e["status"] != "RUNNING" for e in executions.values())
        return executions if finished else None

    executions = _wait("every run of the burst", done, timeout=1800)
    champion = registry.champion(model)
    serving_at = time.monotonic() - started
    trained = [v for v in registry.versions(model) if v.version > 1]
    promoted = [v.version for v in trained if v.status in ("production", "archived")]
    endings = {}
    for execution in executions.values():
        ending = json.loads(execution["output"]).get("finish", {}).get("ending", "folded")
        endings[ending] = endings.get(ending, 0) + 1
    results["burst"] = {
        "parts": PARTS,
        "upload_seconds": round(uploaded, 2),
        "first_upload_to_last_run_ended_seconds": round(serving_at, 1),
        "trainings": len(trained),
        "promoted": promoted,
        "serving": champion.version if champion else None,
        "endings": endings,
        "approved_left": [v.version for v in trained if v.status == "approved"],
    }
    _save()
    print(f"\nburst of {PARTS} parts: {results['burst']}")
    assert 1 <= len(trained) <= 2 and results["burst"]["approved_left"] == []
    assert champion is not None and champion.version in promoted


def test_the_latency_gate_never_rejects_an_identical_candidate_beside_a_busy_core(trained_model: Any) -> None:
    from conveyor.gates.common import GateThresholds
    from conveyor.gates.latency import latency, latency_gates
    from conveyor.scoring import OnnxModel

    candidate, champion = OnnxModel(trained_model.onnx), OnnxModel(trained_model.onnx)
    rows = trained_model.result.holdout_df
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    rejected: list[list[str]] = []
    ratios: list[float] = []
    started = time.monotonic()
    try:
        for _ in range(GATE_TRIALS):
            timing = latency(candidate, rows, model_bytes=trained_model.onnx, champion=champion)
            ratios.append(timing["single"]["p99_ms"] / timing["champion"]["single"]["p99_ms"])
            failed = [g.message for g in latency_gates(timing, GateThresholds()) if not g.passed]
            if failed:
                rejected.append(failed)
    finally:
        busy.kill()
        busy.wait(timeout=30)
    results["latency_gate"] = {
        "trials": GATE_TRIALS,
        "false_rejections": len(rejected),
        "seconds_per_gate": round((time.monotonic() - started) / GATE_TRIALS, 3),
        "p99_ratio_min_median_max": [
            round(min(ratios), 3),
            round(sorted(ratios)[len(ratios) // 2], 3),
            round(max(ratios), 3),
        ],
        "examples": rejected[:3],
    }
    _save()
    print(f"\nlatency gate beside a busy core: {results['latency_gate']}")
    assert rejected == [], rejected[:3]
