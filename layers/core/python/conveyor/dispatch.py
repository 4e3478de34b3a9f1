"""Turn "object created" notifications into pipeline executions, exactly once per object version.

Messages arrive from the ingest queue, fed by an EventBridge rule on the data bucket (both on
AWS and on the local cloud). Label files (``{model}/labels/...``) are no drops: they go to the
label ingest function (an asynchronous invoke), never to the pipeline. Plain S3 notifications (``Records``) and S3 test events are also
understood, so a bucket wired straight to the queue works too. An execution's name is derived
from the object's bucket, key and version, so a notification delivered twice starts one
execution: Step Functions refuses a second execution with the same name.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from conveyor.layout import model_of_batch, model_of_incoming, model_of_label_key
from conveyor.ports import ExecutionStarter, FunctionInvoker, ObjectRef, ObjectStore

_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def ignored_reason(key: str, size: int | None) -> str | None:
    """Why a drop is not data, or None: what Spark, Hadoop, Glue and similar exports write beside
    their part files. Ignored (no execution, no quarantine, no alert): ``_SUCCESS`` and any name
    starting with ``_`` or ``.`` (Hadoop's hidden files: ``_committed_*``, ``_started_*``, a
    ``_manifest.json``, ``.part-0.crc``), ``*.crc`` checksums, anything under a ``_temporary/``
    folder, and zero-byte objects (folder placeholders, markers). A ``retrain.wait_for`` marker is
    one of these: the retrain that waits for it looks it up itself (conveyor.bursts)."""
    parts = key.split("/")
    name = parts[-1]
    if "_temporary" in parts[:-1]:
        return "under _temporary/ (an export still writing)"
    if name.startswith(("_", ".")):
        return f"{name}: an export's marker or hidden file"
    if name.lower().endswith(".crc"):
        return f"{name}: a checksum file"
    if not name:
        return "a folder placeholder"
    if size == 0:
        return f"{name}: zero bytes (a marker)"
    return None


@dataclass(frozen=True)
class Drop:
    """A data object that landed under ``{model}/incoming/`` (or, ``batch``, under ``{model}/batch/``)."""

    model: str
    object: ObjectRef
    sequencer: str | None = None
    batch: bool = False

    def execution_name(self) -> str:
        identity = f"{self.object.bucket}\n{self.object.key}\n{self.object.version_id or self.object.etag or ''}"
        digest = hashlib.sha256(identity.encode()).hexdigest()[:24]
        return f"{'batch-' if self.batch else ''}{_NAME_UNSAFE.sub('-', self.model)[:50]}-{digest}"

    def execution_input(self) -> dict[str, Any]:
        """The EventBridge "Object Created" event that the state machine receives on AWS."""
        obj: dict[str, Any] = {"key": self.object.key, "size": self.object.size, "etag": self.object.etag}
        if self.object.version_id:
            obj["version-id"] = self.object.version_id
        if self.sequencer:
            obj["sequencer"] = self.sequencer
        return {
            "source": "aws.s3",
            "detail-type": "Object Created",
            "detail": {"bucket": {"name": self.object.bucket}, "object": obj, "reason": "PutObject"},
        }


def _created_objects(message: dict[str, Any]) -> list[tuple[ObjectRef, str | None]]:
    """Every object named as created by one queue message (an EventBridge event or an S3 notification)."""
    found: list[tuple[ObjectRef, str | None]] = []
    if message.get("detail-type") == "Object Created":
        detail = message.get("detail", {})
        obj = detail.get("object", {})
        ref = ObjectRef(
            detail.get("bucket", {}).get("name", ""),
            obj.get("key", ""),
            obj.get("version-id"),
            obj.get("etag") or obj.get("eTag"),
            obj.get("size"),
        )
        found.append((ref, obj.get("sequencer")))
    for record in message.get("Records", []):  # a plain S3 notification; keys are URL-encoded
        if not str(record.get("eventName", "")).startswith("ObjectCreated"):
            continue
        s3 = record.get("s3", {})
        obj = s3.get("object", {})
        key = unquote_plus(obj.get("key", ""))
        ref = ObjectRef(
            s3.get("bucket", {}).get("name", ""), key, obj.get("versionId"), obj.get("eTag"), obj.get("size")
        )
        found.append((ref, obj.get("sequencer")))
    return found


def _message(body: str | dict[str, Any]) -> dict[str, Any]:
    message = json.loads(body) if isinstance(body, str) else body
    return message if isinstance(message, dict) else {}


def drops_from_message(body: str | dict[str, Any]) -> list[Drop]:
    """All drops named by one queue message (incoming data, and batch objects with ``batch``);
    test events and other keys give none."""
    found: list[Drop] = []
    for ref, sequencer in _created_objects(_message(body)):
        model = model_of_incoming(ref.key)
        if model:
            found.append(Drop(model, ref, sequencer))
        elif model := model_of_batch(ref.key):
            found.append(Drop(model, ref, sequencer, batch=True))
    return found


def labels_from_message(body: str | dict[str, Any]) -> list[ObjectRef]:
    """All label files (``{model}/labels/...``) named by one queue message."""
    return [ref for ref, _ in _created_objects(_message(body)) if model_of_label_key(ref.key)]


def _dispatch_labels(body: str | dict[str, Any], labels: FunctionInvoker) -> list[dict[str, Any]]:
    """Hand each label file to the label ingest (``conveyor.monitoring.labels``), asynchronously."""
    outcomes = []
    for ref in labels_from_message(body):
        labels.invoke_async(ref.to_dict())
        outcomes.append({"key": ref.key, "outcome": "labels"})
    return outcomes


def dispatch(
    body: str | dict[str, Any],
    *,
    starter: ExecutionStarter,
    store: ObjectStore,
    labels: FunctionInvoker | None = None,
    batch_starter: ExecutionStarter | None = None,
) -> list[dict[str, Any]]:
    """Start one execution per drop in the message (a batch object's on ``batch_starter``, the
    state machine "batch") and hand label files to ``labels``; returns what happened to each object."""
    outcomes = _dispatch_labels(body, labels) if labels is not None else []
    for drop in drops_from_message(body):
        ignored = ignored_reason(drop.object.key, drop.object.size)
        if ignored is not None:
            outcomes.append({"key": drop.object.key, "outcome": "ignored", "reason": ignored})
            continue
        if drop.batch and batch_starter is None:
            outcomes.append({"key": drop.object.key, "outcome": "ignored (no batch state machine)"})
            continue
        current = drop
        if drop.object.version_id is None:
            # Without a version id, the object's current version names the execution.
            head = store.head(drop.object.bucket, drop.object.key)
            if head is None:
                outcomes.append({"key": drop.object.key, "outcome": "gone"})
                continue
            current = Drop(drop.model, head, drop.sequencer, drop.batch)
            if head.size == 0:
                outcomes.append({"key": drop.object.key, "outcome": "ignored", "reason": "zero bytes (a marker)"})
                continue
        chosen = batch_starter if current.batch and batch_starter is not None else starter
        started = chosen.start(current.execution_name(), current.execution_input())
        outcomes.append(
            {
                "key": current.object.key,
                "execution": current.execution_name(),
                "outcome": "started" if started else "duplicate",
            }
        )
    return outcomes
