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
    def __init__(self, scope: Construct, construct_id: str, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        access_logs = access_logs_bucket(self, "AccessLogsBucket")
        alerts = Alerts(self, "Alerts")
        registry = Registry(self, "Registry", access_logs=access_logs)
        ingest = Ingest(self, "Ingest", access_logs=access_logs)
        capture = CaptureStore(self, "Capture", access_logs=access_logs)

        # Every function gets the same environment, whatever it uses of it.
        factory = FunctionFactory(
            self,
            "Functions",
            environment={
                "DATA_BUCKET": ingest.data_bucket.bucket_name,
                "ARTIFACT_BUCKET": registry.artifact_bucket.bucket_name,
                "CAPTURE_BUCKET": capture.bucket.bucket_name,
                "REGISTRY_TABLE": registry.table.table_name,
                "ALERTS_TOPIC_ARN": alerts.topic.topic_arn,
                "POWERTOOLS_SERVICE_NAME": c.SERVICE_NAME,
                "POWERTOOLS_METRICS_NAMESPACE": c.METRICS_NAMESPACE,
                "LOG_LEVEL": c.LOG_LEVEL,
                "STACK_NAME": cdk.Aws.STACK_NAME,  # per-model alarms are named {stack}-{model}-{signal}
            },
        )
        pipeline = Pipeline(
            self,
            "Pipeline",
            factory=factory,
            data_bucket=ingest.data_bucket,
            artifact_bucket=registry.artifact_bucket,
            capture_bucket=capture.bucket,
            table=registry.table,
            alerts=alerts.topic,
        )
        batch = Batch(
            self,
            "Batch",
            factory=factory,
            data_bucket=ingest.data_bucket,
            artifact_bucket=registry.artifact_bucket,
            capture_bucket=capture.bucket,
            table=registry.table,
        )
        dispatcher = ingest.add_dispatcher(factory, pipeline.state_machine, batch.state_machine)
        live = LiveMonitor(
            self,
            "LiveMonitor",
            factory=factory,
            data_bucket=ingest.data_bucket,
            artifact_bucket=registry.artifact_bucket,
            capture_bucket=capture.bucket,
            table=registry.table,
            state_machine=pipeline.state_machine,
            dispatcher=dispatcher,
        )
        serving = Serving(
            self,
            "Serving",
            factory=factory,
            artifact_bucket=registry.artifact_bucket,
            capture_bucket=capture.bucket,
            table=registry.table,
        )
        assert ingest.dispatch_function is not None
        monitoring = Monitoring(
            self,
            "Monitoring",
            factory=factory,
            topic=alerts.topic,
            table=registry.table,
            state_machine=pipeline.state_machine,
            functions={
                **pipeline.functions,
                **batch.functions,
                c.Fn.PREDICT: serving.function,
                c.Fn.DISPATCH: ingest.dispatch_function,
                c.Fn.MONITOR: live.monitor,
                c.Fn.LABELS: live.labels,
            },
            dead_letter_queues={"Ingest": ingest.dead_letter_queue},
            api=serving.api,
            capture_stream=serving.capture_stream,
            alarm_syncers=[pipeline.functions[c.Fn.DEPLOY]],
        )
        board = Dashboard(
            self,
            "Board",
            factory=factory,
            table=registry.table,
            state_machine=pipeline.state_machine,
            dead_letter_queue=ingest.dead_letter_queue,
            alarms=monitoring.alarms,
        )
        monitoring.watch_functions({c.Fn.BOARD_WIDGET: board.widget_function})

        access = OperatorAccess(
            self,
            "Access",
            table=registry.table,
            data_bucket=ingest.data_bucket,
            artifact_bucket=registry.artifact_bucket,
            capture_bucket=capture.bucket,
            state_machine=pipeline.state_machine,
            api=serving.api,
        )

        self.data_bucket = ingest.data_bucket
        self.artifact_bucket = registry.artifact_bucket
        self.capture_bucket = capture.bucket
        self.table = registry.table
        self.alerts_topic = alerts.topic
        self.state_machine = pipeline.state_machine
        self.batch_state_machine = batch.state_machine
        self.ingest_queue = ingest.queue
        self.api = serving.api
        self.monitoring = monitoring
        self.board = board
        self.predict_function = serving.function
        self.approver_role = access.approver
        self.operator_role = access.operator

        outputs = {
            c.Output.DATA_BUCKET: ingest.data_bucket.bucket_name,
            c.Output.ARTIFACT_BUCKET: registry.artifact_bucket.bucket_name,
            c.Output.CAPTURE_BUCKET: capture.bucket.bucket_name,
            c.Output.REGISTRY_TABLE: registry.table.table_name,
            c.Output.ALERTS_TOPIC: alerts.topic.topic_arn,
            c.Output.STATE_MACHINE: pipeline.state_machine.state_machine_arn,
            c.Output.BATCH_STATE_MACHINE: batch.state_machine.state_machine_arn,
            c.Output.INGEST_QUEUE: ingest.queue.queue_url,
            c.Output.API_URL: serving.api.url,
            c.Output.STACK_NAME: cdk.Aws.STACK_NAME,
            c.Output.ALARM_QUEUE: monitoring.queue.queue_url,
            c.Output.MONITOR_FUNCTION: live.monitor.function_name,
            c.Output.DASHBOARD: board.dashboard.dashboard_name,
            c.Output.APPROVER_ROLE: access.approver.role_arn,
            c.Output.OPERATOR_ROLE: access.operator.role_arn,
        }
        for output_id, value in outputs.items():
            cdk.CfnOutput(self, output_id, value=value)

        nag.cdk_singletons(self)
