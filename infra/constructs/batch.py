"""Batch scoring: the state machine "batch" (infra/batch_definition.py) and its two functions, with
least-privilege grants: each function reads and writes only the keys of its part of the layout."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra import constants as c
from infra import nag
from infra.batch_definition import build_batch_definition
from infra.constants import Fn
from infra.functions import FunctionFactory


class Batch(Construct):
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
    ) -> None:
        super().__init__(scope, construct_id)
        self.functions: dict[str, lambda_.IFunction] = {
            Fn.BATCH_PLAN: factory.image_function(self, Fn.BATCH_PLAN),
            Fn.BATCH_SCORE: factory.image_function(self, Fn.BATCH_SCORE),
        }
        self._grant(data_bucket, artifact_bucket, capture_bucket, table)
        log_group = logs.LogGroup(self, "Logs", retention=c.LOG_RETENTION, removal_policy=cdk.RemovalPolicy.DESTROY)
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            definition_body=sfn.DefinitionBody.from_chainable(
                build_batch_definition(self, self.functions, artifact_bucket)
            ),
            state_machine_type=sfn.StateMachineType.STANDARD,
            timeout=c.BATCH_TIMEOUT,
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
        )
        nag.state_machine_role(self.state_machine.role, self.functions.values())
        nag.distributed_map_role(self.state_machine, artifact_bucket)

    def _grant(
        self, data_bucket: s3.IBucket, artifact_bucket: s3.IBucket, capture_bucket: s3.IBucket, table: dynamodb.ITable
    ) -> None:
        plan, score = self.functions[Fn.BATCH_PLAN], self.functions[Fn.BATCH_SCORE]
        # plan: the batch object's size, tags and bytes; the champion; writes the items manifest.
        data_bucket.grant_read(plan, c.BATCH_KEY_WILDCARD)
        artifact_bucket.grant_put(plan, c.STAGING_KEY_WILDCARD)
        table.grant_read_data(plan)
        nag.bucket_grants(
            plan,
            [(data_bucket, c.BATCH_KEY_WILDCARD), (artifact_bucket, c.STAGING_KEY_WILDCARD)],
            "batch plan reads the batch object and writes its chunk manifest.",
        )
        # score: its chunk of the batch object, the version's model and spec; writes the scored part
        # and the capture records.
        data_bucket.grant_read(score, c.BATCH_KEY_WILDCARD)
        data_bucket.grant_put(score, c.SCORED_KEY_WILDCARD)
        artifact_bucket.grant_read(score)
        capture_bucket.grant_put(score, c.CAPTURE_KEY_WILDCARD)
        table.grant_read_data(score)
        nag.bucket_grants(
            score,
            [
                (data_bucket, c.BATCH_KEY_WILDCARD),
                (data_bucket, c.SCORED_KEY_WILDCARD),
                (artifact_bucket, "*"),
                (capture_bucket, c.CAPTURE_KEY_WILDCARD),
            ],
            "batch score reads its chunk and the version's artifacts, writes scored parts and capture records.",
        )
