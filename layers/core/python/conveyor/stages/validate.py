"""Stage 1: validate a drop against the model's spec; move it to accepted/ or quarantine/.

With rows set aside (``validation.max_bad_row_share``) the drop is split instead: the original,
as received, at ``{model}/accepted/{sha16}/original/{file}``; the accepted rows at
``{model}/accepted/{sha16}/{file}`` (what training and drift read); the rows set aside, with a
reason each, at ``{model}/quarantine/{sha16}/{file}``; the report beside both parts. ``sha16`` is
the original upload's, and the dataset record keeps its sha256 (``source_sha256``) so a repeat
of the same upload is still recognised.
"""

from __future__ import annotations

import json
import time
from pathlib import PurePosixPath
from typing import Any

from conveyor import layout
from conveyor.errors import ConveyorError
from conveyor.ports import ObjectMissing, ObjectRef
from conveyor.registry import sha256_hex
from conveyor.spec import ModelSpec, load_spec
from conveyor.stages.context import PipelineContext, StageEvent
from conveyor.validation import RowSplit, ValidationContext, ValidationReport, part_bytes, validate_and_split
from conveyor.workflow import (
    ACCEPTED,
    REJECTED,
    DataPart,
    DatasetRecord,
    ValidateInput,
    ValidationResult,
    ValidationVerdict,
)


def _rejected_without_data(model: str, source: str, message: str) -> ValidationResult:
    return {"verdict": REJECTED, "model": model, "summary": f"{source}: {message}", "checks": []}


