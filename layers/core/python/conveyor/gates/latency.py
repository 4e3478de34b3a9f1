"""The latency and size gates: ONNX inference cost on 1 and on 100 rows, side by side with the champion,
and the model's bytes.

A wall-clock p99 of a few hundred calls, measured while other work shares the CPU, measures the
machine, not the model: one preemption in 100 calls is the p99. So the gates time each call by the
CPU time of the calling thread (``time.thread_time_ns``; the session runs on that thread,
``intra_op_num_threads = 1``), which time spent waiting for a core does not count, in several
*trials* that interleave candidate and champion call by call (so both meet the same cache, frequency
and busy sibling core), and take
the **median over trials of each trial's p99**, with the garbage collector paused (as ``timeit`` does). A candidate fails if that is over the absolute
ceiling (``max_p99_ms_*``) or over ``max_latency_ratio`` times the champion's (plus
:data:`RATIO_SLACK_MS`, so a 0.05 ms model is not failed for a 0.03 ms difference). Wall-clock
percentiles are recorded beside them for people, never gated on.
"""

from __future__ import annotations

import contextlib
import gc
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from conveyor.errors import ArtifactError, DataError
from conveyor.gates.common import Gate, GateThresholds, model_frame
from conveyor.scoring import OnnxModel
from conveyor.tabular import inputs_from_frame

TRIALS = 7
SINGLE_RUNS = 40  # one-row calls per trial and model
BATCH_RUNS = 10  # batch calls per trial and model
BATCH_ROWS = 100
WARMUP_RUNS = 10
RATIO_SLACK_MS = 0.2


def _caller(model: OnnxModel, frame: pd.DataFrame, batch_rows: int) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """A one-row call and a ``batch_rows``-row call of ``model``, cycling through the rows of ``frame``."""
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

    return single, batch


