"""Train + export + all gates: seconds per stage and peak memory, for the bundled German health
data and for ``BENCH_ROWS`` (default 1,000,000) rows resampled from it (training_data.py).

Run: ``make bench`` (or ``.venv/bin/python -m pytest tests/benchmarks/test_training_bench.py -s
-p no:randomly``). Spec: events/specs/doctor-visits.yaml (hist_gradient_boosting) plus
``slices: [female, age, edlevel]``, so the slice gate has work to do.

For each data set: a champion is trained on the 1984-1985 rows, then the candidate on every
row, then the candidate is assessed against that champion. Each runs in its own process, as in
its own Lambda (training_stage.py): ``train`` is the Train stage's work (read the CSV,
``build_candidate``, write the artifacts) and ``evaluate`` the Evaluate stage's
(``assess_candidate``). The bundled set's candidate and assessment run ``BENCH_TRAINING_REPEATS``
(5) times and each step's median is reported; the large set runs once.

Threads: the measured runs set ``OMP_NUM_THREADS`` to ``BENCH_OMP_THREADS`` (default 1), the
OpenMP threads of scikit-learn's HistGradientBoosting (onnxruntime is set to one thread by
Conveyor anyway). On a machine shared with other work, two spinning OpenMP threads measure the
contention rather than the code: the bundled fit took 0.16 s alone and up to 23 s with other
processes running (Arrow's CSV reader follows ``OMP_NUM_THREADS`` too). The Train stage is then
run once more (per repeat) with the default thread count, what a Lambda with its own vCPUs uses,
and reported beside. ``BENCH_OMP_THREADS=default`` measures with the default count only.

No goal is set for these numbers; the test checks that every gate was measured. The table is
printed and written to ``.conveyor/bench/training.json``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
ROWS = int(os.environ.get("BENCH_ROWS", "1000000"))
BUNDLED_REPEATS = int(os.environ.get("BENCH_TRAINING_REPEATS", "5"))
THREADS = os.environ.get("BENCH_OMP_THREADS", "1")
DEFAULT_THREADS = "default"
RESULTS = ROOT / ".conveyor" / "bench" / "training.json"

sys.path.insert(0, str(HERE))
from training_data import SLICES, write_sets  # noqa: E402
from training_stage import GATE_PARTS  # noqa: E402

TRAIN_STEPS = ("read", "check", "train", "export", "parity", "profile", "write")
GATE_STEPS = tuple(GATE_PARTS)
GATE_LABELS = {
    "metric_vs_champion": "metric vs champion",
    "parity_gate": "parity gate (judges the Train stage's record)",
    "slices": "slices",
    "robustness": "noise robustness",
    "agreement": "agreement with champion",
    "importance": "permutation importance",
    "latency_size": "latency + size",
}
EVERY_GATE = {
    "primary_metric_vs_champion",
    "onnx_parity",
    "onnx_label_agreement",
    "slice_gap",
    "noise_robustness",
    "inference_agreement",
    "explainability",
    "latency_single",
    "latency_batch",
    "model_size",
}


def _run(stage: str, *args: Path, threads: str = THREADS, timeout: float = 3600) -> dict[str, Any]:
    command = [sys.executable, str(HERE / "training_stage.py"), stage, *map(str, args)]
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    if threads != DEFAULT_THREADS:
        env["OMP_NUM_THREADS"] = threads
    completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False, cwd=ROOT, env=env)
    if completed.returncode != 0:
        raise RuntimeError(f"{stage} {args[0]} failed ({completed.returncode}):\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The last run, with every time the median over ``runs`` (and its range) and the largest peak RSS."""
    merged = dict(runs[-1])
    for key in ("seconds", "parts"):
        names = set().union(*(run[key] for run in runs))
        merged[key] = {name: statistics.median(run[key].get(name, 0.0) for run in runs) for name in names}
        merged[f"{key}_range"] = {
            name: [min(run[key].get(name, 0.0) for run in runs), max(run[key].get(name, 0.0) for run in runs)]
            for name in names
        }
    merged["peak_rss_mb"] = max(run["peak_rss_mb"] for run in runs)
    merged["cpu_seconds"] = statistics.median(run["cpu_seconds"] for run in runs)
    merged["load_average"] = [run["load_average"] for run in runs]  # per run: machine load at start, end
    merged["runs"] = len(runs)
    return merged


