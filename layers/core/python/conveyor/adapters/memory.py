"""In-memory adapters for unit tests and offline commands: same behaviour as the AWS ones,
including conditional-write failures and object versions."""

from __future__ import annotations

import copy
import hashlib
import itertools
import threading
import time
from pathlib import Path
from typing import Any

from conveyor.ports import AlarmDefinition, AlarmStatus, CallbackExpired, ConditionFailed, ObjectMissing, ObjectRef


class MemoryObjectStore:
    """Versioned buckets in memory. Every put adds a version; a delete adds a delete marker (``None``
    bytes) as S3 does on a versioned bucket, so older versions stay readable by version id."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], list[tuple[str, bytes | None]]] = {}
        self._versions = itertools.count(1)
        self.object_tags: dict[tuple[str, str], dict[str, str]] = {}  # set by tests: S3 object tags

    def _version(self, bucket: str, key: str, version_id: str | None) -> tuple[str, bytes]:
        versions = self.objects.get((bucket, key), [])
        if version_id is None:
            found = versions[-1] if versions else None
        else:
            found = next((v for v in versions if v[0] == version_id), None)
        if found is None or found[1] is None:
            raise ObjectMissing(bucket, key, version_id)
        return found[0], found[1]

    def get(self, bucket: str, key: str, version_id: str | None = None) -> bytes:
        return self._version(bucket, key, version_id)[1]

    def put(self, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream") -> ObjectRef:
        version_id = f"v{next(self._versions)}"
        self.objects.setdefault((bucket, key), []).append((version_id, data))
        return ObjectRef(bucket, key, version_id, hashlib.md5(data).hexdigest(), len(data))  # noqa: S324 - S3 ETag

    def head(self, bucket: str, key: str, version_id: str | None = None) -> ObjectRef | None:
        try:
            vid, data = self._version(bucket, key, version_id)
        except ObjectMissing:
            return None
        return ObjectRef(bucket, key, vid, hashlib.md5(data).hexdigest(), len(data))  # noqa: S324 - S3 ETag

    def copy(self, source: ObjectRef, bucket: str, key: str) -> ObjectRef:
        return self.put(bucket, key, self.get(source.bucket, source.key, source.version_id))

    def delete(self, bucket: str, key: str) -> None:
        self.objects.setdefault((bucket, key), []).append((f"v{next(self._versions)}", None))

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        return sorted(
            k
            for (b, k), versions in self.objects.items()
            if b == bucket and k.startswith(prefix) and versions[-1][1] is not None
        )

    def download(self, bucket: str, key: str, path: Path, version_id: str | None = None) -> None:
        path.write_bytes(self.get(bucket, key, version_id))

    def upload(self, bucket: str, key: str, path: Path) -> ObjectRef:
        return self.put(bucket, key, path.read_bytes())

    def get_range(self, bucket: str, key: str, start: int, end: int, version_id: str | None = None) -> bytes:
        return self.get(bucket, key, version_id)[start:end]

    def tags(self, bucket: str, key: str, version_id: str | None = None) -> dict[str, str]:
        self.get(bucket, key, version_id)  # ObjectMissing for a missing object, as S3
        return dict(self.object_tags.get((bucket, key), {}))


class MemoryTable:
    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, Any]] = {}
        self._lock = threading.Lock()

    def get(self, pk: str, sk: str) -> dict[str, Any] | None:
        item = self.items.get((pk, sk))
        return copy.deepcopy(item) if item else None

    def put(self, item: dict[str, Any], *, if_absent: bool = False, if_equals: tuple[str, Any] | None = None) -> None:
        key = (item["pk"], item["sk"])
        with self._lock:
            current = self.items.get(key)
            if if_absent and current is not None:
                raise ConditionFailed(f"{key}")
            if if_equals is not None and (current is None or current.get(if_equals[0]) != if_equals[1]):
                raise ConditionFailed(f"{key}")
            self.items[key] = copy.deepcopy(item)

    def query(
        self, pk: str, sk_prefix: str, *, newest_first: bool = False, limit: int | None = None
    ) -> list[dict[str, Any]]:
        found = sorted((k[1], v) for k, v in self.items.items() if k[0] == pk and k[1].startswith(sk_prefix))
        if newest_first:
            found.reverse()
        items = [copy.deepcopy(v) for _, v in found]
        return items[:limit] if limit is not None else items


class MemoryNotifier:
    def __init__(self) -> None:
        self.messages: list[tuple[str, str]] = []

    def publish(self, subject: str, message: str) -> None:
        self.messages.append((subject, message))


class MemoryMetrics:
    def __init__(self) -> None:
        self.datapoints: list[tuple[str, str, dict[str, str], float]] = []

    def publish(self, namespace: str, datapoints: list[tuple[str, dict[str, str], float]]) -> None:
        self.datapoints.extend((namespace, name, dims, value) for name, dims, value in datapoints)


class MemoryEvents:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict[str, Any]]] = []

    def publish(self, source: str, detail_type: str, detail: dict[str, Any]) -> None:
        self.events.append((source, detail_type, detail))


class MemoryStarter:
    def __init__(self) -> None:
        self.executions: dict[str, dict[str, Any]] = {}

    def start(self, name: str, payload: dict[str, Any]) -> bool:
        if name in self.executions:
            return False
        self.executions[name] = payload
        return True


class MemoryCapture:
    """Capture records kept in a list; ``fail=True`` makes every put raise (a sink outage)."""

    def __init__(self, *, fail: bool = False) -> None:
        self.records: list[dict[str, Any]] = []
        self.fail = fail

    def put(self, records: list[dict[str, Any]]) -> None:
        if self.fail:
            raise RuntimeError("capture sink unavailable")
        self.records.extend(copy.deepcopy(records))

    def flush(self) -> None:
        return


class MemoryCallbacks:
    """Task tokens handed out by a fake workflow; each answers once, like Step Functions'."""

    def __init__(self) -> None:
        self.waiting: set[str] = set()
        self.answers: dict[str, tuple[str, Any]] = {}

    def wait(self, token: str) -> None:
        self.waiting.add(token)

    def succeed(self, token: str, output: dict[str, Any]) -> None:
        self._answer(token, ("success", output))

    def fail(self, token: str, error: str, cause: str) -> None:
        self._answer(token, ("failure", {"error": error, "cause": cause}))

    def _answer(self, token: str, answer: tuple[str, Any]) -> None:
        if token not in self.waiting:
            raise CallbackExpired(token)
        self.waiting.discard(token)
        self.answers[token] = answer


