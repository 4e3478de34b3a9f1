"""DynamoDB items, SQS messages not yet handled, SNS subscriptions, CloudWatch metric data and alarms.

Each service has a ``collect_*`` (a copy of moto's in-memory state as plain records, taken quickly:
DynamoDB's under the write lock the local cloud already holds for conditional writes) and a
``restore_*`` (the records put back into moto's backend directly).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from conveyor.localcloud.persist.store import DataDir
from conveyor.localcloud.resolver import ACCOUNT


def _backends(service: str) -> Any:
    import importlib

    module = importlib.import_module(f"moto.{service}.models")
    return getattr(module, f"{service}_backends")[ACCOUNT]


# --- DynamoDB ---------------------------------------------------------------------------------------


def collect_dynamodb(region: str) -> list[dict[str, Any]]:
    from conveyor.localcloud.fidelity import write_lock

    found = []
    with write_lock():  # no put/update/delete runs while the items are copied
        for name, table in list(_backends("dynamodb")[region].tables.items()):
            found.append({"table": name, "items": [item.to_json()["Attributes"] for item in table.all_items()]})
    return found


def restore_dynamodb(region: str, tables: list[dict[str, Any]]) -> tuple[int, list[str]]:
    """Put the items back; tables the stack no longer has are skipped (returned)."""
    backend = _backends("dynamodb")[region]
    count, skipped = 0, []
    for record in tables:
        table = backend.tables.get(record["table"])
        if table is None:
            skipped.append(record["table"])
            continue
        for attributes in record["items"]:
            table.put_item(attributes)
            count += 1
    return count, skipped


# --- SQS --------------------------------------------------------------------------------------------


def collect_sqs(region: str) -> list[dict[str, Any]]:
    """Every message still in a queue (visible or in flight: not deleted means not handled)."""
    found = []
    for name, queue in list(_backends("sqs")[region].queues.items()):
        with queue._messages_lock:
            messages = list(queue._messages)
        found.append(
            {
                "queue": name,
                "messages": [
                    {
                        "id": m.id,
                        "body": m.body,
                        "message_attributes": m.message_attributes,
                        "system_attributes": m.system_attributes,
                        "sent_timestamp": m.sent_timestamp,
                        "receive_count": m.approximate_receive_count,
                        "first_receive": m.approximate_first_receive_timestamp,
                        "group_id": m.group_id,
                        "deduplication_id": m.deduplication_id,
                        "sequence_number": m.sequence_number,
                    }
                    for m in messages
                ],
            }
        )
    return found


def restore_sqs(region: str, queues: list[dict[str, Any]]) -> int:
    """Messages come back visible (an in-flight message's receiver is gone: as if its visibility timed out)."""
    from moto.sqs.models import Message

    backend = _backends("sqs")[region]
    count = 0
    for record in queues:
        queue = backend.queues.get(record["queue"])
        if queue is None:
            continue
        restored = []
        for saved in record["messages"]:
            message = Message(saved["id"], saved["body"], saved.get("system_attributes"))
            message.message_attributes = saved.get("message_attributes") or {}
            message.sent_timestamp = saved.get("sent_timestamp")
            message.approximate_receive_count = int(saved.get("receive_count") or 0)
            message.approximate_first_receive_timestamp = saved.get("first_receive")
            message.group_id = saved.get("group_id")
            message.deduplication_id = saved.get("deduplication_id")
            message.sequence_number = saved.get("sequence_number")
            restored.append(message)
        with queue._messages_lock:
            queue._messages.extend(restored)
            queue._messages_lock.notify_all()
        count += len(restored)
    return count


# --- SNS --------------------------------------------------------------------------------------------


def collect_sns(region: str) -> list[dict[str, Any]]:
    return [
        {
            "arn": s.arn,
            "topic": s.topic.arn,
            "endpoint": s.endpoint,
            "protocol": s.protocol,
            "confirmed": bool(s.confirmed),
            "attributes": {k: v for k, v in s.attributes.items() if isinstance(v, str | int | float | bool)},
        }
        for s in list(_backends("sns")[region].subscriptions.values())
    ]


def restore_sns(region: str, subscriptions: list[dict[str, Any]]) -> int:
    from moto.sns.models import Subscription

    backend = _backends("sns")[region]
    count = 0
    for saved in subscriptions:
        topic = backend.topics.get(saved["topic"])
        if topic is None or saved["arn"] in backend.subscriptions:
            continue
        subscription = Subscription(backend.account_id, topic, saved["endpoint"], saved["protocol"])
        subscription.arn = saved["arn"]
        subscription.confirmed = saved.get("confirmed", False)
        attributes = dict(saved.get("attributes") or {})
        policy = attributes.pop("FilterPolicy", None)
        subscription.attributes = attributes
        backend.subscriptions[subscription.arn] = subscription
        if policy:
            backend.set_subscription_attributes(subscription.arn, "FilterPolicy", policy)
        count += 1
    return count


# --- CloudWatch -------------------------------------------------------------------------------------

_ALARM_FIELDS = (
    "namespace",
    "metric_name",
    "comparison_operator",
    "evaluation_periods",
    "datapoints_to_alarm",
    "period",
    "threshold",
    "statistic",
    "extended_statistic",
    "description",
    "alarm_actions",
    "ok_actions",
    "insufficient_data_actions",
    "unit",
    "actions_enabled",
    "treat_missing_data",
    "evaluate_low_sample_count_percentile",
    "threshold_metric_id",
    "rule",
)
METRIC_CHUNK = 50_000  # metric data is written in chunks of this many data points, each chunk once


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, dt.datetime) else (None if value is None else str(value))


