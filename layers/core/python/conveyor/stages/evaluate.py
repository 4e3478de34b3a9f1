"""Stage 4: score candidate and champion on the same holdout; apply every gate.

Gates: the primary metric against the champion, ONNX parity, slices, noise robustness, agreement
with the champion, explainability, latency and size. Each is recorded with its measured value and
threshold; the full measurements (slices, importances, latencies) are stored beside the candidate.
The gates are put together by :func:`conveyor.gates.assess_candidate`, which ``conveyor evaluate``
runs too.
"""

from __future__ import annotations

import io
from typing import Any

import pandas as pd

from conveyor.gates import assess_candidate, json_safe, thresholds_of
from conveyor.registry import load_verified
from conveyor.scoring import OnnxModel
from conveyor.spec import load_spec
from conveyor.stages.context import PipelineContext, StageEvent

__all__ = ["evaluate", "thresholds_of"]


def evaluate(event: StageEvent, ctx: PipelineContext) -> dict[str, Any]:
    training = event.require("training")
    model = str(training["model"])
    bucket = ctx.settings.artifact_bucket
    spec = load_spec(ctx.store.get(bucket, training["spec_key"]))
    candidate_bytes = load_verified(ctx.store, bucket, training["candidate_key"], training["sha256"])
    candidate = OnnxModel(candidate_bytes)
    holdout = pd.read_parquet(io.BytesIO(ctx.store.get(bucket, training["holdout_key"])))
    champion_version = ctx.registry.champion(model)
    champion = None
    if champion_version is not None:
        champion = OnnxModel(load_verified(ctx.store, bucket, champion_version.artifact_key, champion_version.sha256))
    assessment = assess_candidate(
        candidate,
        champion,
        holdout,
        spec,
        candidate_bytes=candidate_bytes,
        parity=training.get("parity"),
        parity_missing_reason="the Train stage recorded no parity measurement",
    )
    result = assessment.to_dict()
    details_key = training["candidate_key"].rsplit("/", 1)[0] + "/gates.json"
    ctx.put_json(bucket, details_key, json_safe(assessment.details()))
    result["details_key"] = details_key
    result["champion_version"] = champion_version.version if champion_version else None
    return result
