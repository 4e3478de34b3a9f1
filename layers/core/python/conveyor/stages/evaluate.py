"""Stage 3: score candidate and champion on the same holdout; apply the gates."""

from __future__ import annotations

import io
from typing import Any

import pandas as pd

from conveyor.evaluation import evaluate_candidate
from conveyor.registry import load_verified
from conveyor.scoring import OnnxModel
from conveyor.spec import load_spec
from conveyor.stages.context import PipelineContext, StageEvent


def evaluate(event: StageEvent, ctx: PipelineContext) -> dict[str, Any]:
    training = event.require("training")
    model = str(training["model"])
    bucket = ctx.settings.artifact_bucket
    spec = load_spec(ctx.store.get(bucket, training["spec_key"]))
    candidate = OnnxModel(load_verified(ctx.store, bucket, training["candidate_key"], training["sha256"]))
    holdout = pd.read_parquet(io.BytesIO(ctx.store.get(bucket, training["holdout_key"])))
    champion_version = ctx.registry.champion(model)
    champion = None
    if champion_version is not None:
        champion = OnnxModel(load_verified(ctx.store, bucket, champion_version.artifact_key, champion_version.sha256))
    result = evaluate_candidate(candidate, champion, holdout, spec).to_dict()
    parity = training["parity"]
    parity_ok = float(parity["max_abs_diff"]) <= float(parity["tolerance"])
    result["gates"] = [
        *result.get("gates", []),
        {
            "name": "onnx_parity",
            "value": parity["max_abs_diff"],
            "threshold": parity["tolerance"],
            "passed": parity_ok,
            "message": f"max |sklearn - onnx| = {float(parity['max_abs_diff']):.2e} on {parity['rows']} holdout rows",
        },
    ]
    if not parity_ok:
        result["passed"] = False
        result["reason"] = f"ONNX parity {float(parity['max_abs_diff']):.2e} exceeds {float(parity['tolerance']):.0e}"
    result["champion_version"] = champion_version.version if champion_version else None
    return result