def _summary(
    champion: dict[str, Any], train: dict[str, Any], evaluate: dict[str, Any], default: dict[str, Any] | None
) -> dict[str, Any]:
    seconds, parts = train["seconds"], train["parts"]
    train_total = sum(seconds[step] for step in TRAIN_STEPS)
    gates = evaluate["parts"]
    gate_seconds = evaluate["seconds"]["gates"]
    evaluate_total = evaluate["seconds"]["load"] + gate_seconds
    return {
        "rows": train["rows"],
        "n_train": train["n_train"],
        "n_holdout": train["n_holdout"],
        "champion_rows": champion["rows"],
        "split": train["split"],
        "train_steps": {step: seconds[step] for step in TRAIN_STEPS},
        "train_parts": {name: parts.get(f"train.{name}") for name in ("split", "fit", "rest")},
        "train_total": train_total,
        "evaluate_steps": {"load": evaluate["seconds"]["load"], **{part: gates.get(part) for part in GATE_STEPS}},
        "gates_other": gates.get("other"),
        "gates_total": gate_seconds,
        "ranges": {
            "train": {**train["seconds_range"], **train["parts_range"]},
            "evaluate": {**evaluate["seconds_range"], **evaluate["parts_range"]},
        },
        "evaluate_total": evaluate_total,
        "total": train_total + evaluate_total,
        "openmp_threads": train["openmp_threads"],
        "default_threads": None
        if default is None
        else {
            "openmp_threads": default["openmp_threads"],
            "train_total": sum(default["seconds"][step] for step in TRAIN_STEPS),
            "steps": {step: default["seconds"][step] for step in TRAIN_STEPS},
            "fit": default["parts"].get("train.fit"),
            "ranges": {**default["seconds_range"], **default["parts_range"]},
            "peak_rss_mb": default["peak_rss_mb"],
            "load_average": default["load_average"],
            "cpu_seconds": default["cpu_seconds"],
        },
        "load_average": {"train": train["load_average"], "evaluate": evaluate["load_average"]},
        "cpu_seconds": {"train": train["cpu_seconds"], "evaluate": evaluate["cpu_seconds"]},
        "import_seconds": {"train": seconds["import"], "evaluate": evaluate["seconds"]["import"]},
        "peak_rss_mb": {"train": train["peak_rss_mb"], "evaluate": evaluate["peak_rss_mb"]},
        "champion_train": {"seconds": champion["seconds"], "peak_rss_mb": champion["peak_rss_mb"]},
        "runs": train.get("runs", 1),
        "metrics": {"candidate": evaluate["candidate_metrics"], "champion": evaluate["champion_metrics"]},
        "parity": train["parity"],
        "n_iter": train["n_iter"],
        "onnx_bytes": train["onnx_bytes"],
        "holdout_parquet_bytes": train["holdout_parquet_bytes"],
        "profile_bytes": train["profile_bytes"],
        "frame_mb": train["frame_mb"],
        "passed": evaluate["passed"],
        "reason": evaluate["reason"],
        "gates": evaluate["gates"],
        "latency": evaluate["latency"],
        "missing_parts": sorted({*train["missing_parts"], *evaluate["missing_parts"]}),
    }


def _s(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3f}" if value < 1 else f"{value:.2f}" if value < 10 else f"{value:.1f}"


