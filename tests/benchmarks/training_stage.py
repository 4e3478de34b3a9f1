"""One stage of "train + export + all gates", run in its own process (as in its own Lambda).

``python training_stage.py train DATA.csv SPEC OUT_DIR`` does what the Train stage does
(``conveyor.stages.train``), minus S3: read the CSV with ``read_table``, run
``conveyor.training.build_candidate`` (check, train, export, parity, profile), write
``candidate.onnx``, ``holdout.parquet``, ``profile.json`` and ``training.json`` (the parity
record the Evaluate stage reads).

``python training_stage.py evaluate CANDIDATE_DIR CHAMPION_DIR SPEC`` does what the Evaluate
stage does (``conveyor.stages.evaluate``): read the holdout, load both ONNX models, run
``conveyor.gates.assess_candidate``, the one function behind every gate.

Each prints one JSON line: seconds per step and the process's peak resident memory (``VmHWM``,
see data_gate_stage.py). The steps inside ``build_candidate`` come from its ``on_step``
callback. The finer split of training (split, fit) and of the gates (one entry per gate group)
comes from wrapping, for the duration of the run, the module-level functions those two call
(:data:`TRAIN_PARTS`, :data:`GATE_PARTS`), so the code measured is the code the pipeline runs;
a part that a refactor renames is reported as missing instead of breaking the run.
"""

from __future__ import annotations

import functools
import importlib
import io
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from data_gate_stage import peak_rss_mb

# Functions of conveyor.training that train_model calls through module globals.
TRAIN_PARTS = {"split": "split_holdout"}
# Functions of conveyor.gates.assess that assess_candidate / run_gates call through module globals,
# in the order they run, and the gate (group) each one measures.
GATES_MODULE = "conveyor.gates.assess"
GATE_PARTS = {
    "metric_vs_champion": "evaluate_candidate",  # candidate and champion scored, primary metric compared
    "parity_gate": "parity_gates",  # judges the parity measured at training time
    "slices": "slice_metrics",
    "robustness": "noise_flip_rate",
    "importance": "importance_evidence",
    "latency_size": "latency",
    "agreement": "agreement_evidence",
}


