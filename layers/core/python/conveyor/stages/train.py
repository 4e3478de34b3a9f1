"""Stage 2: train a candidate on every accepted data object of the model, export it to ONNX.

The work itself is :func:`conveyor.training.build_candidate`, which ``conveyor train`` runs too.
"Choose compute" (:func:`plan_training`) picks where it runs (conveyor.compute); on Fargate or SageMaker
the training image's container (``functions/train/container.py``) runs :func:`train_from_pointer`.
"""

from __future__ import annotations

import io
import json
import time
import uuid
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any

import pandas as pd

from conveyor import layout
from conveyor.compute import choose_compute, fargate_size, training_load
from conveyor.contract import contract_from_spec
from conveyor.errors import TrainingError
from conveyor.spec import load_spec
from conveyor.stages.context import PipelineContext, StageEvent
from conveyor.tabular import read_table
from conveyor.training import LIBRARIES, build_candidate, library_versions
from conveyor.window import window_datasets, window_rows
from conveyor.workflow import TrainingPlan, TrainingResult, TrainInput

__all__ = ["LIBRARIES", "library_versions", "plan_training", "train_candidate", "train_from_pointer"]

# What Train stages for Evaluate and Register (conveyor.layout.staging_key).
_STAGED = (layout.CANDIDATE, layout.HOLDOUT, layout.SPEC_FILE, layout.PROFILE, layout.DATA_MANIFEST)


def train_candidate(
    event: StageEvent[TrainInput], ctx: PipelineContext, *, clock: Callable[[], float] = time.time
) -> TrainingResult:
    """Train on the model's accepted data (``training.window`` bounds it); ``clock`` dates a window in days.

    The data objects read go to a manifest in S3 (``data_key``), not into the state: that list
    grows with every drop, the state is limited to 256 KiB.
    """
    model = str(event.require("validation", "model"))
    spec_bytes = ctx.store.get(ctx.settings.artifact_bucket, layout.spec_key(model))
    spec = load_spec(spec_bytes)
    datasets = window_datasets(ctx.registry.datasets(model), spec.training.window, clock())
    if not datasets:
        raise TrainingError(
            f"model {model!r} has no accepted data to train on (none accepted yet, or every object excluded)",
            details={"model": model},
        )
    frames = [
        read_table(ctx.store.get(d["bucket"], d["key"], d.get("version_id")), PurePosixPath(d["key"]).name)
        for d in datasets
    ]
    frame = pd.concat(frames, ignore_index=True)
    last = window_rows(spec.training.window)
    if last is not None and len(frame) > last:
        frame = frame.iloc[-last:].reset_index(drop=True)
    candidate = build_candidate(frame, spec)
    result = candidate.result
    keys = {name: layout.staging_key(model, event.execution_name, name) for name in _STAGED}
    ctx.store.put(ctx.settings.artifact_bucket, keys[layout.CANDIDATE], candidate.onnx)
    buffer = io.BytesIO()
    result.holdout_df.to_parquet(buffer, index=False)
    ctx.store.put(ctx.settings.artifact_bucket, keys[layout.HOLDOUT], buffer.getvalue())
    ctx.store.put(ctx.settings.artifact_bucket, keys[layout.SPEC_FILE], spec_bytes)
    ctx.put_json(ctx.settings.artifact_bucket, keys[layout.PROFILE], candidate.profile)
    ctx.put_json(ctx.settings.artifact_bucket, keys[layout.DATA_MANIFEST], [_lineage(d) for d in datasets])
    return {
        "model": model,
        "candidate_key": keys[layout.CANDIDATE],
        "sha256": candidate.sha256,
        "holdout_key": keys[layout.HOLDOUT],
        "spec_key": keys[layout.SPEC_FILE],
        "profile_key": keys[layout.PROFILE],
        "spec_hash": candidate.spec_hash,
        # What the predict function checks requests against; Register (a zip function without
        # yaml or pydantic) stores it as handed over here.
        "contract": contract_from_spec(spec).to_dict(),
        "metrics": result.metrics,
        "parity": candidate.parity.to_dict(),
        "split": candidate.split,
        "n_train": result.n_train,
        "n_holdout": result.n_holdout,
        "estimator": spec.estimator.type,
        "approval": spec.deployment.approval,
        # Every parameter the estimator was fitted with (defaults and seeds included), not just the spec's.
        "params": {name: _json_param(value) for name, value in sorted(result.params.items())},
        "data_key": keys[layout.DATA_MANIFEST],
        "data_objects": len(datasets),
        "rows": len(frame),
        "libraries": library_versions(),
        "size_bytes": len(candidate.onnx),
        "seconds": {name: round(value, 3) for name, value in candidate.seconds.items()},
    }


