"""Ports: the narrow interfaces through which domain code reaches the outside world.

Domain modules depend on these protocols only; ``conveyor.adapters.aws`` implements them with
boto3 (the same code on AWS and on the local cloud) and ``conveyor.adapters.memory`` implements
them in memory for unit tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

# ObjectMissing and ConditionFailed are these ports' errors, defined with the others (the predict
# path raises and catches them without importing the ports): importable from here too
from conveyor.errors import ConditionFailed, ConveyorError, ObjectMissing  # noqa: F401


@dataclass(frozen=True)
class ObjectRef:
    """One version of one object in a bucket: enough to find the exact bytes again."""

    bucket: str
    key: str
    version_id: str | None = None
    etag: str | None = None
    size: int | None = None

    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "key": self.key,
            "version_id": self.version_id,
            "etag": self.etag,
            "size": self.size,
        }


class ObjectReader(Protocol):
    """Reads objects only (the predict function's artifacts and contracts)."""

    def get(self, bucket: str, key: str, version_id: str | None = None) -> bytes: ...


class ItemReader(Protocol):
    """Reads items only (the predict function's routing record)."""

    def get(self, pk: str, sk: str) -> dict[str, Any] | None: ...


class ObjectStore(Protocol):
    """Objects in versioned buckets (S3's model): a put adds a version, a delete adds a delete marker."""

    def get(self, bucket: str, key: str, version_id: str | None = None) -> bytes:
        """The bytes of the newest version (or of ``version_id``); raise ``ObjectMissing`` if there is none."""
        ...

    def put(self, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream") -> ObjectRef: ...

    def head(self, bucket: str, key: str, version_id: str | None = None) -> ObjectRef | None:
        """The newest version (or ``version_id``), None if there is none."""
        ...

    def copy(self, source: ObjectRef, bucket: str, key: str) -> ObjectRef:
        """Copy ``source`` (its newest version unless it names one); raise ``ObjectMissing`` if it has none."""
        ...

    def delete(self, bucket: str, key: str) -> None:
        """Add a delete marker: the key is gone from ``get``/``head``/``keys``, its versions stay readable."""
        ...

    def download(self, bucket: str, key: str, path: Path, version_id: str | None = None) -> None:
        """Write the object to ``path``, streamed (an object of any size, in bounded memory)."""
        ...

    def upload(self, bucket: str, key: str, path: Path) -> ObjectRef:
        """Store the file at ``path`` as the object, streamed."""
        ...

    def get_range(self, bucket: str, key: str, start: int, end: int, version_id: str | None = None) -> bytes:
        """Bytes ``start`` (inclusive) to ``end`` (exclusive) of the object (fewer at its end)."""
        ...

    def tags(self, bucket: str, key: str, version_id: str | None = None) -> dict[str, str]:
        """The object's tags ({} when it has none)."""
        ...

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every key under ``prefix``, in lexicographic order (S3's listing order)."""
        ...


class Table(Protocol):
    """A key-value table with (pk, sk) keys and conditional writes (DynamoDB's model)."""

    def get(self, pk: str, sk: str) -> dict[str, Any] | None: ...

    def put(self, item: dict[str, Any], *, if_absent: bool = False, if_equals: tuple[str, Any] | None = None) -> None:
        """Write ``item``; raise ConditionFailed if ``if_absent`` and the key exists, or if
        ``if_equals=(attribute, value)`` and the stored item's attribute differs."""
        ...

    def query(
        self, pk: str, sk_prefix: str, *, newest_first: bool = False, limit: int | None = None
    ) -> list[dict[str, Any]]: ...


class Notifier(Protocol):
    def publish(self, subject: str, message: str) -> None: ...


Datapoint = tuple[str, dict[str, str], float]  # (metric name, dimensions, value)


class MetricsSink(Protocol):
    def publish(self, namespace: str, datapoints: list[Datapoint]) -> None: ...


class EventPublisher(Protocol):
    def publish(self, source: str, detail_type: str, detail: dict[str, Any]) -> None:
        """Publish one event; raise if the bus did not take it."""
        ...


class TaskCallbacks(Protocol):
    """Answers a workflow that waits for a callback (Step Functions' ``.waitForTaskToken``)."""

    def succeed(self, token: str, output: dict[str, Any]) -> None:
        """Resume the waiting task with ``output``; raise ``CallbackExpired`` if it no longer waits."""
        ...

    def fail(self, token: str, error: str, cause: str) -> None:
        """Fail the waiting task with ``error``; raise ``CallbackExpired`` if it no longer waits."""
        ...


class CallbackExpired(ConveyorError):
    """The task a token belonged to no longer waits (answered, timed out, or its execution ended)."""


class ExecutionStarter(Protocol):
    def start(self, name: str, payload: dict[str, Any]) -> bool:
        """Start an execution named ``name``; False if one with that name already exists.

        Step Functions answers a repeat with the same name and the same input, while the first
        execution still runs, as if it started it (True; nothing new runs): either way one execution
        per name. The in-memory fake answers False."""
        ...


class CaptureSink(Protocol):
    """Where the prediction API's capture records go (``docs/capture.md``): Kinesis Data Firehose in
    the cloud, batched S3 objects locally, a list in tests."""

    def put(self, records: list[dict[str, Any]]) -> None:
        """Accept records (JSON-ready dicts); a sink may buffer them. Raise if it cannot take them."""
        ...

    def flush(self) -> None:
        """Deliver whatever is buffered."""
        ...


@dataclass(frozen=True)
class AlarmDefinition:
    """One CloudWatch metric alarm, as PutMetricAlarm takes it (``conveyor.monitoring.alarms`` builds them)."""

    name: str
    description: str
    namespace: str
    metric: str
    dimensions: dict[str, str]
    statistic: str  # Sum | Average | Minimum | Maximum | SampleCount | pNN (an extended statistic)
    threshold: float
    comparison: str  # GreaterThanThreshold | GreaterThanOrEqualToThreshold | LessThan... (CloudWatch's names)
    period: int
    evaluation_periods: int
    datapoints_to_alarm: int
    treat_missing_data: str  # missing | notBreaching | breaching | ignore
    actions: tuple[str, ...] = ()  # SNS topic ARNs told when the alarm enters ALARM
    tags: dict[str, str] | None = None


@dataclass(frozen=True)
class AlarmStatus:
    """An alarm's current state, as DescribeAlarms reports it."""

    name: str
    state: str  # OK | ALARM | INSUFFICIENT_DATA
    reason: str
    updated: float  # epoch seconds of the last state change
    metric: str = ""
    threshold: float | None = None


class Alarms(Protocol):
    """Metric alarms (CloudWatch): created or updated whole, deleted by name, listed by name prefix."""

    def put(self, definition: AlarmDefinition) -> None: ...

    def delete(self, names: list[str]) -> None:
        """Delete these alarms; names that do not exist are ignored."""
        ...

    def describe(self, prefix: str = "") -> list[AlarmStatus]: ...


class FunctionInvoker(Protocol):
    """One function invoked asynchronously (Lambda's ``Event`` invocation): the dispatcher hands
    label files to the label ingest this way."""

    def invoke_async(self, payload: dict[str, Any]) -> None:
        """Queue one invocation with ``payload``; raise if it was not accepted."""
        ...
