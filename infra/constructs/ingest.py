"""Ingest: the data bucket, drops under {model}/incoming/ queued, one pipeline execution each."""

from __future__ import annotations

from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra import constants as c
from infra import nag
from infra.constructs.buckets import secure_bucket
from infra.functions import FunctionFactory


class Ingest(Construct):
    """Built in two steps: the bucket and queue first (the pipeline reads the bucket), then
    `add_dispatcher` once the state machine exists."""

    def __init__(self, scope: Construct, construct_id: str, *, access_logs: s3.IBucket) -> None:
        super().__init__(scope, construct_id)
        # Versioned: lineage records the exact object version every model was trained on.
        self.data_bucket = secure_bucket(
            self,
            "DataBucket",
            access_logs=access_logs,
            versioned=True,
            event_bridge_enabled=True,
        )
        self.dead_letter_queue = sqs.Queue(
            self,
            "IngestDeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=c.QUEUE_RETENTION,
        )
        self.queue = sqs.Queue(
            self,
            "IngestQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=c.INGEST_VISIBILITY_TIMEOUT,
            retention_period=c.QUEUE_RETENTION,
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=c.INGEST_MAX_RECEIVE_COUNT
            ),
        )
        # The rule targets the queue, not the state machine: EventBridge delivers at least
        # once, so the dispatcher starts each object's execution under a name derived from
        # bucket/key/version and a duplicated event starts one execution, not two. (Locally,
        # moto also delivers rule targets reliably only to SQS.)
        self.rule = events.Rule(
            self,
            "DropRule",
            description="A data drop under {model}/incoming/ starts the pipeline; a label file under {model}/labels/ is "
            "joined; an object under {model}/batch/ is scored",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={
                    "bucket": {"name": [self.data_bucket.bucket_name]},
                    "object": {
                        "key": [
                            {"wildcard": c.INCOMING_KEY_WILDCARD},
                            {"wildcard": c.LABELS_KEY_WILDCARD},
                            {"wildcard": c.BATCH_KEY_WILDCARD},
                        ]
                    },
                },
            ),
            targets=[targets.SqsQueue(self.queue)],
        )
        self.dispatch_function: lambda_.Function | None = None

    def add_dispatcher(
        self, factory: FunctionFactory, state_machine: sfn.IStateMachine, batch_state_machine: sfn.IStateMachine
    ) -> lambda_.Function:
        fn = factory.zip_function(
            self,
            c.Fn.DISPATCH,
            extra_environment={
                "STATE_MACHINE_ARN": state_machine.state_machine_arn,
                "BATCH_STATE_MACHINE_ARN": batch_state_machine.state_machine_arn,
            },
        )
        fn.add_event_source(
            event_sources.SqsEventSource(self.queue, batch_size=c.DISPATCH_BATCH_SIZE, report_batch_item_failures=True)
        )
        state_machine.grant_start_execution(fn)
        batch_state_machine.grant_start_execution(fn)
        # HeadObject of the dropped object (its version and etag name the execution).
        self.data_bucket.grant_read(fn, c.INCOMING_KEY_WILDCARD)
        self.data_bucket.grant_read(fn, c.BATCH_KEY_WILDCARD)
        nag.bucket_grants(
            fn,
            [(self.data_bucket, c.INCOMING_KEY_WILDCARD), (self.data_bucket, c.BATCH_KEY_WILDCARD)],
            "dispatch reads dropped objects' metadata.",
        )
        self.dispatch_function = fn
        return fn