def plan_training(
    event: StageEvent[TrainInput], ctx: PipelineContext, *, clock: Callable[[], float] = time.time
) -> TrainingPlan:
    """ "Choose compute": where this retrain runs (``training.compute``; ``auto`` by the rows and bytes the
    window selects, from the registry's records of the accepted objects). The stage's input is staged for
    a container, which writes its result to ``result_key``: the state holds both keys, never the data."""
    model = str(event.require("validation", "model"))
    spec = load_spec(ctx.store.get(ctx.settings.artifact_bucket, layout.spec_key(model)))
    datasets = window_datasets(ctx.registry.datasets(model), spec.training.window, clock())
    load = training_load(datasets, window_rows(spec.training.window))
    choice = choose_compute(spec.training.compute, load)
    cpu, memory = fargate_size(load)
    input_key = layout.staging_key(model, event.execution_name, layout.TRAINING_INPUT)
    # Only what Train reads (conveyor.workflow.TrainInput), not the whole state.
    ctx.put_json(
        ctx.settings.artifact_bucket,
        input_key,
        {"state": {"validation": {"model": model}}, "execution_id": event.execution_id},
    )
    return {
        "model": model,
        "compute": choice.compute,
        "requested": choice.requested,
        "reason": choice.reason,
        "estimated_mb": round(choice.estimated_mb, 1),
        "estimated_seconds": round(choice.estimated_seconds, 1),
        "rows": load.rows,
        "size_bytes": load.size_bytes,
        "data_objects": load.objects,
        "input_key": input_key,
        "result_key": layout.staging_key(model, event.execution_name, layout.TRAINING_RESULT),
        # On Fargate: the task's size (overrides of the task definition's 16 vCPU / 120 GB), as strings.
        "cpu": str(cpu),
        "memory_mib": str(memory),
        # SageMaker job names are unique in the account and region, at most 63 characters.
        "job_name": f"train-{model[:40]}-{uuid.uuid4().hex[:12]}",
    }


def train_from_pointer(input_key: str, ctx: PipelineContext) -> TrainingResult:
    """The container's run (ECS task or SageMaker job): read the staged input, train, and write the result
    beside it (layout.TRAINING_RESULT), where "Read training result" finds it."""
    result_key = layout.beside(input_key, layout.TRAINING_RESULT)
    try:
        event = StageEvent.parse(json.loads(ctx.store.get(ctx.settings.artifact_bucket, input_key)))
        result = train_candidate(event, ctx)
    except Exception as error:
        # The reader fails the state with the container's error (a stopped task's exit code says less).
        failure = {"error": {"type": type(error).__name__, "message": str(error)}}
        ctx.put_json(ctx.settings.artifact_bucket, result_key, failure)
        raise
    ctx.put_json(ctx.settings.artifact_bucket, result_key, result)
    return result


def _lineage(dataset: dict[str, Any]) -> dict[str, Any]:
    """A data object as the lineage records it; a split drop also names its original upload and the
    rows set aside (key, version, sha256, rows of each)."""
    entry = {k: dataset.get(k) for k in ("bucket", "key", "version_id", "etag", "sha256", "rows")}
    for part in ("original", "quarantined"):
        if dataset.get(part):
            entry[part] = {k: dataset[part].get(k) for k in ("bucket", "key", "version_id", "sha256", "rows")}
    return entry


def _json_param(value: Any) -> Any:
    """A parameter as JSON can hold it (numbers, strings, booleans, None, lists; anything else by repr)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_json_param(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_param(v) for k, v in value.items()}
    return repr(value)
