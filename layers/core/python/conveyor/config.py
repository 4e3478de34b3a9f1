"""Runtime settings, read from the environment when a handler cold-starts (never at import)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from conveyor.errors import ConveyorError


class ConfigError(ConveyorError):
    pass


def _required(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise ConfigError(f"environment variable {name} is not set")
    return value


@dataclass(frozen=True)
class Settings:
    data_bucket: str
    artifact_bucket: str
    capture_bucket: str
    registry_table: str
    alerts_topic_arn: str
    state_machine_arn: str = ""
    batch_state_machine_arn: str = ""  # the state machine "batch" (batch scoring); the dispatcher starts it
    routing_cache_seconds: float = 5.0
    max_batch_rows: int = 1000
    metrics_namespace: str = "Conveyor"
    # Capture: "log" (the cloud: log lines, delivered by a subscription filter and Firehose); else
    # batched straight to capture_bucket (the local cloud).
    capture_delivery: str = ""
    capture_flush_seconds: float = 1.0
    capture_flush_records: int = 100
    # The CloudFormation stack: per-model alarms are named {stack}-{model}-{signal}.
    stack_name: str = "Conveyor"
    # The label ingest function the dispatcher hands label files to (conveyor.monitoring.labels).
    labels_function: str = ""

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            data_bucket=_required("DATA_BUCKET"),
            artifact_bucket=_required("ARTIFACT_BUCKET"),
            capture_bucket=os.environ.get("CAPTURE_BUCKET", ""),
            registry_table=_required("REGISTRY_TABLE"),
            alerts_topic_arn=os.environ.get("ALERTS_TOPIC_ARN", ""),
            state_machine_arn=os.environ.get("STATE_MACHINE_ARN", ""),
            batch_state_machine_arn=os.environ.get("BATCH_STATE_MACHINE_ARN", ""),
            routing_cache_seconds=float(os.environ.get("ROUTING_CACHE_SECONDS", "5")),
            max_batch_rows=int(os.environ.get("MAX_BATCH_ROWS", "1000")),
            metrics_namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "Conveyor"),
            capture_delivery=os.environ.get("CAPTURE_DELIVERY", ""),
            capture_flush_seconds=float(os.environ.get("CAPTURE_FLUSH_SECONDS", "1")),
            capture_flush_records=int(os.environ.get("CAPTURE_FLUSH_RECORDS", "100")),
            stack_name=os.environ.get("STACK_NAME", "Conveyor"),
            labels_function=os.environ.get("LABELS_FUNCTION_NAME", ""),
        )