class Timer:
    """Wraps module functions so each call adds its wall time to ``seconds[part]``."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.missing: list[str] = []
        self._undo: list[tuple[ModuleType, str, Any]] = []

    def wrap(self, module: ModuleType, parts: dict[str, str]) -> None:
        for part, name in parts.items():
            original = getattr(module, name, None)
            if not callable(original):
                self.missing.append(f"{module.__name__}.{name}")
                continue
            setattr(module, name, self._timed(part, original))
            self._undo.append((module, name, original))

    def _timed(self, part: str, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[part] = self.seconds.get(part, 0.0) + time.perf_counter() - started

        return timed

    def restore(self) -> None:
        for module, name, original in reversed(self._undo):
            setattr(module, name, original)
        self._undo.clear()


def train(data_path: Path, spec_path: Path, out: Path) -> dict[str, Any]:
    import conveyor.training as training
    from conveyor.spec import load_spec
    from conveyor.tabular import read_table

    seconds: dict[str, float] = {}
    spec_bytes = spec_path.read_bytes()
    spec = load_spec(spec_bytes)
    t = time.perf_counter()
    frame = read_table(data_path.read_bytes(), data_path.name)
    seconds["read"] = time.perf_counter() - t

    timer = Timer()
    timer.wrap(training, TRAIN_PARTS)
    original_build = training.build_pipeline

    def build_pipeline(spec: Any) -> Any:  # time the fit of the pipeline train_model builds
        pipeline = original_build(spec)
        fit = pipeline.fit

        def timed_fit(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return fit(*args, **kwargs)
            finally:
                timer.seconds["fit"] = timer.seconds.get("fit", 0.0) + time.perf_counter() - started

        pipeline.fit = timed_fit
        return pipeline

    training.build_pipeline = build_pipeline
    try:
        candidate = training.build_candidate(frame, spec)
    finally:
        training.build_pipeline = original_build
        timer.restore()
    pipeline = candidate.result.pipeline
    if "fit" in pipeline.__dict__:
        del pipeline.fit  # nothing after this point is timed, but leave the pipeline as it was built
    seconds.update(candidate.seconds)
    parts = {f"train.{name}": value for name, value in timer.seconds.items()}
    # the rest of train_model: feature frames, target vectors, holdout predictions and metrics
    parts["train.rest"] = seconds["train"] - sum(timer.seconds.values())

    t = time.perf_counter()  # what the Train stage stores beside the candidate (here on disk, not S3)
    out.mkdir(parents=True, exist_ok=True)
    (out / "candidate.onnx").write_bytes(candidate.onnx)
    buffer = io.BytesIO()
    candidate.result.holdout_df.to_parquet(buffer, index=False)
    (out / "holdout.parquet").write_bytes(buffer.getvalue())
    (out / "profile.json").write_text(json.dumps(candidate.profile))
    (out / "training.json").write_text(json.dumps(candidate.summary()))
    seconds["write"] = time.perf_counter() - t
    result = candidate.result
    model = pipeline.named_steps["model"]
    return {
        "seconds": seconds,
        "parts": parts,
        "missing_parts": timer.missing,
        "rows": len(frame),
        "n_train": result.n_train,
        "n_holdout": result.n_holdout,
        "split": candidate.split,
        "metrics": result.metrics,
        "parity": candidate.parity.to_dict(),
        "n_iter": int(getattr(model, "n_iter_", 0)),
        "onnx_bytes": len(candidate.onnx),
        "holdout_parquet_bytes": (out / "holdout.parquet").stat().st_size,
        "profile_bytes": (out / "profile.json").stat().st_size,
        "frame_mb": float(frame.memory_usage(deep=True).sum() / 1e6),
    }


def evaluate(candidate_dir: Path, champion_dir: Path, spec_path: Path) -> dict[str, Any]:
    import pandas as pd

    import conveyor.gates as gates
    from conveyor.scoring import OnnxModel
    from conveyor.spec import load_spec

    seconds: dict[str, float] = {}
    spec = load_spec(spec_path.read_bytes())
    training_record = json.loads((candidate_dir / "training.json").read_text())
    t = time.perf_counter()
    candidate_bytes = (candidate_dir / "candidate.onnx").read_bytes()
    candidate = OnnxModel(candidate_bytes)
    champion = OnnxModel((champion_dir / "candidate.onnx").read_bytes())
    holdout = pd.read_parquet(io.BytesIO((candidate_dir / "holdout.parquet").read_bytes()))
    seconds["load"] = time.perf_counter() - t

    timer = Timer()
    timer.wrap(importlib.import_module(GATES_MODULE), GATE_PARTS)
    t = time.perf_counter()
    try:
        assessment = gates.assess_candidate(
            candidate,
            champion,
            holdout,
            spec,
            candidate_bytes=candidate_bytes,
            parity=training_record.get("parity"),
            parity_missing_reason="the Train stage recorded no parity measurement",
        )
    finally:
        timer.restore()
    seconds["gates"] = time.perf_counter() - t
    parts = dict(timer.seconds)
    parts["other"] = seconds["gates"] - sum(timer.seconds.values())  # target vector, judging each gate
    result = assessment.to_dict()
    details = gates.json_safe(assessment.details())
    return {
        "seconds": seconds,
        "parts": parts,
        "missing_parts": timer.missing,
        "holdout_rows": len(holdout),
        "passed": result["passed"],
        "reason": result["reason"],
        "gates": result["gates"],
        "candidate_metrics": result.get("candidate"),
        "champion_metrics": result.get("champion"),
        "latency": details.get("latency"),
        "agreement": details.get("agreement"),
        "flip_rate": details.get("flip_rate"),
        "importance_top": (details.get("importance") or {}).get("top"),
        "slice_columns": sorted((details.get("slices") or {}).keys()),
    }


def _openmp_threads() -> int | None:
    """The OpenMP threads scikit-learn's HistGradientBoosting uses here (OMP_NUM_THREADS, else all cores)."""
    try:
        from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

        return int(_openmp_effective_n_threads())
    except ImportError:
        return None


def main() -> None:
    stage = sys.argv[1]
    load_start = os.getloadavg()[0]
    started = time.perf_counter()
    for module in ("conveyor.training", "conveyor.onnx_export", "conveyor.gates"):  # counted apart, as in data_gate
        importlib.import_module(module)

    imported = time.perf_counter() - started
    if stage == "train":
        result = train(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]))
    elif stage == "evaluate":
        result = evaluate(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]))
    else:
        raise SystemExit(f"unknown stage {stage}")
    result["seconds"]["import"] = imported
    result["seconds"]["total"] = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["cpu_seconds"] = usage.ru_utime + usage.ru_stime  # above wall time: threads; far above: spinning
    result["load_average"] = [round(load_start, 2), round(os.getloadavg()[0], 2)]  # whole machine, 1 min
    result["openmp_threads"] = _openmp_threads()
    print(json.dumps({"stage": stage, **result, "peak_rss_mb": peak_rss_mb()}))


if __name__ == "__main__":
    main()
