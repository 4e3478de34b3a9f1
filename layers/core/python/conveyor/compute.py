"""``training.compute``: where a retrain runs, and what ``auto`` picks.

The one training image runs as the Train Lambda, as an ECS Fargate task or as a SageMaker training job
(``functions/train/container.py``); the state machine branches on the choice ("Choose compute" ->
"Training compute?"). ``auto`` picks the smallest compute whose memory holds the training run, from
what is known before training: the rows and bytes of the data objects the window selects (the
validation reports recorded both for every accepted object).

The memory model is the training benchmarks' (``tests/benchmarks/test_training_bench.py``,
``test_compute_bench.py``): the Train stage's peak resident memory was 303 MB at 19,609 rows, 937 MB
at 1,000,000 rows and 2,722 MB at 5,000,000 rows (a 294 MB CSV) of the bundled schema; the model takes
the steeper slope, 650 MB per million rows above a 300 MB base, and 8 times a CSV's size (9.2 at 5M
rows: the larger of the two estimates is used). A compute is picked when the estimate stays under
``HEADROOM`` of its memory, and (Lambda only) the estimated time under ``HEADROOM`` of its 15 minutes:
35 s per million rows on one core (33 s measured at 5M rows on a loaded machine, 13.5 s at 1M quiet).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

Compute = Literal["lambda", "fargate", "sagemaker"]
ComputeSetting = Literal["auto", "lambda", "fargate", "sagemaker"]
AUTO: Final = "auto"
LAMBDA: Final = "lambda"
FARGATE: Final = "fargate"
SAGEMAKER: Final = "sagemaker"
COMPUTES: tuple[Compute, ...] = (LAMBDA, FARGATE, SAGEMAKER)  # smallest first

BASE_MB: Final = 300.0
MB_PER_MILLION_ROWS: Final = 650.0
MEMORY_PER_DATA_BYTE: Final = 8.0
SECONDS_PER_MILLION_ROWS: Final = 35.0
HEADROOM: Final = 0.8


@dataclass(frozen=True)
class Capacity:
    """What one compute gives a training run: memory (MB) and time (seconds; None: no limit of its own)."""

    memory_mb: int
    seconds: int | None


# The Train function's memory (infra.constants.FUNCTION_SIZING) and Lambda's 15 minutes; the Fargate
# task's 120 GB (its largest size, 16 vCPU); SageMaker's instance (ml.r5.16xlarge, 512 GB) and its
# stopping condition (infra reads these numbers, so the README's limits and the stack agree).
CAPACITY: Mapping[Compute, Capacity] = {
    LAMBDA: Capacity(memory_mb=3008, seconds=15 * 60),
    FARGATE: Capacity(memory_mb=122880, seconds=None),
    SAGEMAKER: Capacity(memory_mb=524288, seconds=24 * 3600),
}
FARGATE_CPU: Final = 16384  # 16 vCPU: the only Fargate size with 120 GB (the task definition's size)
# Each run's task size (the task's cpu and memory overrides), smallest first: (vCPU units, MiB), Fargate
# combinations; a run gets the smallest whose memory holds its estimate (within HEADROOM).
FARGATE_SIZES: tuple[tuple[int, int], ...] = ((2048, 16384), (4096, 30720), (8192, 61440), (16384, 122880))
SAGEMAKER_INSTANCE: Final = "r5.16xlarge"  # ml.r5.16xlarge

# How the training image's container learns its input (functions/train/container.py reads, the state
# machine's "Train on Fargate" / "Train on SageMaker" set): the staged input's artifact-bucket key.
ECS_INPUT_ENV: Final = "CONVEYOR_TRAIN_INPUT"  # the ECS task's container override
INPUT_HYPERPARAMETER: Final = "input_key"  # the SageMaker job's hyperparameter
SAGEMAKER_COMMAND: Final = "train"  # SageMaker runs a training image with this argument


@dataclass(frozen=True)
class TrainingLoad:
    """What a retrain will read: rows and bytes of the selected data objects."""

    rows: int
    size_bytes: int
    objects: int


def fargate_size(load: TrainingLoad) -> tuple[int, int]:
    """The Fargate task size (cpu units, memory MiB) for ``load``: the smallest that holds it, else the largest."""
    needed = estimated_mb(load)
    return next(((cpu, mib) for cpu, mib in FARGATE_SIZES if needed <= HEADROOM * mib), FARGATE_SIZES[-1])


@dataclass(frozen=True)
class ComputeChoice:
    compute: Compute
    requested: ComputeSetting
    estimated_mb: float
    estimated_seconds: float
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "compute": self.compute,
            "requested": self.requested,
            "estimated_mb": round(self.estimated_mb, 1),
            "estimated_seconds": round(self.estimated_seconds, 1),
            "reason": self.reason,
        }


def training_load(datasets: Iterable[Mapping[str, Any]], last_rows: int | None = None) -> TrainingLoad:
    """The rows and bytes of ``datasets`` (registry items with ``rows`` and ``size``); with ``last_rows``
    (``training.window.rows``) the frame is cut to that many rows, and its bytes in proportion."""
    chosen = list(datasets)
    rows = sum(int(d.get("rows") or 0) for d in chosen)
    size = sum(int(d.get("size") or 0) for d in chosen)
    if last_rows is not None and rows > last_rows:
        size = int(size * last_rows / rows)
        rows = last_rows
    return TrainingLoad(rows=rows, size_bytes=size, objects=len(chosen))


def estimated_mb(load: TrainingLoad) -> float:
    """Peak memory of a training run on ``load`` (the larger of the rows' and the bytes' estimates)."""
    by_rows = load.rows / 1e6 * MB_PER_MILLION_ROWS
    by_bytes = load.size_bytes / 1e6 * MEMORY_PER_DATA_BYTE
    return BASE_MB + max(by_rows, by_bytes)


def estimated_seconds(load: TrainingLoad) -> float:
    return load.rows / 1e6 * SECONDS_PER_MILLION_ROWS


def fits(compute: Compute, load: TrainingLoad) -> bool:
    capacity = CAPACITY[compute]
    if estimated_mb(load) > HEADROOM * capacity.memory_mb:
        return False
    return capacity.seconds is None or estimated_seconds(load) <= HEADROOM * capacity.seconds


def largest_fitting(compute: Compute) -> TrainingLoad:
    """The most rows and bytes ``auto`` sends to ``compute`` (the README's limits)."""
    capacity = CAPACITY[compute]
    room = HEADROOM * capacity.memory_mb - BASE_MB
    rows = room / MB_PER_MILLION_ROWS * 1e6
    if capacity.seconds is not None:
        rows = min(rows, HEADROOM * capacity.seconds / SECONDS_PER_MILLION_ROWS * 1e6)
    return TrainingLoad(rows=int(rows), size_bytes=int(room / MEMORY_PER_DATA_BYTE * 1e6), objects=0)


def choose_compute(requested: ComputeSetting, load: TrainingLoad) -> ComputeChoice:
    """The compute a retrain on ``load`` runs on: the spec's, or (``auto``) the smallest that fits."""
    memory, seconds = estimated_mb(load), estimated_seconds(load)
    if requested != AUTO:
        return ComputeChoice(requested, requested, memory, seconds, f"training.compute is {requested}")
    for compute in COMPUTES:
        if fits(compute, load):
            reason = (
                f"auto: {load.rows:,} rows, {load.size_bytes / 1e6:,.1f} MB need about {memory:,.0f} MB and "
                f"{seconds:,.0f} s; {compute} has {CAPACITY[compute].memory_mb:,} MB"
            )
            return ComputeChoice(compute, requested, memory, seconds, reason)
    reason = f"auto: {load.rows:,} rows need about {memory:,.0f} MB, more than every compute holds; the largest"
    return ComputeChoice(SAGEMAKER, requested, memory, seconds, reason)
