"""The pipeline: validate, train, evaluate, register, then the deployment (approval, bakes, rollback), as one
state machine."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from conveyor import layout
from infra import constants as c
from infra import nag
from infra.constants import Fn
from infra.constructs.registry import grant_model_items_write, grant_routing_write
from infra.constructs.training_compute import TrainingCompute
from infra.functions import FunctionFactory
from infra.pipeline_definition import build_definition

INCOMING_OBJECTS = f"*/{layout.INCOMING}/*"
# The stages that change what serves: the only functions that may write the routing record.
ROUTING_WRITERS = (Fn.DEPLOY, Fn.TRIAL, Fn.ROLLBACK)


def _grant_read_put(bucket: s3.IBucket, grantee: iam.IGrantable) -> None:
    bucket.grant_read(grantee)
    bucket.grant_put(grantee)


class Pipeline(Construct):
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
        alerts: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        self.functions: dict[str, lambda_.IFunction] = {
            Fn.VALIDATE: factory.image_function(self, Fn.VALIDATE),
            Fn.TRAIN: factory.image_function(self, Fn.TRAIN),
            Fn.EVALUATE: factory.image_function(self, Fn.EVALUATE),
            Fn.DRIFT: factory.image_function(self, Fn.DRIFT),
            Fn.REGISTER: factory.zip_function(self, Fn.REGISTER),
            Fn.DEPLOY: factory.zip_function(self, Fn.DEPLOY),
            Fn.PLAN: factory.image_function(self, Fn.PLAN),
            Fn.APPROVAL: factory.zip_function(self, Fn.APPROVAL),
            Fn.TRIAL: factory.zip_function(self, Fn.TRIAL),
            Fn.BAKE: factory.zip_function(self, Fn.BAKE),
            Fn.ROLLBACK: factory.zip_function(self, Fn.ROLLBACK),
            Fn.CLAIM: factory.image_function(self, Fn.CLAIM),
            Fn.SETTLE: factory.image_function(self, Fn.SETTLE),
            Fn.FINISH: factory.zip_function(self, Fn.FINISH),
            Fn.TRAIN_PLAN: factory.image_function(self, Fn.TRAIN_PLAN),
            Fn.TRAIN_RESULT: factory.zip_function(self, Fn.TRAIN_RESULT),
        }
        # Training beyond the Train function: a Fargate task and a SageMaker job, the same image.
        self.compute = TrainingCompute(
            self,
            "TrainingCompute",
            image=factory.training_image,
            environment=factory.environment,
            data_bucket=data_bucket,
            artifact_bucket=artifact_bucket,
            table=table,
        )
        self._grant_data_stages(data_bucket, artifact_bucket, table)
        self._grant_deployment(artifact_bucket, capture_bucket, table, alerts)
        self._grant_model_stages(data_bucket, artifact_bucket, capture_bucket)
        log_group = logs.LogGroup(self, "Logs", retention=c.LOG_RETENTION, removal_policy=cdk.RemovalPolicy.DESTROY)
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            definition_body=sfn.DefinitionBody.from_chainable(
                build_definition(self, self.functions, alerts, self.compute)
            ),
            state_machine_type=sfn.StateMachineType.STANDARD,
            timeout=c.PIPELINE_TIMEOUT,
            tracing_enabled=True,
            # Execution data (inputs, outputs: data keys, metrics, reviewers' names) stays out of the log;
            # the execution history in Step Functions has it, behind IAM.
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
        )
        alerts.grant_publish(self.state_machine)  # also the KMS key of the encrypted topic
        nag.state_machine_role(self.state_machine.role, self.functions.values())
        nag.training_compute_caller(self.state_machine.role, self.compute.task_definition)

    def _grant_data_stages(self, data_bucket: s3.IBucket, artifact_bucket: s3.IBucket, table: dynamodb.ITable) -> None:
        """Validate, drift, train and evaluate: the data, the artifacts, the registry.

        Writers get put plus read, never aws-cdk's read-write grant (which deletes any object too).
        """
        validate, drift = self.functions[Fn.VALIDATE], self.functions[Fn.DRIFT]
        # validate moves each drop from incoming/ to accepted/ or quarantine/ with its report: it
        # deletes the drop it moved (incoming/ only; the bucket keeps the version).
        _grant_read_put(data_bucket, validate)
        data_bucket.grant_delete(validate, INCOMING_OBJECTS)
        _grant_read_put(artifact_bucket, validate)
        grant_model_items_write(table, validate)
        # drift reads the champion's profile and the accepted drop, writes its report beside the drop.
        _grant_read_put(data_bucket, drift)
        artifact_bucket.grant_read(drift)
        grant_model_items_write(table, drift)  # the drift-alert record (one alert per burst)
        self._grant_bursts(data_bucket, artifact_bucket, table)
        drift.add_to_role_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": c.METRICS_NAMESPACE}},
            )
        )
        nag.bucket_grants(
            drift, [(data_bucket, "*"), (artifact_bucket, "*")], "reads drops and profiles, writes drift reports."
        )
        nag.metrics_publisher(drift)
        for fn in (self.functions[Fn.TRAIN], self.functions[Fn.EVALUATE]):
            data_bucket.grant_read(fn)
            _grant_read_put(artifact_bucket, fn)
            table.grant_read_data(fn)
        # Choose compute: the spec, the registry's records of the data (rows, sizes); stages the Train input.
        # Read training result: the container's result, under staging/ only.
        plan, result = self.functions[Fn.TRAIN_PLAN], self.functions[Fn.TRAIN_RESULT]
        artifact_bucket.grant_read(plan)
        artifact_bucket.grant_put(plan, c.STAGING_KEY_WILDCARD)
        table.grant_read_data(plan)
        artifact_bucket.grant_read(result, c.STAGING_KEY_WILDCARD)
        nag.bucket_grants(
            plan,
            [(artifact_bucket, "*"), (artifact_bucket, c.STAGING_KEY_WILDCARD)],
            "reads the spec, stages the training input.",
        )
        nag.bucket_grants(result, [(artifact_bucket, c.STAGING_KEY_WILDCARD)], "reads a training container's result.")
        _grant_read_put(artifact_bucket, self.functions[Fn.REGISTER])
        grant_model_items_write(table, self.functions[Fn.REGISTER])

    def _grant_bursts(self, data_bucket: s3.IBucket, artifact_bucket: s3.IBucket, table: dynamodb.ITable) -> None:
        """One retrain per burst: the retrain lease in the registry table; the spec; wait_for's markers."""
        claim, settle, finish = (self.functions[name] for name in (Fn.CLAIM, Fn.SETTLE, Fn.FINISH))
        for fn in (claim, settle, finish):
            grant_model_items_write(table, fn)  # MODEL#{model}: the lease, the deployment lock, versions' statuses
        for fn in (claim, settle):
            artifact_bucket.grant_read(fn)  # the model's spec.yaml
        data_bucket.grant_read(settle)  # retrain.wait_for: the export's marker beside its parts
        nag.bucket_grants(claim, [(artifact_bucket, "*")], "claim reads the model's spec.")
        nag.bucket_grants(
            settle, [(data_bucket, "*"), (artifact_bucket, "*")], "settle reads the spec and the export's marker."
        )

    def _grant_deployment(
        self, artifact_bucket: s3.IBucket, capture_bucket: s3.IBucket, table: dynamodb.ITable, alerts: sns.ITopic
    ) -> None:
        """The deployment: promotion, trial and rollback change what serves (the routing record); plan,
        approval and bake write the deployment record only."""
        fn = self.functions
        for name in ROUTING_WRITERS:
            grant_routing_write(table, fn[name])
        for name in (Fn.PLAN, Fn.APPROVAL, Fn.BAKE):
            grant_model_items_write(table, fn[name])
        artifact_bucket.grant_read(fn[Fn.PLAN])  # the version's spec.yaml
        nag.bucket_grants(fn[Fn.PLAN], [(artifact_bucket, "*")], "plan reads the version's spec beside its artifact.")
        capture_bucket.grant_read(fn[Fn.BAKE])  # the captured requests of the bake window
        nag.bucket_grants(fn[Fn.BAKE], [(capture_bucket, "*")], "bake reads the capture records of its window.")
        alerts.grant_publish(fn[Fn.APPROVAL])  # tells the reviewers (the topic's key too)
        nag.topic_publisher(fn[Fn.APPROVAL])
        # Registry events (ModelRegistered, ModelRejected, ModelPromoted, ModelRolledBack, DriftDetected)
        # on the default bus.
        default_bus = events.EventBus.from_event_bus_name(self, "DefaultBus", "default")
        for name in (Fn.REGISTER, Fn.DEPLOY, Fn.ROLLBACK, Fn.DRIFT):
            default_bus.grant_put_events_to(fn[name])

    def _grant_model_stages(
        self, data_bucket: s3.IBucket, artifact_bucket: s3.IBucket, capture_bucket: s3.IBucket
    ) -> None:
        """What validate, train, evaluate and register read and write, with the reasons cdk-nag records."""
        fn = self.functions
        nag.bucket_grants(
            fn[Fn.VALIDATE],
            [(data_bucket, "*"), (data_bucket, INCOMING_OBJECTS), (artifact_bucket, "*")],
            "validate moves drops incoming/ -> accepted/ or quarantine/ and writes reports.",
        )
        nag.bucket_grants(
            fn[Fn.TRAIN], [(data_bucket, "*"), (artifact_bucket, "*")], "reads accepted data, writes artifacts."
        )
        capture_bucket.grant_read(fn[Fn.EVALUATE])  # live requests the champion served, for the agreement gate
        nag.bucket_grants(
            fn[Fn.EVALUATE],
            [(data_bucket, "*"), (artifact_bucket, "*"), (capture_bucket, "*")],
            "reads accepted data and captured requests, writes artifacts.",
        )
        nag.bucket_grants(fn[Fn.REGISTER], [(artifact_bucket, "*")], "register reads and writes model artifacts.")
