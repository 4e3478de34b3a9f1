"""The latency and size gates: p99 wall time of ONNX inference on 1 and on 100 rows, and the model's bytes."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from conveyor.errors import DataError
from conveyor.gates.common import Gate, GateThresholds, model_frame
from conveyor.scoring import OnnxModel
from conveyor.tabular import inputs_from_frame

SINGLE_RUNS = 200
BATCH_RUNS = 50
BATCH_ROWS = 100
WARMUP_RUNS = 10


def _timed_ms(call: Callable[[], Any], runs: int) -> np.ndarray:
    for _ in range(WARMUP_RUNS):
        call()
    times = np.empty(runs)
    for i in range(runs):
        started = time.perf_counter()
        call()
        times[i] = (time.perf_counter() - started) * 1000.0
    return times


def latency(
    model: OnnxModel,
    frame: pd.DataFrame,
    *,
    model_bytes: bytes | None = None,
    single_runs: int = SINGLE_RUNS,
    batch_runs: int = BATCH_RUNS,
    batch_rows: int = BATCH_ROWS,
) -> dict[str, Any]:
    """p50/p99 wall time (ms) of ONNX inference on 1 row and on ``batch_rows`` rows, and the model size.

    After ``WARMUP_RUNS`` untimed calls, ``single_runs`` (200) one-row calls cycle through the
    rows of ``frame`` and ``batch_runs`` (50) calls score consecutive ``batch_rows`` (100)-row
    blocks (wrapping around). Only ``OnnxModel.predict`` is timed: input parsing is excluded.
    ``model_mb`` is ``len(model_bytes) / 10**6`` (None without bytes).

    Raises
    ------
    DataError
        If ``frame`` is empty or lacks a model input.
    """
    if frame.empty:
        raise DataError("latency needs at least one row")
    inputs = inputs_from_frame(model_frame(model, frame), model.feature_types)
    n = len(frame)
    repeat = math.ceil(batch_rows / n) + 1
    wrapped = {name: np.concatenate([values] * repeat) for name, values in inputs.items()}
    counter = iter(range(10**9))

    def single() -> Any:
        i = next(counter) % n
        return model.predict({name: values[i : i + 1] for name, values in inputs.items()})

    def batch() -> Any:
        start = (next(counter) * batch_rows) % n
        return model.predict({name: values[start : start + batch_rows] for name, values in wrapped.items()})

    single_ms, batch_ms = _timed_ms(single, single_runs), _timed_ms(batch, batch_runs)
    return {
        "single": {"p50_ms": float(np.percentile(single_ms, 50)), "p99_ms": float(np.percentile(single_ms, 99))},
        "batch": {"p50_ms": float(np.percentile(batch_ms, 50)), "p99_ms": float(np.percentile(batch_ms, 99))},
        "single_runs": single_runs,
        "batch_runs": batch_runs,
        "batch_rows": batch_rows,
        "warmup_runs": WARMUP_RUNS,
        "model_mb": None if model_bytes is None else len(model_bytes) / 1e6,
    }


def latency_gates(evidence: dict[str, Any], thresholds: GateThresholds) -> list[Gate]:
    gates = []
    for name, key, limit, what in (
        ("latency_single", "single", thresholds.max_p99_ms_single, "1 row"),
        ("latency_batch", "batch", thresholds.max_p99_ms_batch, f"{evidence['batch_rows']} rows"),
    ):
        p99, p50 = evidence[key]["p99_ms"], evidence[key]["p50_ms"]
        passed = p99 <= limit
        sign = "<=" if passed else ">"
        gates.append(Gate(name, p99, limit, passed, f"p99 {p99:.2f} ms {sign} {limit:g} ms for {what} (p50 {p50:.2f})"))
    size, limit = evidence["model_mb"], thresholds.max_model_mb
    if size is None:
        gates.append(Gate("model_size", None, limit, False, "model bytes not given: size not measured"))
    else:
        passed = size <= limit
        sign = "<=" if passed else ">"
        gates.append(Gate("model_size", size, limit, passed, f"ONNX model {size:.2f} MB {sign} {limit:g} MB"))
    return gates
