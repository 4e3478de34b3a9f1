"""The Conveyor stack: a thin composition of one construct per capability."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import Construct

from infra import constants as c
from infra import nag
from infra.constructs.access import OperatorAccess
from infra.constructs.alerts import Alerts
from infra.constructs.batch import Batch
from infra.constructs.buckets import access_logs_bucket
from infra.constructs.dashboard import Dashboard
from infra.constructs.ingest import Ingest
from infra.constructs.live_monitor import LiveMonitor
from infra.constructs.monitoring import Monitoring
from infra.constructs.pipeline import Pipeline
from infra.constructs.registry import Registry
from infra.constructs.serving import CaptureStore, Serving
from infra.functions import FunctionFactory


class ConveyorStack(cdk.Stack):
    """Storage, the workloads (pipeline, batch, ingest, live monitor, serving), what watches them
    (alarms, the board), the people's roles, and the outputs the CLI reads."""

    def __init__(self, scope: Construct, construct_id: str, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self._storage()
        self._workloads()
        self._watch()
        self._access_and_outputs()

    def _storage(self) -> None:
        self._access_logs = access_logs_bucket(self, "AccessLogsBucket")
        self._alerts = Alerts(self, "Alerts")
        self._registry = Registry(self, "Registry", access_logs=self._access_logs)
        self._ingest = Ingest(self, "Ingest", access_logs=self._access_logs)
        self._capture = CaptureStore(self, "Capture", access_logs=self._access_logs)

        # Every function gets the same environment, whatever it uses of it.
        self._factory = FunctionFactory(
            self,
            "Functions",
            environment={
                "DATA_BUCKET": self._ingest.data_bucket.bucket_name,
                "ARTIFACT_BUCKET": self._registry.artifact_bucket.bucket_name,
                "CAPTURE_BUCKET": self._capture.bucket.bucket_name,
                "REGISTRY_TABLE": self._registry.table.table_name,
                "ALERTS_TOPIC_ARN": self._alerts.topic.topic_arn,
                "POWERTOOLS_SERVICE_NAME": c.SERVICE_NAME,
                "POWERTOOLS_METRICS_NAMESPACE": c.METRICS_NAMESPACE,
                "LOG_LEVEL": c.LOG_LEVEL,
                "STACK_NAME": cdk.Aws.STACK_NAME,  # per-model alarms are named {stack}-{model}-{signal}
            },
        )

    def _workloads(self) -> None:
        self._pipeline = Pipeline(
            self,
            "Pipeline",
            factory=self._factory,
            data_bucket=self._ingest.data_bucket,
            artifact_bucket=self._registry.artifact_bucket,
            capture_bucket=self._capture.bucket,
            table=self._registry.table,
            alerts=self._alerts.topic,
        )
        self._batch = Batch(
            self,
            "Batch",
            factory=self._factory,
            data_bucket=self._ingest.data_bucket,
            artifact_bucket=self._registry.artifact_bucket,
            capture_bucket=self._capture.bucket,
            table=self._registry.table,
        )
        self._dispatcher = self._ingest.add_dispatcher(
            self._factory, self._pipeline.state_machine, self._batch.state_machine
        )
        self._live = LiveMonitor(
            self,
            "LiveMonitor",
            factory=self._factory,
            data_bucket=self._ingest.data_bucket,
            artifact_bucket=self._registry.artifact_bucket,
            capture_bucket=self._capture.bucket,
            table=self._registry.table,
            state_machine=self._pipeline.state_machine,
            dispatcher=self._dispatcher,
        )
        self._serving = Serving(
            self,
            "Serving",
            factory=self._factory,
            artifact_bucket=self._registry.artifact_bucket,
            capture_bucket=self._capture.bucket,
            table=self._registry.table,
        )

    def _watch(self) -> None:
        assert self._ingest.dispatch_function is not None
        self._monitoring = Monitoring(
            self,
            "Monitoring",
            factory=self._factory,
            topic=self._alerts.topic,
            table=self._registry.table,
            state_machine=self._pipeline.state_machine,
            functions={
                **self._pipeline.functions,
                **self._batch.functions,
                c.Fn.PREDICT: self._serving.function,
                c.Fn.DISPATCH: self._ingest.dispatch_function,
                c.Fn.MONITOR: self._live.monitor,
                c.Fn.LABELS: self._live.labels,
            },
            dead_letter_queues={"Ingest": self._ingest.dead_letter_queue},
            api=self._serving.api,
            capture_stream=self._serving.capture_stream,
            alarm_syncers=[self._pipeline.functions[c.Fn.DEPLOY]],
        )
        self._board = Dashboard(
            self,
            "Board",
            factory=self._factory,
            table=self._registry.table,
            state_machine=self._pipeline.state_machine,
            dead_letter_queue=self._ingest.dead_letter_queue,
            alarms=self._monitoring.alarms,
        )
        self._monitoring.watch_functions({c.Fn.BOARD_WIDGET: self._board.widget_function})

    def _access_and_outputs(self) -> None:
        self._access = OperatorAccess(
            self,
            "Access",
            table=self._registry.table,
            data_bucket=self._ingest.data_bucket,
            artifact_bucket=self._registry.artifact_bucket,
            capture_bucket=self._capture.bucket,
            state_machine=self._pipeline.state_machine,
            api=self._serving.api,
        )

        self.data_bucket = self._ingest.data_bucket
        self.artifact_bucket = self._registry.artifact_bucket
        self.capture_bucket = self._capture.bucket
        self.table = self._registry.table
        self.alerts_topic = self._alerts.topic
        self.state_machine = self._pipeline.state_machine
        self.batch_state_machine = self._batch.state_machine
        self.ingest_queue = self._ingest.queue
        self.api = self._serving.api
        self.monitoring = self._monitoring
        self.board = self._board
        self.predict_function = self._serving.function
        self.approver_role = self._access.approver
        self.operator_role = self._access.operator

        outputs = {
            c.Output.DATA_BUCKET: self._ingest.data_bucket.bucket_name,
            c.Output.ARTIFACT_BUCKET: self._registry.artifact_bucket.bucket_name,
            c.Output.CAPTURE_BUCKET: self._capture.bucket.bucket_name,
            c.Output.REGISTRY_TABLE: self._registry.table.table_name,
            c.Output.ALERTS_TOPIC: self._alerts.topic.topic_arn,
            c.Output.STATE_MACHINE: self._pipeline.state_machine.state_machine_arn,
            c.Output.BATCH_STATE_MACHINE: self._batch.state_machine.state_machine_arn,
            c.Output.INGEST_QUEUE: self._ingest.queue.queue_url,
            c.Output.API_URL: self._serving.api.url,
            c.Output.STACK_NAME: cdk.Aws.STACK_NAME,
            c.Output.ALARM_QUEUE: self._monitoring.queue.queue_url,
            c.Output.MONITOR_FUNCTION: self._live.monitor.function_name,
            c.Output.DASHBOARD: self._board.dashboard.dashboard_name,
            c.Output.APPROVER_ROLE: self._access.approver.role_arn,
            c.Output.OPERATOR_ROLE: self._access.operator.role_arn,
        }
        for output_id, value in outputs.items():
            cdk.CfnOutput(self, output_id, value=value)

        nag.cdk_singletons(self)
