"""Stage 1: validate a drop against the model's spec; move it to accepted/ or quarantine/.

With rows set aside (``validation.max_bad_row_share``) the drop is split instead: the original,
as received, at ``{model}/accepted/{sha16}/original/{file}``; the accepted rows at
``{model}/accepted/{sha16}/{file}`` (what training and drift read); the rows set aside, with a
reason each, at ``{model}/quarantine/{sha16}/{file}``; the report beside both parts. ``sha16`` is
the original upload's, and the dataset record keeps its sha256 (``source_sha256``) so a repeat
of the same upload is still recognised.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from pathlib import Path, PurePosixPath
from typing import Any

from conveyor import layout
from conveyor.errors import ConveyorError
from conveyor.ports import ObjectMissing, ObjectRef
from conveyor.spec import ModelSpec, load_spec
from conveyor.stages.context import PipelineContext, StageEvent
from conveyor.validation import ValidationContext
from conveyor.validation.chunked import FileSplit, file_sha256, validate_file
from conveyor.validation.files import arrival_checks
from conveyor.validation.report import Check, build_report
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


def _spec_of(ctx: PipelineContext, model: str) -> tuple[ModelSpec | None, str]:
    """The model's spec, or None and why not."""
    try:
        return load_spec(ctx.store.get(ctx.settings.artifact_bucket, layout.spec_key(model))), ""
    except ObjectMissing:
        return (
            None,
            f"no spec for model {model}: upload s3://{ctx.settings.artifact_bucket}/{layout.spec_key(model)} first",
        )
    except ConveyorError as error:
        return None, f"the spec of model {model} is invalid: {error}"
    except Exception as error:
        return None, f"no readable spec for model {model} ({type(error).__name__})"


def _spec_report(problem: str) -> dict[str, Any]:
    check = {"name": "spec", "severity": "error", "passed": False, "column": None, "message": problem}
    return {"verdict": REJECTED, "summary": problem, "checks": [{**check, "value": None, "threshold": None}]}


def validate_drop(event: StageEvent[ValidateInput], ctx: PipelineContext) -> ValidationResult:
    """Validate a drop in bounded memory: its size is checked before it is read; it is streamed to
    local disk and read in chunks (``conveyor.validation.validate_file``); a split's parts are
    uploaded from disk."""
    bucket = event.require("detail", "bucket", "name")
    obj = event.require("detail", "object")
    key = str(obj["key"])
    model = layout.model_of_incoming(key)
    if model is None:
        return _rejected_without_data("", key, "not under {model}/incoming/")
    source = ObjectRef(bucket, key, obj.get("version-id"), obj.get("etag"), obj.get("size"))
    filename = PurePosixPath(key).name
    spec, spec_problem = _spec_of(ctx, model)
    with tempfile.TemporaryDirectory(prefix="conveyor-validate-") as folder:
        if spec is not None:
            oversized = _oversized(ctx, source, filename, spec)
            if oversized is not None:
                return _store_verdict(ctx, source, model, oversized)
        path = Path(folder) / "drop" / filename
        path.parent.mkdir()
        ctx.store.download(bucket, key, path, source.version_id)
        if spec is None:
            report_doc = {**_spec_report(spec_problem), "sha256": file_sha256(path), "size": path.stat().st_size}
            return _store_verdict(ctx, source, model, report_doc)
        report, split = validate_file(path, filename, spec, context=_context(ctx, model), parts_dir=Path(folder))
        report_doc = {**report.to_dict(), "size": path.stat().st_size}
        if split is not None:
            return _accept_split(ctx, source, model, path, report_doc, split)
        return _store_verdict(ctx, source, model, report_doc)


def _oversized(ctx: PipelineContext, source: ObjectRef, filename: str, spec: ModelSpec) -> dict[str, Any] | None:
    """The report of an object above ``validation.max_file_mb``, made from its size alone (never read)."""
    size = source.size
    if size is None:
        head = ctx.store.head(source.bucket, source.key, source.version_id)
        size = None if head is None else head.size
    if size is None or size / (1024 * 1024) <= spec.validation.max_file_mb:
        return None
    checks: list[Check] = []
    arrival_checks(filename, "", int(size), b"", False, spec, None, checks)
    report = build_report(checks, 0, [], filename)
    # never read, so no sha256: the quarantine folder is named by the object's ETag and version instead
    name = hashlib.sha256(f"{source.etag}/{source.version_id}".encode()).hexdigest()
    return {**report.to_dict(), "sha256": name, "size": int(size), "read": False}


def _store_verdict(ctx: PipelineContext, source: ObjectRef, model: str, report_doc: dict[str, Any]) -> ValidationResult:
    """Move the whole drop to accepted/ or quarantine/ with its report beside it; record accepted data."""
    bucket, key, filename = source.bucket, source.key, PurePosixPath(source.key).name
    verdict: ValidationVerdict = ACCEPTED if report_doc["verdict"] == ACCEPTED else REJECTED
    summary = str(report_doc["summary"])
    digest, size = str(report_doc["sha256"]), int(report_doc["size"])
    dest_key = layout.stored_data_key(model, accepted=verdict == ACCEPTED, sha256=digest, filename=filename)
    moved = ctx.store.copy(source, bucket, dest_key)
    report_key = layout.validation_report_key(dest_key)
    report_doc = {**report_doc, "source": source.to_dict(), "sha256": digest, "stored_as": dest_key}
    report_doc.pop("size")
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
            "size": size,
            "rows": report_doc.get("rows"),
            "source_key": key,
            "source_version_id": source.version_id,
            "accepted_at": time.time(),
        }
        result["dataset"] = dataset
        result["new_content"] = ctx.registry.record_dataset(model, dataset)
    return result


def _part(ref: ObjectRef, path: Path, rows: int) -> DataPart:
    return {
        "bucket": ref.bucket,
        "key": ref.key,
        "version_id": ref.version_id,
        "etag": ref.etag,
        "sha256": file_sha256(path),
        "size": path.stat().st_size,
        "rows": rows,
    }


def _accept_split(
    ctx: PipelineContext, source: ObjectRef, model: str, path: Path, report_doc: dict[str, Any], split: FileSplit
) -> ValidationResult:
    """Store the original, the accepted rows and the quarantined rows; record the accepted part as the
    dataset, with the other two beside it in its record (and so in the lineage of what trains on it)."""
    bucket, filename, digest = source.bucket, PurePosixPath(source.key).name, str(report_doc["sha256"])
    report_doc = {k: v for k, v in report_doc.items() if k != "size"}
    kept = ctx.store.copy(source, bucket, layout.original_data_key(model, sha256=digest, filename=filename))
    original = _part(kept, path, int(report_doc.get("rows") or 0))
    accepted_key = layout.stored_data_key(model, accepted=True, sha256=digest, filename=filename)
    accepted = _part(ctx.store.upload(bucket, accepted_key, split.accepted), split.accepted, split.accepted_rows)
    quarantine_key = layout.stored_data_key(model, accepted=False, sha256=digest, filename=filename)
    quarantined = _part(
        ctx.store.upload(bucket, quarantine_key, split.quarantined), split.quarantined, split.quarantined_rows
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
        "rows_quarantined": split.quarantined_rows,
        "dataset": dataset,
        "new_content": ctx.registry.record_dataset(model, dataset),
    }