class MemoryAlarms:
    """Alarms kept by name; a new alarm starts in INSUFFICIENT_DATA (as on AWS), an updated one keeps its
    state. ``set_state`` stands in for CloudWatch's evaluation."""

    def __init__(self) -> None:
        self.definitions: dict[str, AlarmDefinition] = {}
        self.states: dict[str, tuple[str, str, float]] = {}  # name -> (state, reason, when)

    def put(self, definition: AlarmDefinition) -> None:
        self.definitions[definition.name] = definition
        if definition.name not in self.states:
            self.set_state(definition.name, "INSUFFICIENT_DATA", "Unchecked: Initial alarm creation", time.time())

    def delete(self, names: list[str]) -> None:
        for name in names:
            self.definitions.pop(name, None)
            self.states.pop(name, None)

    def describe(self, prefix: str = "") -> list[AlarmStatus]:
        return [self.status(name) for name in sorted(self.definitions) if name.startswith(prefix)]

    def status(self, name: str) -> AlarmStatus:
        definition = self.definitions[name]
        state, reason, at = self.states[name]
        return AlarmStatus(name, state, reason, at, definition.metric, definition.threshold)

    def set_state(self, name: str, state: str, reason: str, at: float = 0.0) -> None:
        if name not in self.definitions:
            raise KeyError(name)
        self.states[name] = (state, reason, at)


class MemoryInvoker:
    """Invocations kept in a list; ``handler`` (optional) runs each at once, as the local cloud does."""

    def __init__(self, handler: Any = None) -> None:
        self.payloads: list[dict[str, Any]] = []
        self._handler = handler

    def invoke_async(self, payload: dict[str, Any]) -> None:
        self.payloads.append(copy.deepcopy(payload))
        if self._handler is not None:
            self._handler(payload)
