"""The model registry: versions and routing records in DynamoDB, artifacts in S3."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from conveyor import layout
from conveyor.registry import MODEL_PARTITION, ROUTING_PARTITION
from infra.constructs.buckets import secure_bucket

STAGING_RETENTION_DAYS = 30
# Every item write DynamoDB has (TransactWriteItems is authorized per item by these).
ITEM_WRITE_ACTIONS = ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem")


def _grant_writes(table: dynamodb.ITable, grantee: iam.IGrantable, partitions: tuple[str, ...]) -> None:
    table.grant_read_data(grantee)
    grantee.grant_principal.add_to_principal_policy(
        iam.PolicyStatement(
            actions=list(ITEM_WRITE_ACTIONS),
            resources=[table.table_arn],
            # Every key written must start with one of the partitions (LeadingKeys: the partition key).
            conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{p}*" for p in partitions]}},
        )
    )


def grant_model_items_write(table: dynamodb.ITable, grantee: iam.IGrantable) -> None:
    """Read the registry; write versions, datasets and deployment records (``MODEL#*``), never the routing record."""
    _grant_writes(table, grantee, (MODEL_PARTITION,))


def grant_routing_write(table: dynamodb.ITable, grantee: iam.IGrantable) -> None:
    """What changes what serves: read the registry; write the routing record (``ROUTING#*``) and versions."""
    _grant_writes(table, grantee, (MODEL_PARTITION, ROUTING_PARTITION))


class Registry(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, access_logs: s3.IBucket) -> None:
        super().__init__(scope, construct_id)
        # Items: one per (model, version), dataset and deployment under MODEL#{model}, plus one
        # routing record per model under ROUTING#{model} (conveyor/registry.py); versions and
        # routing revisions advance by conditional writes, so no capacity planning.
        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=True,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        # Model versions are immutable evidence (ONNX, profile, evidence, report): versioned.
        # Candidates are staged under staging/ until Register copies what a version keeps (its model,
        # contract, holdout, spec, profile) under the version; what stays behind expires.
        self.artifact_bucket = secure_bucket(
            self,
            "ArtifactBucket",
            access_logs=access_logs,
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="StagingLeftovers",
                    prefix=layout.STAGING_PREFIX,
                    expiration=cdk.Duration.days(STAGING_RETENTION_DAYS),
                    noncurrent_version_expiration=cdk.Duration.days(1),
                    expired_object_delete_marker=False,
                ),
            ],
        )
