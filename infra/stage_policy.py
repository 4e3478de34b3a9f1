"""Applies a stage's settings (infra/stages.py) to a built Conveyor stack.

The capture bucket's lifecycle (records expire after the stage's capture retention) and predict's
memory and reserved concurrency are set on the constructs the stack exposes.

Removal policies and log retention are applied to every resource of their type by mutating
aspects, which run before cdk-nag reads the template: a construct added later follows its stage
without knowing about stages.
"""

from __future__ import annotations

import aws_cdk as cdk
import jsii
from aws_cdk import IAspect
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import IConstruct

from infra.ci_access import GITHUB_OIDC_HOST, OIDC_AUDIENCE
from infra.stages import StageSettings

DATA_RESOURCE_TYPES = ("AWS::S3::Bucket", "AWS::DynamoDB::Table", "AWS::KMS::Key")
LOG_RESOURCE_TYPES = ("AWS::Logs::LogGroup",)


@jsii.implements(IAspect)
class LogRetention:
    """Sets the retention of every CloudWatch log group in scope."""

    def __init__(self, days: int) -> None:
        self.days = days

    def visit(self, node: IConstruct) -> None:
        if isinstance(node, logs.CfnLogGroup):
            node.retention_in_days = self.days


def apply_stage(
    stack: cdk.Stack,
    settings: StageSettings,
    alerts_topic: sns.ITopic,
    *,
    capture_bucket: s3.Bucket | None = None,
    predict_function: lambda_.Function | None = None,
    operator_role: iam.Role | None = None,
    github_repo: str | None = None,
) -> None:
    if operator_role is not None and github_repo and settings.smoke_from_ci:
        trust_ci_smoke(operator_role, github_repo, environment=settings.name)
    if capture_bucket is not None:
        capture_bucket.add_lifecycle_rule(
            id="CaptureRetention",
            expiration=cdk.Duration.days(settings.capture_retention_days),
            abort_incomplete_multipart_upload_after=cdk.Duration.days(1),
        )
    if predict_function is not None:
        function = predict_function.node.default_child
        assert isinstance(function, lambda_.CfnFunction)
        function.memory_size = settings.predict_memory_mb
        if settings.predict_reserved_concurrency is not None:
            function.reserved_concurrent_executions = settings.predict_reserved_concurrency
    serving = stack.node.try_find_child("Serving")
    if serving is not None:  # predict's start option (SnapStart or provisioned concurrency on its alias)
        serving.configure_start(settings.predict_start, settings.predict_provisioned_concurrency)
    for email in settings.alert_emails:
        alerts_topic.add_subscription(subscriptions.EmailSubscription(email))
    removal = cdk.RemovalPolicies.of(stack)
    removal.apply(settings.data_removal_policy, apply_to_resource_types=list(DATA_RESOURCE_TYPES))
    removal.apply(settings.log_removal_policy, apply_to_resource_types=list(LOG_RESOURCE_TYPES))
    cdk.Aspects.of(stack).add(LogRetention(settings.log_retention_days), priority=cdk.AspectPriority.MUTATING)


def trust_ci_smoke(role: iam.Role, github_repo: str, *, environment: str) -> None:
    """Let the deploy workflow's jobs in ``environment`` assume ``role`` through the account's GitHub OIDC
    provider (ConveyorCiAccess creates it): the smoke step's credentials. The deploy role itself stays
    limited to the CDK bootstrap roles."""
    stack = cdk.Stack.of(role)
    provider = stack.format_arn(service="iam", region="", resource="oidc-provider", resource_name=GITHUB_OIDC_HOST)
    role.assume_role_policy.add_statements(
        iam.PolicyStatement(
            actions=["sts:AssumeRoleWithWebIdentity"],
            principals=[iam.FederatedPrincipal(provider)],
            conditions={
                "StringEquals": {
                    f"{GITHUB_OIDC_HOST}:aud": OIDC_AUDIENCE,
                    f"{GITHUB_OIDC_HOST}:sub": f"repo:{github_repo}:environment:{environment}",
                }
            },
        )
    )
