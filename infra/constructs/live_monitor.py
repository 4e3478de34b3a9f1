"""The live monitor and the label ingest: one static schedule -> the monitor's tick; label files
(routed by the dispatcher) -> the label function."""

from __future__ import annotations

from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra import constants as c
from infra import nag
from infra.constructs.registry import grant_model_items_write
from infra.functions import FunctionFactory


class LiveMonitor(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        factory: FunctionFactory,
        data_bucket: s3.IBucket,
        artifact_bucket: s3.IBucket,
        capture_bucket: s3.IBucket,
        table: dynamodb.ITable,
        state_machine: sfn.IStateMachine,
        dispatcher: lambda_.Function,
    ) -> None:
        super().__init__(scope, construct_id)
        self.monitor = factory.image_function(
            self, c.Fn.MONITOR, extra_environment={"STATE_MACHINE_ARN": state_machine.state_machine_arn}
        )
        self.labels = factory.image_function(self, c.Fn.LABELS)

        # The monitor reads the capture, joined labels and each version's spec and profile, writes its
        # reports beside the capture, keeps each model's last run in the registry, publishes Live*
        # metrics and starts scheduled retrains.
        capture_bucket.grant_read(self.monitor)
        capture_bucket.grant_put(self.monitor, c.MONITOR_REPORTS_KEY_WILDCARD)
        artifact_bucket.grant_read(self.monitor)
        grant_model_items_write(table, self.monitor)  # its last run (MODEL#*), never the routing record
        state_machine.grant_start_execution(self.monitor)
        self.monitor.add_to_role_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": c.METRICS_NAMESPACE}},
            )
        )
        nag.metrics_publisher(self.monitor)
        nag.bucket_grants(
            self.monitor,
            [(capture_bucket, "*"), (capture_bucket, c.MONITOR_REPORTS_KEY_WILDCARD), (artifact_bucket, "*")],
            "the monitor reads captured requests, joined labels, specs and profiles; writes its reports.",
        )
        # One rule for every model: per-model schedules would be resources created at run time.
        self.schedule = events.Rule(
            self,
            "MonitorSchedule",
            description="The live monitor's tick: runs each serving model's monitor when its schedule is due",
            schedule=events.Schedule.rate(c.MONITOR_TICK),
            targets=[
                targets.LambdaFunction(
                    self.monitor,
                    event=events.RuleTargetInput.from_object({"action": "tick", "time": events.EventField.time}),
                    retry_attempts=0,  # the next tick retries: a due monitor stays due
                )
            ],
        )

        # Labels: read the file, quarantine a malformed one (copy, report, delete), read the capture and
        # write the joined rows and the join report; the spec gives the target column.
        data_bucket.grant_read(self.labels, c.LABELS_KEY_WILDCARD)
        data_bucket.grant_delete(self.labels, c.LABELS_KEY_WILDCARD)
        data_bucket.grant_put(self.labels, c.LABELS_QUARANTINE_KEY_WILDCARD)
        capture_bucket.grant_read(self.labels)
        for written in c.LABELS_JOINED_KEY_WILDCARDS:
            capture_bucket.grant_put(self.labels, written)
        artifact_bucket.grant_read(self.labels)
        nag.bucket_grants(
            self.labels,
            [
                (data_bucket, c.LABELS_KEY_WILDCARD),
                (data_bucket, c.LABELS_QUARANTINE_KEY_WILDCARD),
                (capture_bucket, "*"),
                *((capture_bucket, written) for written in c.LABELS_JOINED_KEY_WILDCARDS),
                (artifact_bucket, "*"),
            ],
            "labels reads label files (quarantines malformed ones), the capture and the spec; writes joined labels.",
        )
        # The dispatcher hands label files to the label function (asynchronous invoke).
        self.labels.grant_invoke(dispatcher)
        nag.function_invoker(dispatcher, self.labels)
        dispatcher.add_environment("LABELS_FUNCTION_NAME", self.labels.function_name)
