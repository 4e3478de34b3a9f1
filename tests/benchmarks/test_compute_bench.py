"""Training at ``BENCH_COMPUTE_ROWS`` (default 5,000,000) rows through the compute ``auto`` picks for it.

The rows are the bundled German health data resampled by patient (training_data.py), written as CSV
here (never committed). ``conveyor.compute.choose_compute("auto", ...)`` picks the compute from their
rows and bytes, as "Choose compute" does from the registry's records; the training then runs locally
in its own process through the Train stage's domain work (training_stage.py ``train``: read the CSV,
``conveyor.training.build_candidate``: check, fit, ONNX export, parity, profile; write the artifacts),
which is what the picked compute's container runs (``functions/train/container.py`` ->
``train_from_pointer`` -> ``train_candidate``), minus S3.

Measured: wall time of the training process and its peak resident memory
(``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss``: the generation runs in this process, the training
is the only child). One OpenMP thread unless ``BENCH_OMP_THREADS`` says otherwise (see
test_training_bench.py). The numbers are printed and written to ``.conveyor/bench/compute.json``.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
ROWS = int(os.environ.get("BENCH_COMPUTE_ROWS", "5000000"))
THREADS = os.environ.get("BENCH_OMP_THREADS", "1")
RESULTS = ROOT / ".conveyor" / "bench" / "compute.json"

sys.path.insert(0, str(HERE))
from training_data import bench_spec_text, resampled  # noqa: E402

from conveyor.compute import CAPACITY, choose_compute, estimated_mb, fargate_size, training_load  # noqa: E402


def test_training_at_scale_through_the_auto_compute(tmp_path: Path) -> None:
    started = time.perf_counter()
    data = tmp_path / "data.csv"
    resampled(ROWS).to_csv(data, index=False)
    spec = tmp_path / "spec.yaml"
    spec.write_text(bench_spec_text())
    generated = time.perf_counter() - started
    load = training_load([{"rows": ROWS, "size": data.stat().st_size}])
    choice = choose_compute("auto", load)

    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    if THREADS != "default":
        env["OMP_NUM_THREADS"] = THREADS
    command = [sys.executable, str(HERE / "training_stage.py"), "train", str(data), str(spec), str(tmp_path / "out")]
    started = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT, env=env)
    seconds = time.perf_counter() - started
    assert completed.returncode == 0, completed.stderr[-3000:]
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
    record = json.loads(completed.stdout.strip().splitlines()[-1])
    summary = {
        "rows": ROWS,
        "csv_mb": round(load.size_bytes / 1e6, 1),
        "compute": choice.compute,
        "fargate_task": "{} vCPU / {} GB".format(*(n // 1024 for n in fargate_size(load))),
        "reason": choice.reason,
        "estimated_mb": round(estimated_mb(load)),
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(peak_mb),
        "steps": {name: round(value, 2) for name, value in record["seconds"].items()},
        "openmp_threads": THREADS,
        "generate_seconds": round(generated, 1),
        "load_average": os.getloadavg(),
    }
    print(f"\ntraining at {ROWS:,} rows through {choice.compute}: {json.dumps(summary, indent=2)}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2))
    # The run fits the compute auto picked for it (its memory), and the estimate was not below the truth.
    assert peak_mb <= CAPACITY[choice.compute].memory_mb, summary
    assert record["rows"] == ROWS
