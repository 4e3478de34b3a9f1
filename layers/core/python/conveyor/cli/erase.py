"""``conveyor impact URI --erase``: delete a data object everywhere it is stored (conveyor.erasure says
what that covers) and record that it was done. Run it as the operator role on a deployed stack: it
deletes object versions, which the artifact bucket's policy allows no one else.
"""

from __future__ import annotations

import io
import time
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from conveyor.cli.target import Target

if TYPE_CHECKING:
    from conveyor.registry import Registry


def erase(
    target: Target, registry: Registry, model: str, bucket: str, key: str, *, reason: str, by: str
) -> dict[str, Any]:
    """Exclude, then delete every version of the object's keys and the capture records of its entities.

    Returns what ``impact --erase --json`` shows (the same as the registry's erasure record).
    """
    from conveyor.erasure import erased_keys, erasure_record

    datasets, _ = registry.impact(model, bucket, key)
    entities = _entities(target, model, datasets)
    for dataset in datasets:
        if not dataset.get("excluded"):
            registry.exclude_dataset(model, str(dataset["sha256"]), f"erased: {reason}")
    objects: dict[str, int] = {}
    for dataset in datasets:
        for erased in erased_keys(dataset):
            objects[f"s3://{dataset['bucket']}/{erased}"] = _delete_versions(target, str(dataset["bucket"]), erased)
    capture = _erase_capture(target, model, entities)
    record = erasure_record(
        model, f"s3://{bucket}/{key}", reason=reason, by=by, objects=objects, capture=capture, at=time.time()
    )
    target.registry_table().put(record)
    return {k: v for k, v in record.items() if k not in ("pk", "sk")}


def _entities(target: Target, model: str, datasets: list[dict[str, Any]]) -> set[str]:
    """The entity keys (first identifier column) of the object's rows, read before anything is deleted."""
    import pandas as pd

    from conveyor import layout
    from conveyor.erasure import entity_values
    from conveyor.spec import load_spec

    spec_body = target.s3.get_object(Bucket=target.output("ArtifactBucketName"), Key=layout.spec_key(model))["Body"]
    identifiers = list(load_spec(spec_body.read()).identifiers)
    found: set[str] = set()
    for dataset in datasets:
        stored = (dataset.get("original") or {}).get("key") or dataset["key"]  # a split drop: every row it had
        body = target.s3.get_object(Bucket=dataset["bucket"], Key=stored)["Body"].read()
        suffix = PurePosixPath(str(stored)).suffix.lower()
        frame = pd.read_parquet(io.BytesIO(body)) if suffix == ".parquet" else pd.read_csv(io.BytesIO(body))
        found |= entity_values({c: frame[c].tolist() for c in frame.columns}, identifiers)
    return found


def _delete_versions(target: Target, bucket: str, erased: str) -> int:
    """Every version and delete marker of ``erased`` and of the reports beside it."""
    from conveyor.erasure import belongs_to

    deleted = 0
    for page in target.s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=erased):
        found = [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
        objects = [{"Key": o["Key"], "VersionId": o["VersionId"]} for o in found if belongs_to(o["Key"], erased)]
        if objects:
            _delete_objects(target, bucket, objects)
            deleted += len(objects)
    return deleted


def _delete_objects(target: Target, bucket: str, objects: list[dict[str, str]]) -> None:
    for start in range(0, len(objects), 1000):
        answer = target.s3.delete_objects(Bucket=bucket, Delete={"Objects": objects[start : start + 1000]})
        if answer.get("Errors"):
            error = answer["Errors"][0]
            raise PermissionError(f"s3://{bucket}/{error['Key']}: {error.get('Code')}: {error.get('Message')}")


def _erase_capture(target: Target, model: str, entities: set[str]) -> dict[str, int]:
    """Rewrite each capture file holding records of ``entities`` without them (older versions deleted)."""
    from conveyor import layout
    from conveyor.erasure import without_entities

    bucket = target.output("CaptureBucketName")
    counts = {"files_rewritten": 0, "records_removed": 0}
    if not entities:
        return counts
    prefix = layout.capture_model_prefix(model)
    for page in target.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for entry in page.get("Contents", []):
            body = target.s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read()
            kept, removed = without_entities(body, entities)
            if not removed:
                continue
            keep_version = None
            if kept:
                keep_version = target.s3.put_object(Bucket=bucket, Key=entry["Key"], Body=kept).get("VersionId")
            versions = target.s3.list_object_versions(Bucket=bucket, Prefix=entry["Key"])
            older = [
                {"Key": v["Key"], "VersionId": v["VersionId"]}
                for v in [*versions.get("Versions", []), *versions.get("DeleteMarkers", [])]
                if v["Key"] == entry["Key"] and (not kept or v["VersionId"] not in (keep_version, "null"))
            ]
            if older:
                _delete_objects(target, bucket, older)
            counts["files_rewritten"] += 1
            counts["records_removed"] += removed
    return counts