def _context(ctx: PipelineContext, model: str) -> ValidationContext:
    """What the gate knows beyond the file: earlier arrivals (hashes, usual size) and the champion's profile."""
    datasets = ctx.registry.datasets(model, include_excluded=True)
    # a split drop is recorded by its accepted part: its original upload's sha256 counts as seen too
    hashes = frozenset(str(d[k]) for d in datasets for k in ("sha256", "source_sha256") if d.get(k))
    sizes = sorted(int(d["rows"]) for d in datasets if d.get("rows"))
    usual_rows = sizes[len(sizes) // 2] if sizes else None
    champion = ctx.registry.champion(model)
    if champion is None:
        return ValidationContext(usual_rows=usual_rows, accepted_hashes=hashes)
    try:
        profile = json.loads(
            ctx.store.get(ctx.settings.artifact_bucket, layout.version_key(model, champion.version, layout.PROFILE))
        )
    except Exception:  # a version registered before profiles existed has none: validate without it
        return ValidationContext(usual_rows=usual_rows, accepted_hashes=hashes)
    context = ValidationContext.from_profile(profile, accepted_hashes=hashes)
    return ValidationContext(
        usual_rows=usual_rows, accepted_hashes=hashes, reference_categories=context.reference_categories
    )


def validate_drop(event: StageEvent[ValidateInput], ctx: PipelineContext) -> ValidationResult:
    bucket = event.require("detail", "bucket", "name")
    obj = event.require("detail", "object")
    key = str(obj["key"])
    model = layout.model_of_incoming(key)
    if model is None:
        return _rejected_without_data("", key, "not under {model}/incoming/")
    source = ObjectRef(bucket, key, obj.get("version-id"), obj.get("etag"), obj.get("size"))
    data = ctx.store.get(bucket, key, source.version_id)
    filename = PurePosixPath(key).name
    spec: ModelSpec | None = None
    try:
        spec = load_spec(ctx.store.get(ctx.settings.artifact_bucket, layout.spec_key(model)))
    except ObjectMissing:
        spec_problem = (
            f"no spec for model {model}: upload s3://{ctx.settings.artifact_bucket}/{layout.spec_key(model)} first"
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
        verdict: ValidationVerdict = REJECTED
        summary = spec_problem
    else:
        report: ValidationReport
        report, split = validate_and_split(data, filename, spec, context=_context(ctx, model))
        report_doc = report.to_dict()
        verdict = report.verdict
        summary = report.summary
        if split is not None:
            return _accept_split(ctx, source, model, data, report_doc, split)
    digest = sha256_hex(data)
    dest_key = layout.stored_data_key(model, accepted=verdict == ACCEPTED, sha256=digest, filename=filename)
    moved = ctx.store.copy(source, bucket, dest_key)
    report_key = layout.validation_report_key(dest_key)
    report_doc = {**report_doc, "source": source.to_dict(), "sha256": digest, "stored_as": dest_key}
    ctx.put_json(bucket, report_key, report_doc)
    ctx.store.delete(bucket, key)  # versioned bucket: the incoming version stays retrievable
    result: ValidationResult = {
        "verdict": verdict,
        "model": model,
        "summary": f"{model}: {summary}" if filename in summary else f"{model}: {filename} {verdict}: {summary}",
        "report_key": report_key,
        "data_key": dest_key,
    }
    if verdict == ACCEPTED:
        dataset: DatasetRecord = {
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


def _part(ref: ObjectRef, data: bytes, rows: int) -> DataPart:
    return {
        "bucket": ref.bucket,
        "key": ref.key,
        "version_id": ref.version_id,
        "etag": ref.etag,
        "sha256": sha256_hex(data),
        "size": len(data),
        "rows": rows,
    }


def _accept_split(
    ctx: PipelineContext, source: ObjectRef, model: str, data: bytes, report_doc: dict[str, Any], split: RowSplit
) -> ValidationResult:
    """Store the original, the accepted rows and the quarantined rows; record the accepted part as the
    dataset, with the other two beside it in its record (and so in the lineage of what trains on it)."""
    bucket, filename, digest = source.bucket, PurePosixPath(source.key).name, sha256_hex(data)
    accepted_bytes = part_bytes(split.accepted, filename)
    quarantined_bytes = part_bytes(split.quarantined, filename)
    kept = ctx.store.copy(source, bucket, layout.original_data_key(model, sha256=digest, filename=filename))
    original = _part(kept, data, int(report_doc.get("rows") or 0))
    accepted_key = layout.stored_data_key(model, accepted=True, sha256=digest, filename=filename)
    accepted = _part(ctx.store.put(bucket, accepted_key, accepted_bytes), accepted_bytes, len(split.accepted))
    quarantine_key = layout.stored_data_key(model, accepted=False, sha256=digest, filename=filename)
    quarantined = _part(
        ctx.store.put(bucket, quarantine_key, quarantined_bytes), quarantined_bytes, len(split.quarantined)
    )
    parts = {"original": original, "accepted": accepted, "quarantined": quarantined}
    report_doc = {**report_doc, "source": source.to_dict(), "sha256": digest, "stored_as": accepted_key, "parts": parts}
    report_key = layout.validation_report_key(accepted_key)
    ctx.put_json(bucket, report_key, report_doc)
    ctx.put_json(bucket, layout.validation_report_key(quarantine_key), report_doc)
    ctx.store.delete(bucket, source.key)  # versioned bucket: the incoming version stays retrievable
    dataset: DatasetRecord = {
        "bucket": bucket,
        "key": accepted_key,
        "version_id": accepted["version_id"],
        "etag": accepted["etag"],
        "sha256": accepted["sha256"],
        "size": accepted["size"],
        "rows": accepted["rows"],
        "source_key": source.key,
        "source_version_id": source.version_id,
        "source_sha256": digest,
        "original": original,
        "quarantined": quarantined,
        "accepted_at": time.time(),
    }
    return {
        "verdict": ACCEPTED,
        "model": model,
        "summary": f"{model}: {report_doc['summary']}",
        "report_key": report_key,
        "data_key": accepted_key,
        "quarantine_key": quarantine_key,
        "rows_quarantined": len(split.quarantined),
        "dataset": dataset,
        "new_content": ctx.registry.record_dataset(model, dataset),
    }
