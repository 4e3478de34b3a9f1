"""Alerts: one SNS topic for pipeline outcomes and alarms (subscriptions: infra/constructs/monitoring.py)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct


class Alerts(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        # A customer-managed key rather than alias/aws/sns: the AWS-managed key's policy cannot
        # let CloudWatch alarms publish to the topic, and alarms are meant to land here.
        self.key = kms.Key(
            self,
            "Key",
            description="Conveyor alerts topic",
            enable_key_rotation=True,
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],  # in a key policy "*" means this key
                # Only this account's alarms (confused-deputy protection).
                conditions={
                    "StringEquals": {"aws:SourceAccount": cdk.Aws.ACCOUNT_ID},
                    "ArnLike": {
                        "aws:SourceArn": f"arn:{cdk.Aws.PARTITION}:cloudwatch:{cdk.Aws.REGION}:{cdk.Aws.ACCOUNT_ID}:alarm:*"
                    },
                },
            )
        )
        self.topic = sns.Topic(
            self,
            "Topic",
            display_name="Conveyor alerts",
            master_key=self.key,
            enforce_ssl=True,
        )
