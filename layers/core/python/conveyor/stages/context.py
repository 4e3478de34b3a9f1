"""What a stage needs from the outside world, built once per Lambda container."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from conveyor.config import Settings
from conveyor.errors import ConveyorError
from conveyor.events import RegistryEvent
from conveyor.ports import Alarms, EventPublisher, MetricsSink, Notifier, ObjectStore, Table
from conveyor.registry import Registry


class StageInputError(ConveyorError):
    """The state handed to a stage lacks what the stage needs."""


# What a stage reads of the execution state: one of conveyor.workflow's *Input TypedDicts.
StateT = TypeVar("StateT")


@dataclass(frozen=True)
class StageEvent(Generic[StateT]):
    """A Lambda task's payload (conveyor.workflow.StageInput), parsed."""

    state: StateT
    execution_id: str
    task_token: str | None = None  # set for a task that waits for a callback (.waitForTaskToken)

    @classmethod
    def parse(cls, event: Any) -> StageEvent[Any]:
        if not isinstance(event, dict) or not isinstance(event.get("state"), dict):
            raise StageInputError(
                "a stage event must be an object with 'state' (the execution state) and 'execution_id'"
            )
        token = event.get("task_token")
        return cls(
            state=event["state"],
            execution_id=str(event.get("execution_id") or "local"),
            task_token=str(token) if token else None,
        )

    def require(self, *path: str) -> Any:
        """The value at ``path`` of the state; StageInputError when the state lacks it."""
        node: Any = self.state
        for part in path:
            if not isinstance(node, dict) or part not in node:
                raise StageInputError(f"the execution state has no {'.'.join(path)}")
            node = node[part]
        return node

    @property
    def execution_name(self) -> str:
        return re.sub(r"[^A-Za-z0-9_.-]", "-", self.execution_id.rsplit(":", 1)[-1])[:80]


@dataclass
class PipelineContext:
    settings: Settings
    store: ObjectStore
    table: Table
    notifier: Notifier
    metrics: MetricsSink
    events: EventPublisher
    alarms: Alarms | None = None  # per-model alarms, kept in step with what serves (conveyor.monitoring)

    @property
    def registry(self) -> Registry:
        return Registry(self.table)

    @classmethod
    @functools.cache
    def for_this_container(cls) -> PipelineContext:
        """Built on first use (a cold start), then reused by every invocation of the container."""
        return cls.from_env()

    @classmethod
    def from_env(cls) -> PipelineContext:
        from conveyor.adapters.aws import (
            CloudWatchAlarms,
            CloudWatchMetrics,
            DynamoTable,
            EventBridgePublisher,
            S3ObjectStore,
            SnsNotifier,
        )

        settings = Settings.from_env()
        return cls(
            settings=settings,
            store=S3ObjectStore(),
            table=DynamoTable(settings.registry_table),
            notifier=SnsNotifier(settings.alerts_topic_arn),
            metrics=CloudWatchMetrics(),
            events=EventBridgePublisher(),
            alarms=CloudWatchAlarms(),
        )

    def emit(self, event: RegistryEvent) -> None:
        self.events.publish(event.source, event.name, event.detail())

    def put_json(self, bucket: str, key: str, document: Any) -> None:
        self.store.put(bucket, key, json.dumps(document, indent=2, default=str).encode(), "application/json")


@functools.cache
def code_version() -> str:
    """What code made a model: ``CONVEYOR_CODE_VERSION`` when the deployment sets it (e.g. a git
    commit), else the package version plus a digest of the domain package's source, so two
    different codes never share a version string, in the cloud or locally."""
    import conveyor

    configured = os.environ.get("CONVEYOR_CODE_VERSION")
    if configured:
        return configured
    root = Path(conveyor.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return f"{getattr(conveyor, '__version__', '0')}+src.{digest.hexdigest()[:12]}"
