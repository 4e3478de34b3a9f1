"""Turn "object created" notifications into pipeline executions, exactly once per object version.

Messages arrive from the ingest queue, fed by an EventBridge rule on the data bucket (both on
AWS and on the local cloud). Plain S3 notifications (``Records``) and S3 test events are also
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

from conveyor.layout import model_of_incoming
from conveyor.ports import ExecutionStarter, ObjectRef, ObjectStore

_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True)
class Drop:
    """A data object that landed under ``{model}/incoming/``."""

    model: str
    object: ObjectRef
    sequencer: str | None = None

    def execution_name(self) -> str:
        identity = f"{self.object.bucket}\n{self.object.key}\n{self.object.version_id or self.object.etag or ''}"
        digest = hashlib.sha256(identity.encode()).hexdigest()[:24]
        return f"{_NAME_UNSAFE.sub('-', self.model)[:50]}-{digest}"

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


def drops_from_message(body: str | dict[str, Any]) -> list[Drop]:
    """All incoming drops named by one queue message; test events and other keys give none."""
    message = json.loads(body) if isinstance(body, str) else body
    if not isinstance(message, dict):
        return []
    found: list[Drop] = []
    if message.get("detail-type") == "Object Created":
        detail = message.get("detail", {})
        obj = detail.get("object", {})
        key = obj.get("key", "")
        model = model_of_incoming(key)
        if model:
            ref = ObjectRef(
                detail.get("bucket", {}).get("name", ""),
                key,
                obj.get("version-id"),
                obj.get("etag") or obj.get("eTag"),
                obj.get("size"),
            )
            found.append(Drop(model, ref, obj.get("sequencer")))
    for record in message.get("Records", []):  # a plain S3 notification; keys are URL-encoded
        if not str(record.get("eventName", "")).startswith("ObjectCreated"):
            continue
        s3 = record.get("s3", {})
        obj = s3.get("object", {})
        key = unquote_plus(obj.get("key", ""))
        model = model_of_incoming(key)
        if model:
            ref = ObjectRef(
                s3.get("bucket", {}).get("name", ""), key, obj.get("versionId"), obj.get("eTag"), obj.get("size")
            )
            found.append(Drop(model, ref, obj.get("sequencer")))
    return found


def dispatch(body: str | dict[str, Any], *, starter: ExecutionStarter, store: ObjectStore) -> list[dict[str, Any]]:
    """Start one execution per drop in the message; returns what happened to each drop."""
    outcomes = []
    for drop in drops_from_message(body):
        current = drop
        if drop.object.version_id is None:
            # Without a version id, the object's current version names the execution.
            head = store.head(drop.object.bucket, drop.object.key)
            if head is None:
                outcomes.append({"key": drop.object.key, "outcome": "gone"})
                continue
            current = Drop(drop.model, head, drop.sequencer)
        started = starter.start(current.execution_name(), current.execution_input())
        outcomes.append(
            {
                "key": current.object.key,
                "execution": current.execution_name(),
                "outcome": "started" if started else "duplicate",
            }
        )
    return outcomes
