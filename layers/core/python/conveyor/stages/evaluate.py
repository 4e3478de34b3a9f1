"""Stage 4: score candidate and champion on the same holdout; apply every gate.

Gates: the primary metric against the champion, ONNX parity, slices, noise robustness, agreement
with the champion, explainability, latency and size. Each is recorded with its measured value and
threshold; the full measurements (slices, importances, latencies) are stored beside the candidate.
The gates are put together by :func:`conveyor.gates.assess_candidate`, which ``conveyor evaluate``
runs too.
"""

from __future__ import annotations

import io
import time
from collections.abc import Mapping
from typing import Any, cast

import pandas as pd

from conveyor import layout
from conveyor.contract import MASK
from conveyor.deployment import capture_prefixes, read_capture_prefix
from conveyor.gates import assess_candidate, json_safe, thresholds_of
from conveyor.registry import load_verified
from conveyor.scoring import OnnxModel
from conveyor.spec import load_spec
from conveyor.stages.context import PipelineContext, StageEvent
from conveyor.workflow import EvaluateInput, EvaluationResult, TrainingResult

__all__ = ["evaluate", "thresholds_of"]


LIVE_WINDOW_SECONDS = 7 * 24 * 3600
LIVE_MAX_ROWS = 2000


def live_instances(
    ctx: PipelineContext,
    model: str,
    features: Mapping[str, str],
    *,
    now: float | None = None,
    window_seconds: float = LIVE_WINDOW_SECONDS,
    max_rows: int = LIVE_MAX_ROWS,
) -> list[dict[str, Any]]:
    """The newest rows the endpoint scored for ``model`` (capture records, docs/capture.md), for the
    agreement gate: served answers only (no shadow, no refusals), rows whose features were not
    masked, at most ``max_rows`` from the last ``window_seconds``, newest hours first."""
    bucket = ctx.settings.capture_bucket
    if not bucket:
        return []
    end = time.time() if now is None else now
    rows: list[dict[str, Any]] = []
    for prefix in reversed(capture_prefixes(model, end - window_seconds, end)):
        records = read_capture_prefix(ctx.store, bucket, prefix, model)
        for record in sorted(records, key=lambda r: -float(r.get("timestamp") or 0.0)):
            if not record.get("served") or int(record.get("status") or 0) != 200:
                continue
            for row in record.get("inputs") or []:
                if not isinstance(row, dict):
                    continue
                picked = {name: row.get(name) for name in features}
                if any(value == MASK for value in picked.values()):
                    continue  # a masked feature cannot be scored again
                rows.append(picked)
                if len(rows) >= max_rows:
                    return rows
    return rows


def evaluate(event: StageEvent[EvaluateInput], ctx: PipelineContext) -> EvaluationResult:
    training: TrainingResult = event.require("training")
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
    live = live_instances(ctx, model, candidate.features) if champion is not None else []
    assessment = assess_candidate(
        candidate,
        champion,
        holdout,
        spec,
        candidate_bytes=candidate_bytes,
        parity=training.get("parity"),
        parity_missing_reason="the Train stage recorded no parity measurement",
        live_instances=live,
    )
    details_key = layout.beside(training["candidate_key"], layout.GATES)
    ctx.put_json(bucket, details_key, json_safe(assessment.details()))
    result = {
        **assessment.to_dict(),
        "details_key": details_key,
        "champion_version": champion_version.version if champion_version else None,
    }
    return cast(EvaluationResult, result)