def _datum(datum: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "ns": datum.namespace,
        "name": datum.name,
        "dims": [[d.name, d.value] for d in datum.dimensions],
        "ts": _iso(datum.timestamp),
    }
    if datum.unit is not None:
        record["unit"] = datum.unit
    if hasattr(datum, "value"):
        record["value"] = datum.value
    else:
        record["stats"] = [datum.sum, datum.min, datum.max, datum.sample_count]
    return record


@dataclass
class MetricChunks:
    """moto's metric data only grows: each full chunk is stored once, as a blob; the tail is rewritten each
    snapshot, from lines encoded once (a data point is encoded when it is first seen, never again)."""

    chunks: list[tuple[int, str]] = field(default_factory=list)  # (data points, blob)
    tail: list[bytes] = field(default_factory=list)  # the data points after the chunks, encoded

    def collect(self, data: DataDir, region: str) -> list[bytes]:
        """The section's lines: one per chunk, then one per data point of the tail."""
        metric_data = _backends("cloudwatch")[region].metric_data
        end = len(metric_data)
        done = sum(n for n, _ in self.chunks)
        if done + len(self.tail) > end:  # the store was replaced: start over
            self.chunks, self.tail, done = [], [], 0
        start = done + len(self.tail)
        self.tail.extend(_encode(_datum(d)) for d in metric_data[start:end])
        while len(self.tail) >= METRIC_CHUNK:
            rows, self.tail = self.tail[:METRIC_CHUNK], self.tail[METRIC_CHUNK:]
            self.chunks.append((len(rows), data.put_blob(b"[" + b",".join(rows) + b"]")))
        lines = [_encode({"chunk": blob, "count": n}) for n, blob in self.chunks]
        lines.extend(b'{"datum":' + row + b"}" for row in self.tail)
        return lines


def _encode(record: dict[str, Any]) -> bytes:
    return json.dumps(record, separators=(",", ":"), allow_nan=False).encode()


def collect_alarms(region: str) -> list[dict[str, Any]]:
    backend = _backends("cloudwatch")[region]
    found = []
    for alarm in list(backend.alarms.values()):
        record = {name: getattr(alarm, name, None) for name in _ALARM_FIELDS}
        record.update(
            name=alarm.name,
            dimensions=[{"Name": d.name, "Value": d.value} for d in alarm.dimensions],
            state_value=alarm.state_value,
            state_reason=alarm.state_reason,
            state_reason_data=alarm.state_reason_data,
            state_updated=_iso(alarm.state_updated_timestamp),
            tags=backend.tagger.get_tag_dict_for_resource(alarm.alarm_arn),
        )
        found.append(record)
    return found


def restore_cloudwatch(data: DataDir, region: str, metrics: list[dict[str, Any]], alarms: list[dict[str, Any]]) -> int:
    from moto.cloudwatch.models import MetricAggregatedDatum, MetricDatum

    backend = _backends("cloudwatch")[region]
    rows: list[dict[str, Any]] = []
    for record in metrics:
        if "chunk" in record:
            rows.extend(json.loads(data.read_blob(record["chunk"])))
        else:
            rows.append(record["datum"])
    restored: list[Any] = []
    for row in rows:
        dims = [{"Name": n, "Value": v} for n, v in row["dims"]]
        when = dt.datetime.fromisoformat(row["ts"]) if row.get("ts") else None
        if "value" in row:
            restored.append(MetricDatum(row["ns"], row["name"], row["value"], dims, when, row.get("unit")))
        else:
            total, low, high, samples = row["stats"]
            restored.append(
                MetricAggregatedDatum(row["ns"], row["name"], low, high, samples, total, dims, when, row.get("unit"))
            )
    backend.metric_data[:0] = restored  # before anything that arrived since the start
    for saved in alarms:
        arguments = {name: saved.get(name) for name in _ALARM_FIELDS}
        tags = [{"Key": k, "Value": v} for k, v in (saved.get("tags") or {}).items()]
        alarm = backend.put_metric_alarm(name=saved["name"], dimensions=saved["dimensions"], tags=tags, **arguments)
        alarm.state_value = saved["state_value"]
        alarm.state_reason = saved["state_reason"]
        alarm.state_reason_data = saved["state_reason_data"]
        if saved.get("state_updated"):
            alarm.state_updated_timestamp = dt.datetime.fromisoformat(saved["state_updated"])
    return len(restored)
