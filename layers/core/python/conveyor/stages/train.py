"""Stage 2: train a candidate on every accepted data object of the model, export it to ONNX."""

from __future__ import annotations

import io
from importlib import metadata
from pathlib import PurePosixPath
from typing import Any

import pandas as pd

from conveyor.onnx_export import export_onnx, parity
from conveyor.profile import build_profile
from conveyor.registry import sha256_hex
from conveyor.spec import load_spec, spec_hash
from conveyor.stages.context import PipelineContext, StageEvent
from conveyor.tabular import read_table
from conveyor.training import train_model

LIBRARIES = ("scikit-learn", "skl2onnx", "onnx", "onnxruntime", "numpy", "pandas", "pyarrow")


def library_versions() -> dict[str, str]:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def train_candidate(event: StageEvent, ctx: PipelineContext) -> dict[str, Any]:
    model = str(event.require("validation", "model"))
    spec_bytes = ctx.store.get(ctx.settings.artifact_bucket, ctx.spec_key(model))
    spec = load_spec(spec_bytes)
    datasets = ctx.registry.datasets(model)
    frames = [
        read_table(ctx.store.get(d["bucket"], d["key"], d.get("version_id")), PurePosixPath(d["key"]).name)
        for d in datasets
    ]
    frame = pd.concat(frames, ignore_index=True)
    hashed = spec_hash(spec)
    result = train_model(frame, spec)
    onnx_bytes = export_onnx(result.pipeline, spec, classes=result.classes, spec_hash=hashed)
    check = parity(result.pipeline, onnx_bytes, result.holdout_df, spec)
    staging = f"{model}/staging/{event.execution_name}"
    digest = sha256_hex(onnx_bytes)
    ctx.store.put(ctx.settings.artifact_bucket, f"{staging}/candidate.onnx", onnx_bytes)
    buffer = io.BytesIO()
    result.holdout_df.to_parquet(buffer, index=False)
    ctx.store.put(ctx.settings.artifact_bucket, f"{staging}/holdout.parquet", buffer.getvalue())
    ctx.store.put(ctx.settings.artifact_bucket, f"{staging}/spec.yaml", spec_bytes)
    # The reference profile of what this candidate learned from: drift checks read it, never the data.
    profile = build_profile(result.train_df, spec).to_dict()
    ctx.put_json(ctx.settings.artifact_bucket, f"{staging}/profile.json", profile)
    return {
        "model": model,
        "candidate_key": f"{staging}/candidate.onnx",
        "sha256": digest,
        "holdout_key": f"{staging}/holdout.parquet",
        "spec_key": f"{staging}/spec.yaml",
        "profile_key": f"{staging}/profile.json",
        "spec_hash": hashed,
        "metrics": result.metrics,
        "parity": {
            "max_abs_diff": check.max_abs_diff,
            "label_agreement": check.label_agreement,
            "rows": check.rows,
            "tolerance": spec.gates.parity_tolerance,
        },
        "n_train": result.n_train,
        "n_holdout": result.n_holdout,
        "estimator": spec.estimator.type,
        "approval": spec.deployment.approval,
        "params": spec.estimator.params,
        "data": [{k: d.get(k) for k in ("bucket", "key", "version_id", "etag", "sha256", "rows")} for d in datasets],
        "libraries": library_versions(),
        "size_bytes": len(onnx_bytes),
    }