def _table(summary: dict[str, dict[str, Any]]) -> str:
    names = list(summary)
    rows: list[list[str]] = [["step (seconds)", *(f"{name} ({summary[name]['rows']:,} rows)" for name in names)]]

    def row(label: str, get: Any) -> None:
        rows.append([label, *(get(summary[name]) for name in names)])

    row("Train: read CSV", lambda s: _s(s["train_steps"]["read"]))
    row("Train: check spec against data", lambda s: _s(s["train_steps"]["check"]))
    row("Train: train", lambda s: _s(s["train_steps"]["train"]))
    row("- of which grouped split", lambda s: _s(s["train_parts"]["split"]))
    row("- of which fit", lambda s: _s(s["train_parts"]["fit"]))
    row("- of which features + holdout metrics", lambda s: _s(s["train_parts"]["rest"]))
    row("Train: ONNX export", lambda s: _s(s["train_steps"]["export"]))
    row("Train: parity (sklearn vs onnxruntime)", lambda s: _s(s["train_steps"]["parity"]))
    row("Train: reference profile", lambda s: _s(s["train_steps"]["profile"]))
    row("Train: write artifacts", lambda s: _s(s["train_steps"]["write"]))
    row("**Train stage**", lambda s: _s(s["train_total"]))
    row("Evaluate: load holdout + 2 models", lambda s: _s(s["evaluate_steps"]["load"]))
    for part, label in GATE_LABELS.items():
        row(f"Evaluate: {label}", lambda s, part=part: _s(s["evaluate_steps"][part]))
    row("Evaluate: rest (target, judging)", lambda s: _s(s["gates_other"]))
    row("**Evaluate stage**", lambda s: _s(s["evaluate_total"]))
    row("**Train + export + all gates**", lambda s: _s(s["total"]))
    row("OpenMP threads of the runs above", lambda s: str(s["openmp_threads"]))
    row(
        "Train stage / fit, default threads",
        lambda s: (
            "n/a"
            if s["default_threads"] is None
            else f"{_s(s['default_threads']['train_total'])} / {_s(s['default_threads']['fit'])}"
            f" ({s['default_threads']['openmp_threads']} threads)"
        ),
    )
    row("peak RSS Train (MB)", lambda s: f"{s['peak_rss_mb']['train']:.0f}")
    row("peak RSS Evaluate (MB)", lambda s: f"{s['peak_rss_mb']['evaluate']:.0f}")
    row("rows train / holdout", lambda s: f"{s['n_train']:,} / {s['n_holdout']:,}")
    row(
        "ROC AUC candidate / champion",
        lambda s: f"{s['metrics']['candidate']['roc_auc']:.3f} / {s['metrics']['champion']['roc_auc']:.3f}",
    )
    row("gates failed", lambda s: ", ".join(g["name"] for g in s["gates"] if not g["passed"]) or "none")
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def bench_sets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict[str, Path]]]:
    directory = tmp_path_factory.mktemp("training")
    started = time.perf_counter()
    sets = write_sets(directory, ROWS)
    sizes = ", ".join(f"{name} {paths['data'].stat().st_size / 1e6:.1f} MB" for name, paths in sets.items())
    print(f"\nwrote the bundled set and {ROWS:,} resampled rows in {time.perf_counter() - started:.1f} s: {sizes}")
    return directory, sets


def test_train_export_and_gate(bench_sets: tuple[Path, dict[str, dict[str, Path]]]) -> None:
    directory, sets = bench_sets
    spec = directory / "spec.yaml"
    summary: dict[str, dict[str, Any]] = {}
    for name, paths in sets.items():
        champion_dir, candidate_dir = directory / name / "champion", directory / name / "candidate"
        other_dir = directory / name / "candidate-default-threads"
        champion = _run("train", paths["champion"], spec, champion_dir)
        repeats = BUNDLED_REPEATS if name == "bundled" else 1
        trains, evaluations, defaults = [], [], []
        for _ in range(repeats):
            trains.append(_run("train", paths["data"], spec, candidate_dir))
            evaluations.append(_run("evaluate", candidate_dir, champion_dir, spec))
            if THREADS != DEFAULT_THREADS:  # the Train stage again, with the thread count a Lambda uses
                defaults.append(_run("train", paths["data"], spec, other_dir, threads=DEFAULT_THREADS))
        default = _median_run(defaults) if defaults else None
        summary[name] = _summary(champion, _median_run(trains), _median_run(evaluations), default)

    table = _table(summary)
    print(
        f"\nTrain + export + all gates, {os.cpu_count()} cores, OMP_NUM_THREADS={THREADS}; doctor-visits.yaml"
        f" + slices {SLICES}; bundled: median of {BUNDLED_REPEATS} runs\n{table}"
    )
    for name, numbers in summary.items():
        print(f"{name}: {'passed' if numbers['passed'] else 'rejected'}: {numbers['reason']}")
        if numbers["missing_parts"]:
            print(f"{name}: not timed separately (renamed?): {', '.join(numbers['missing_parts'])}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {"rows": ROWS, "cores": os.cpu_count(), "slices": SLICES, "results": summary, "table": table}, indent=2
        )
    )

    for name, numbers in summary.items():
        recorded = {gate["name"]: gate for gate in numbers["gates"]}
        assert set(recorded) >= EVERY_GATE, f"{name}: gates missing: {sorted(EVERY_GATE - set(recorded))}"
        # the champion was trained on other rows of the same patients' history: both gates that need it ran
        assert recorded["primary_metric_vs_champion"]["threshold"] is not None, recorded["primary_metric_vs_champion"]
        assert recorded["inference_agreement"]["value"] is not None, recorded["inference_agreement"]
        assert recorded["slice_gap"]["value"] is not None, recorded["slice_gap"]
        # measured, whatever the verdict: at 1,000,000 rows parity fails (see docs/benchmarks-training.md)
        assert numbers["parity"]["rows"] == numbers["n_holdout"], numbers["parity"]
