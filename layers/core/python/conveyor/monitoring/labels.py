"""Delayed ground truth: label files joined with the served records they label.

A label file lands under ``s3://DATA_BUCKET/{model}/labels/`` (CSV or Parquet) with columns
``request_id``, ``row`` (the instance's index in its request; 0 when the column is absent) and the
spec's target column (raw, as in training data: ``positive_when`` applies). The dispatcher hands
it to :func:`ingest_labels`, which

- joins each label with the *served* record of its request (``served: true``, status 200; never a
  shadow's) among the capture of the last ``LOOKBACK_SECONDS``;
- writes the joined rows to the capture bucket under the hour of the request
  (``conveyor.layout.labels_joined_key``), where the live monitor reads its window's labels;
- counts labels whose request id is unknown (or whose row the request does not have): reported,
  never an error;
- quarantines a malformed file (unreadable, a required column missing, a null or unparseable
  value) with a report beside it, as the data gate does with a drop;
- writes a join report (``conveyor.layout.labels_report_key``) that ``conveyor labels`` waits for.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import numpy as np
import pandas as pd

from conveyor import layout
from conveyor.errors import ConveyorError, DataError
from conveyor.layout import labels_report_key
from conveyor.monitoring.context import MonitorContext
from conveyor.monitoring.window import lines
from conveyor.ports import ObjectRef, ObjectStore
from conveyor.spec import ModelSpec
from conveyor.tabular import read_table, target_vector

LOOKBACK_SECONDS = 7 * 86400  # labels may arrive up to a week after the request they label
REQUEST_ID = "request_id"
ROW = "row"


@dataclass
class LabelJoin:
    model: str
    source: dict[str, Any]
    label_object: str
    labels: int = 0
    matched: int = 0
    unknown_request_ids: int = 0  # distinct request ids with no served record in the lookback
    unmatched_rows: int = 0  # labels of a known request whose row it does not have
    joined_keys: list[str] = field(default_factory=list)
    verdict: str = "joined"  # joined | quarantined
    reason: str = ""
    quarantine_key: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "verdict": self.verdict,
            "reason": self.reason,
            "source": self.source,
            "label_object": self.label_object,
            "labels": self.labels,
            "matched": self.matched,
            "unknown_request_ids": self.unknown_request_ids,
            "unmatched_rows": self.unmatched_rows,
            "joined_keys": self.joined_keys,
            "quarantine_key": self.quarantine_key,
        }


def parse_labels(data: bytes, filename: str, spec: ModelSpec) -> dict[tuple[str, int], Any]:
    """``{(request_id, row): label}`` of a label file; the label as the model's classes are named
    (text) for classifiers, a float for regressors.

    Raises
    ------
    DataError
        If the file is unreadable or a required column is missing, null or unparseable.
    """
    frame = read_table(data, filename)
    target = spec.target.column
    missing = [c for c in (REQUEST_ID, target) if c not in frame.columns]
    if missing:
        raise DataError(f"{filename}: missing column(s) {', '.join(missing)}", details={"missing": missing})
    if bool((frame[REQUEST_ID].isna() | (frame[REQUEST_ID].astype(str).str.strip() == "")).any()):
        raise DataError(f"{filename}: request_id has null values", details={"column": REQUEST_ID})
    rows = frame[ROW] if ROW in frame.columns else pd.Series(0, index=frame.index)
    numbers = pd.to_numeric(rows, errors="coerce")
    if bool(numbers.isna().any()) or bool((numbers < 0).any()) or bool((numbers % 1 != 0).any()):
        raise DataError(f"{filename}: row must be a non-negative integer", details={"column": ROW})
    values = target_vector(frame, spec)
    if spec.task == "classification":
        labels: list[Any] = [str(v.item() if isinstance(v, np.generic) else v) for v in values]
    else:
        labels = [float(v) for v in values]
    request_ids = frame[REQUEST_ID].astype(str).tolist()
    return dict(zip(zip(request_ids, numbers.astype(int).tolist(), strict=True), labels, strict=True))


def _join(
    labels: dict[tuple[str, int], Any], store: ObjectStore, capture_bucket: str, model: str, now: float
) -> tuple[list[dict[str, Any]], set[str], int]:
    """Joined rows, the request ids found served, and labels of found requests lacking their row."""
    wanted: dict[str, list[tuple[int, Any]]] = {}
    for (request_id, row), label in labels.items():
        wanted.setdefault(request_id, []).append((row, label))
    joined: list[dict[str, Any]] = []
    found: set[str] = set()
    unmatched = 0
    for line in lines(store, capture_bucket, model, now - LOOKBACK_SECONDS, now):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        request_id = str(record.get("request_id")) if isinstance(record, dict) else ""
        if request_id not in wanted or request_id in found:
            continue
        if record.get("served") is False or record.get("role") == "shadow" or record.get("status") != 200:
            continue
        found.add(request_id)
        predictions = record.get("predictions") or []
        probabilities = record.get("probabilities") or []
        for row, label in wanted[request_id]:
            if row >= len(predictions):
                unmatched += 1
                continue
            joined.append(
                {
                    "request_id": request_id,
                    "row": row,
                    "model_version": record.get("model_version"),
                    "timestamp": float(record["timestamp"]),
                    "label": label,
                    "prediction": predictions[row],
                    "probabilities": probabilities[row] if row < len(probabilities) else None,
                    "labelled_at": now,
                }
            )
    return joined, found, unmatched


def ingest_labels(
    source: ObjectRef,
    spec: ModelSpec | None,
    store: ObjectStore,
    capture_bucket: str,
    *,
    now: float | None = None,
) -> LabelJoin:
    """Join one label object with the capture (module docstring); writes the joined rows and the
    report. Without a spec (the model is unknown) the file is quarantined."""
    now = time.time() if now is None else now
    model = layout.model_of_label_key(source.key) or (spec.name if spec else "")
    label_object = layout.label_object_id(source.bucket, source.key, source.version_id or source.etag)
    outcome = LabelJoin(model=model, source=source.to_dict(), label_object=label_object)
    try:
        if spec is None:
            raise DataError(f"no spec for model {model}: labels need its target column")
        labels = parse_labels(
            store.get(source.bucket, source.key, source.version_id), PurePosixPath(source.key).name, spec
        )
    except ConveyorError as error:
        _quarantine(outcome, source, store, error.message)
    else:
        outcome.labels = len(labels)
        joined, found, outcome.unmatched_rows = _join(labels, store, capture_bucket, model, now)
        outcome.matched = len(joined)
        outcome.unknown_request_ids = len({rid for rid, _ in labels} - found)
        by_key: dict[str, list[dict[str, Any]]] = {}
        for row in joined:
            by_key.setdefault(layout.labels_joined_key(model, row["timestamp"], label_object), []).append(row)
        for key, rows in sorted(by_key.items()):
            body = b"".join(json.dumps(r, separators=(",", ":"), default=str).encode() + b"\n" for r in rows)
            store.put(capture_bucket, key, body, "application/x-ndjson")
        outcome.joined_keys = sorted(by_key)
    report = json.dumps(outcome.to_dict(), indent=2, default=str).encode()
    store.put(capture_bucket, labels_report_key(model, label_object), report, "application/json")
    return outcome


def _quarantine(outcome: LabelJoin, source: ObjectRef, store: ObjectStore, reason: str) -> None:
    outcome.verdict, outcome.reason = "quarantined", reason
    outcome.quarantine_key = layout.label_quarantine_key(source.key)
    store.copy(source, source.bucket, outcome.quarantine_key)
    report = {"verdict": "rejected", "summary": reason, "source": source.to_dict(), "kind": "labels"}
    store.put(
        source.bucket,
        f"{outcome.quarantine_key}.report.json",
        json.dumps(report, indent=2).encode(),
        "application/json",
    )
    store.delete(source.bucket, source.key)  # versioned bucket: the dropped version stays retrievable


def read_joined(store: ObjectStore, capture_bucket: str, model: str, start: float, end: float) -> list[dict[str, Any]]:
    """The joined labels of requests served in [start, end]; one per (request, row): the latest labelled."""
    latest: dict[tuple[str, int], dict[str, Any]] = {}
    for prefix in layout.hour_prefixes(model, layout.LABELS_JOINED, start, end):
        for key in store.keys(capture_bucket, prefix):
            for line in store.get(capture_bucket, key).splitlines():
                try:
                    row = json.loads(line)
                    when = float(row["timestamp"])
                    slot = (str(row["request_id"]), int(row["row"]))
                except (ValueError, KeyError, TypeError):
                    continue
                if not start <= when <= end:
                    continue
                if slot not in latest or float(row.get("labelled_at") or 0) >= float(
                    latest[slot].get("labelled_at") or 0
                ):
                    latest[slot] = row
    return list(latest.values())


def ingest_label_event(event: dict[str, Any], ctx: MonitorContext, now: float | None = None) -> dict[str, Any]:
    """The label function's request, from the dispatcher: the label object's bucket, key, version, etag."""
    source = ObjectRef(
        str(event["bucket"]), str(event["key"]), event.get("version_id"), event.get("etag"), event.get("size")
    )
    if source.version_id is None:
        source = ctx.store.head(source.bucket, source.key) or source
    model = layout.model_of_label_key(source.key)
    if model is None:
        raise DataError(f"{source.key} is not under {{model}}/labels/")
    try:
        spec: ModelSpec | None = ctx.spec(model)
    except Exception:  # KeyError in memory, ClientError on S3: no such model
        spec = None
    return ingest_labels(source, spec, ctx.store, ctx.settings.capture_bucket, now=now).to_dict()
