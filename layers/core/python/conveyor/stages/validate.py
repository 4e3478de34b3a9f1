"""Stage 1: validate a drop against the model's spec; move it to accepted/ or quarantine/."""

from __future__ import annotations

import json
import time
from pathlib import PurePosixPath
from typing import Any

from conveyor.dispatch import model_of
from conveyor.errors import ConveyorError
from conveyor.ports import ObjectMissing, ObjectRef
from conveyor.registry import sha256_hex, version_key
from conveyor.spec import ModelSpec, load_spec
from conveyor.stages.context import PipelineContext, StageEvent
from conveyor.validation import ValidationContext, ValidationReport, validate_bytes


def _rejected_without_data(model: str, source: str, message: str) -> dict[str, Any]:
    return {"verdict": "rejected", "model": model, "summary": f"{source}: {message}", "checks": []}


def _context(ctx: PipelineContext, model: str) -> ValidationContext:
    """What the gate knows beyond the file: earlier arrivals (hashes, usual size) and the champion's profile."""
    datasets = ctx.registry.datasets(model, include_excluded=True)
    hashes = frozenset(str(d["sha256"]) for d in datasets if d.get("sha256"))
    sizes = sorted(int(d["rows"]) for d in datasets if d.get("rows"))
    usual_rows = sizes[len(sizes) // 2] if sizes else None
    champion = ctx.registry.champion(model)
    if champion is None:
        return ValidationContext(usual_rows=usual_rows, accepted_hashes=hashes)
    try:
        profile = json.loads(
            ctx.store.get(ctx.settings.artifact_bucket, version_key(model, champion.version, "profile.json"))
        )
    except Exception:  # a version registered before profiles existed has none: validate without it
        return ValidationContext(usual_rows=usual_rows, accepted_hashes=hashes)
    context = ValidationContext.from_profile(profile, accepted_hashes=hashes)
    return ValidationContext(
        usual_rows=usual_rows, accepted_hashes=hashes, reference_categories=context.reference_categories
    )


def validate_drop(event: StageEvent, ctx: PipelineContext) -> dict[str, Any]:
    bucket = event.require("detail", "bucket", "name")
    obj = event.require("detail", "object")
    key = str(obj["key"])
    model = model_of(key)
    if model is None:
        return _rejected_without_data("", key, "not under {model}/incoming/")
    source = ObjectRef(bucket, key, obj.get("version-id"), obj.get("etag"), obj.get("size"))
    data = ctx.store.get(bucket, key, source.version_id)
    filename = PurePosixPath(key).name
    spec: ModelSpec | None = None
    try:
        spec = load_spec(ctx.store.get(ctx.settings.artifact_bucket, ctx.spec_key(model)))
    except ObjectMissing:
        spec_problem = (
            f"no spec for model {model}: upload s3://{ctx.settings.artifact_bucket}/{ctx.spec_key(model)} first"
        )
    except ConveyorError as error:
        spec_problem = f"the spec of model {model} is invalid: {error}"
    except Exception as error:
        spec_problem = f"no readable spec for model {model} ({type(error).__name__})"
    if spec is None:
        report_doc: dict[str, Any] = {
            "verdict": "rejected",
            "summary": spec_problem,
            "checks": [
                {
                    "name": "spec",
                    "severity": "error",
                    "passed": False,
                    "column": None,
                    "message": spec_problem,
                    "value": None,
                    "threshold": None,
                }
            ],
        }
        verdict = "rejected"
        summary = spec_problem
    else:
        report: ValidationReport = validate_bytes(data, filename, spec, context=_context(ctx, model))
        report_doc = report.to_dict()
        verdict = report.verdict
        summary = report.summary
    digest = sha256_hex(data)
    area = "accepted" if verdict == "accepted" else "quarantine"
    dest_key = f"{model}/{area}/{digest[:16]}/{filename}"
    moved = ctx.store.copy(source, bucket, dest_key)
    report_key = f"{dest_key}.report.json"
    report_doc = {**report_doc, "source": source.to_dict(), "sha256": digest, "stored_as": dest_key}
    ctx.put_json(bucket, report_key, report_doc)
    ctx.store.delete(bucket, key)  # versioned bucket: the incoming version stays retrievable
    result: dict[str, Any] = {
        "verdict": verdict,
        "model": model,
        "summary": f"{model}: {summary}" if filename in summary else f"{model}: {filename} {verdict}: {summary}",
        "report_key": report_key,
        "data_key": dest_key,
    }
    if verdict == "accepted":
        dataset = {
            "bucket": bucket,
            "key": dest_key,
            "version_id": moved.version_id,
            "etag": moved.etag,
            "sha256": digest,
            "size": len(data),
            "rows": report_doc.get("rows"),
            "source_key": key,
            "source_version_id": source.version_id,
            "accepted_at": time.time(),
        }
        result["dataset"] = dataset
        result["new_content"] = ctx.registry.record_dataset(model, dataset)
    return result