def _trial(calls: list[Callable[[], Any]], runs: int, first: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """CPU and wall milliseconds of ``runs`` calls of each of ``calls``, interleaved call by call (the
    model that goes first alternates, starting with ``first``), so that whatever else the machine does
    (a busy sibling core, cache pressure) falls on both alike."""
    cpu, wall = np.empty((len(calls), runs)), np.empty((len(calls), runs))
    for i in range(runs):
        for k in range(len(calls)):
            m = (first + i + k) % len(calls)
            started_cpu, started_wall = time.thread_time_ns(), time.perf_counter_ns()
            calls[m]()
            cpu[m, i] = (time.thread_time_ns() - started_cpu) / 1e6
            wall[m, i] = (time.perf_counter_ns() - started_wall) / 1e6
    return [(cpu[m], wall[m]) for m in range(len(calls))]


def _summary(trials: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, Any]:
    """p50 and p99 per trial; the gate's statistic: the median over trials."""
    cpu_p99 = [float(np.percentile(cpu, 99)) for cpu, _ in trials]
    cpu_p50 = [float(np.percentile(cpu, 50)) for cpu, _ in trials]
    wall_p99 = [float(np.percentile(wall, 99)) for _, wall in trials]
    wall_p50 = [float(np.percentile(wall, 50)) for _, wall in trials]
    return {
        "p50_ms": float(np.median(cpu_p50)),
        "p99_ms": float(np.median(cpu_p99)),
        "trial_p99_ms": [round(v, 4) for v in cpu_p99],
        "wall_p50_ms": float(np.median(wall_p50)),
        "wall_p99_ms": float(np.median(wall_p99)),
    }


def latency(
    model: OnnxModel,
    frame: pd.DataFrame,
    *,
    model_bytes: bytes | None = None,
    champion: OnnxModel | None = None,
    trials: int = TRIALS,
    single_runs: int = SINGLE_RUNS,
    batch_runs: int = BATCH_RUNS,
    batch_rows: int = BATCH_ROWS,
) -> dict[str, Any]:
    """Thread-CPU milliseconds of ONNX inference on 1 row and on ``batch_rows`` rows (module docstring).

    After ``WARMUP_RUNS`` untimed calls of each, ``trials`` trials each time ``single_runs`` one-row
    calls (cycling through the rows of ``frame``) and ``batch_runs`` calls on consecutive
    ``batch_rows``-row blocks, of the candidate and (when given) of the champion, in alternating
    order. Only ``OnnxModel.predict`` is timed. ``single``/``batch`` hold the candidate's ``p50_ms``
    and ``p99_ms`` (medians over trials), ``champion`` the same for the champion (None without one).
    ``model_mb`` is ``len(model_bytes) / 10**6`` (None without bytes).

    Raises
    ------
    DataError
        If ``frame`` is empty or lacks a model input.
    """
    if frame.empty:
        raise DataError("latency needs at least one row")
    models = {"candidate": _caller(model, frame, batch_rows)}
    if champion is not None:
        # A champion that cannot score these rows (other inputs): the candidate meets the ceiling alone.
        with contextlib.suppress(DataError, ArtifactError):
            calls = _caller(champion, frame, batch_rows)
            calls[0]()
            calls[1]()
            models["champion"] = calls
    timed: dict[str, dict[str, list[tuple[np.ndarray, np.ndarray]]]] = {n: {"single": [], "batch": []} for n in models}
    for single, batch in models.values():
        for _ in range(WARMUP_RUNS):
            single()
            batch()
    collecting = gc.isenabled()
    gc.disable()  # a garbage collection is CPU time of the thread too, but not the model's (as in timeit)
    try:
        names = list(models)
        for t in range(trials):
            for key, index, runs in (("single", 0, single_runs), ("batch", 1, batch_runs)):
                measured = _trial([models[name][index] for name in names], runs, first=t)
                for name, times in zip(names, measured, strict=True):
                    timed[name][key].append(times)
    finally:
        if collecting:
            gc.enable()
    result: dict[str, Any] = {
        "single": _summary(timed["candidate"]["single"]),
        "batch": _summary(timed["candidate"]["batch"]),
        "champion": None,
        "clock": "thread_cpu",
        "trials": trials,
        "single_runs": single_runs * trials,
        "batch_runs": batch_runs * trials,
        "batch_rows": batch_rows,
        "warmup_runs": WARMUP_RUNS,
        "model_mb": None if model_bytes is None else len(model_bytes) / 1e6,
    }
    if "champion" in timed:
        result["champion"] = {key: _summary(timed["champion"][key]) for key in ("single", "batch")}
    return result


def latency_gates(evidence: dict[str, Any], thresholds: GateThresholds) -> list[Gate]:
    gates = []
    champion = evidence.get("champion") or {}
    ratio = thresholds.max_latency_ratio
    for name, key, limit, what in (
        ("latency_single", "single", thresholds.max_p99_ms_single, "1 row"),
        ("latency_batch", "batch", thresholds.max_p99_ms_batch, f"{evidence['batch_rows']} rows"),
    ):
        p99, p50 = evidence[key]["p99_ms"], evidence[key]["p50_ms"]
        under_ceiling = p99 <= limit
        message = f"p99 {p99:.3f} ms {'<=' if under_ceiling else '>'} {limit:g} ms for {what} (p50 {p50:.3f}"
        passed = under_ceiling
        if key in champion:
            allowed = ratio * champion[key]["p99_ms"] + RATIO_SLACK_MS
            as_fast = p99 <= allowed
            passed = passed and as_fast
            message += f"; champion p99 {champion[key]['p99_ms']:.3f} ms, allowed {allowed:.3f} ms (x{ratio:g})"
            if not as_fast:
                message = f"slower than the champion: {message}"
        gates.append(Gate(name, p99, limit, passed, message + ", thread CPU time, median of trials)"))
    size, limit = evidence["model_mb"], thresholds.max_model_mb
    if size is None:
        gates.append(Gate("model_size", None, limit, False, "model bytes not given: size not measured"))
    else:
        passed = size <= limit
        sign = "<=" if passed else ">"
        gates.append(Gate("model_size", size, limit, passed, f"ONNX model {size:.2f} MB {sign} {limit:g} MB"))
    return gates
