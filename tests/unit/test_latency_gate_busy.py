"""The latency gate on a busy machine: a candidate identical to the champion is never rejected while a
CPU-bound process runs beside it (the gate measures thread CPU time, side by side, median of trials)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from conveyor.gates.common import GateThresholds
from conveyor.gates.latency import latency, latency_gates
from conveyor.scoring import OnnxModel

BUSY = "while True: pass"


@pytest.fixture
def busy_core() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen([sys.executable, "-c", BUSY])
    try:
        yield process
    finally:
        process.kill()
        process.wait(timeout=30)


def test_an_identical_candidate_is_never_rejected_beside_a_busy_core(
    trained_model: Any, busy_core: subprocess.Popen[bytes]
) -> None:
    candidate, champion = OnnxModel(trained_model.onnx), OnnxModel(trained_model.onnx)
    rows = trained_model.result.holdout_df.head(50)
    rejected = []
    for attempt in range(20):
        timing = latency(
            candidate, rows, model_bytes=trained_model.onnx, champion=champion, trials=5, single_runs=15, batch_runs=3
        )
        failed = [g.message for g in latency_gates(timing, GateThresholds()) if not g.passed]
        if failed:
            rejected.append((attempt, failed))
    assert busy_core.poll() is None, "the CPU-bound process beside the gate stopped early"
    assert rejected == []


def test_a_much_slower_candidate_fails_the_ratio_even_under_its_ceiling() -> None:
    same = {"p50_ms": 0.1, "p99_ms": 0.2}
    evidence = {
        "single": {"p50_ms": 2.0, "p99_ms": 3.0},
        "batch": same,
        "champion": {"single": same, "batch": same},
        "batch_rows": 100,
        "model_mb": 0.1,
    }
    gates = {g.name: g for g in latency_gates(evidence, GateThresholds())}
    assert not gates["latency_single"].passed and "slower than the champion" in gates["latency_single"].message
    assert gates["latency_batch"].passed
