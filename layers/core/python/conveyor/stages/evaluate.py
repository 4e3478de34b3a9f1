"""Stage 4: score candidate and champion on the same holdout; apply every gate.

Gates: the primary metric against the champion, ONNX parity, slices, noise robustness, agreement
with the champion, explainability, latency and size. Each is recorded with its measured value and
threshold; the full measurements (slices, importances, latencies) are stored beside the candidate.
"""

from __future__ import annotations

import io
from typing import Any

import pandas as pd

from conveyor.evaluation import evaluate_candidate
from conveyor.gates import GateThresholds, json_safe, run_gates
from conveyor.registry import load_verified
from conveyor.scoring import OnnxModel
from conveyor.spec import ModelSpec, load_spec
from conveyor.stages.context import PipelineContext, StageEvent


def thresholds_of(spec: ModelSpec) -> GateThresholds:
    """The spec's gate thresholds, over the defaults for anything it leaves out."""
    fields = GateThresholds.__dataclass_fields__
    given = {k: v for k, v in spec.gates.model_dump().items() if k in fields and v is not None}
    return GateThresholds(**given)


def _parity_gate(parity: dict[str, Any]) -> dict[str, Any]:
    value, tolerance = float(parity["max_abs_diff"]), float(parity["tolerance"])
    return {
        "name": "onnx_parity",
        "value": value,
        "threshold": tolerance,
        "passed": value <= tolerance,
        "message": f"max |sklearn - onnx| = {value:.2e} on {parity['rows']} holdout rows (allowed {tolerance:.0e})",
    }


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
    result = evaluate_candidate(candidate, champion, holdout, spec).to_dict()
    report = run_gates(
        candidate, champion, holdout, spec, candidate_bytes=candidate_bytes, thresholds=thresholds_of(spec)
    )
    details = report.to_dict()
    gates = [*result.get("gates", []), _parity_gate(training["parity"]), *details["gates"]]
    failed = [g for g in gates if not g["passed"]]
    result["gates"] = gates
    result["passed"] = not failed
    if failed:
        result["reason"] = "; ".join(str(g["message"]) for g in failed)
    details_key = training["candidate_key"].rsplit("/", 1)[0] + "/gates.json"
    ctx.put_json(bucket, details_key, json_safe({k: v for k, v in details.items() if k != "gates"}))
    result["details_key"] = details_key
    result["champion_version"] = champion_version.version if champion_version else None
    return result
