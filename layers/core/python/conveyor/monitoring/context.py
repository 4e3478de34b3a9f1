"""What the live monitor, the label ingest and the monitor tick need from the outside world."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from conveyor import layout
from conveyor.config import Settings
from conveyor.ports import ExecutionStarter, MetricsSink, ObjectStore, Table
from conveyor.registry import Registry
from conveyor.spec import ModelSpec, load_spec


@dataclass
class MonitorContext:
    settings: Settings
    store: ObjectStore
    table: Table
    metrics: MetricsSink
    starter: ExecutionStarter  # the pipeline: a scheduled retrain starts an execution

    @property
    def registry(self) -> Registry:
        return Registry(self.table)

    def spec(self, model: str) -> ModelSpec:
        """The model's current spec (``layout.spec_key``: ``{model}/spec.yaml`` in the artifact bucket)."""
        return load_spec(self.store.get(self.settings.artifact_bucket, layout.spec_key(model)))

    @classmethod
    @functools.cache
    def for_this_container(cls) -> MonitorContext:
        """Built on first use (a cold start), then reused by every invocation of the container."""
        from conveyor.adapters.aws import CloudWatchMetrics, DynamoTable, S3ObjectStore, StepFunctionsStarter

        settings = Settings.from_env()
        return cls(
            settings=settings,
            store=S3ObjectStore(),
            table=DynamoTable(settings.registry_table),
            metrics=CloudWatchMetrics(),
            starter=StepFunctionsStarter(settings.state_machine_arn),
        )
