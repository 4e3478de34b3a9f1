"""`ConveyorCiAccess`: what GitHub Actions needs to deploy Conveyor, deployed once per account and
region by someone with administrator rights (README, "Deploying to AWS").

- The GitHub OIDC identity provider (`token.actions.githubusercontent.com`, audience
  `sts.amazonaws.com`), or the account's existing one (an account has one per URL):
  `-c github_oidc_provider_arn=arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com`.
- The deploy role. Only this repository's main branch and its deployment environments may assume it
  (`-c github_repo=owner/name`), and it may do nothing but assume the CDK bootstrap roles: what a
  deploy may change is what `cdk bootstrap` granted those, never more.
- API Gateway's account-wide CloudWatch Logs role (`AWS::ApiGateway::Account`): a regional setting
  that two `Conveyor-{stage}` stacks would overwrite in turn if each owned it. Skip it with
  `-c api_gateway_logging_role=false` when another stack of the account already sets it.
"""

from __future__ import annotations

import re
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from infra.stages import STAGES

CI_ACCESS_STACK = "ConveyorCiAccess"
GITHUB_OIDC_URL = "https://token.actions.githubusercontent.com"
GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
OIDC_AUDIENCE = "sts.amazonaws.com"
DEFAULT_BOOTSTRAP_QUALIFIER = "hnb659fds"  # `cdk bootstrap`'s default
DEPLOY_BRANCH = "main"
_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_QUALIFIER = re.compile(r"^[A-Za-z0-9_-]{1,10}$")
API_GATEWAY_LOGS_POLICY = "service-role/AmazonAPIGatewayPushToCloudWatchLogs"


class CiAccessError(ValueError):
    """Missing or malformed context for the CI access stack: reported at synth."""


def github_subjects(repo: str, environments: tuple[str, ...]) -> list[str]:
    """The OIDC `sub` claims the deploy role trusts: jobs on main without an environment, and jobs
    of the named environments (GitHub puts the environment, not the branch, in `sub` then)."""
    return [
        f"repo:{repo}:ref:refs/heads/{DEPLOY_BRANCH}",
        *(f"repo:{repo}:environment:{environment}" for environment in environments),
    ]


class CiAccessStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        github_repo: str,
        oidc_provider_arn: str | None = None,
        bootstrap_qualifier: str = DEFAULT_BOOTSTRAP_QUALIFIER,
        environments: tuple[str, ...] = tuple(STAGES),
        api_gateway_logging_role: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        if oidc_provider_arn:
            provider = iam.OidcProviderNative.from_oidc_provider_arn(self, "GitHubOidc", oidc_provider_arn)
        else:
            provider = iam.OidcProviderNative(self, "GitHubOidc", url=GITHUB_OIDC_URL, client_ids=[OIDC_AUDIENCE])
        self.deploy_role = iam.Role(
            self,
            "DeployRole",
            description=f"GitHub Actions deploys of {github_repo}: may only assume the CDK bootstrap roles",
            max_session_duration=cdk.Duration.hours(1),
            assumed_by=iam.WebIdentityPrincipal(
                provider.oidc_provider_arn,
                conditions={
                    "StringEquals": {f"{GITHUB_OIDC_HOST}:aud": OIDC_AUDIENCE},
                    "StringLike": {f"{GITHUB_OIDC_HOST}:sub": github_subjects(github_repo, environments)},
                },
            ),
        )
        account, region = cdk.Aws.ACCOUNT_ID, cdk.Aws.REGION
        bootstrap_roles = f"arn:{cdk.Aws.PARTITION}:iam::{account}:role/cdk-{bootstrap_qualifier}-*-{account}-{region}"
        self.deploy_role.add_to_policy(iam.PolicyStatement(actions=["sts:AssumeRole"], resources=[bootstrap_roles]))
        NagSuppressions.add_resource_suppressions(
            self.deploy_role,
            [
                NagPackSuppression(
                    id="AwsSolutions-IAM5",
                    reason="The CDK bootstrap roles of this account and region (deploy, file and image "
                    "publishing, lookup): the CDK CLI picks the one each step needs.",
                    applies_to=[
                        f"Resource::arn:<AWS::Partition>:iam::<AWS::AccountId>:role/cdk-{bootstrap_qualifier}-*"
                        "-<AWS::AccountId>-<AWS::Region>"
                    ],
                )
            ],
            apply_to_children=True,
        )
        if api_gateway_logging_role:
            self._api_gateway_account()
        cdk.CfnOutput(self, "DeployRoleArn", value=self.deploy_role.role_arn)
        cdk.CfnOutput(self, "GitHubOidcProviderArn", value=provider.oidc_provider_arn)

    def _api_gateway_account(self) -> None:
        """The account's API Gateway logging role, which the stages' access and execution logs need."""
        role = iam.Role(
            self,
            "ApiGatewayLogsRole",
            description="API Gateway (this account and region) writes access and execution logs",
            assumed_by=iam.ServicePrincipal("apigateway.amazonaws.com"),
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(API_GATEWAY_LOGS_POLICY)],
        )
        NagSuppressions.add_resource_suppressions(
            role,
            [
                NagPackSuppression(
                    id="AwsSolutions-IAM4",
                    reason="API Gateway's account-level role for access/execution logs: the AWS managed "
                    "policy is the documented one for it.",
                    applies_to=[f"Policy::arn:<AWS::Partition>:iam::aws:policy/{API_GATEWAY_LOGS_POLICY}"],
                )
            ],
        )
        apigw.CfnAccount(self, "ApiGatewayAccount", cloud_watch_role_arn=role.role_arn)


def add_ci_access(app: cdk.App, *, env: cdk.Environment | None) -> CiAccessStack:
    """The `ConveyorCiAccess` stack from the app's context (`-c ci_access=true -c github_repo=owner/name`)."""
    context = app.node.try_get_context
    repo = str(context("github_repo") or "")
    if not _REPO.match(repo):
        raise CiAccessError(f"-c github_repo=owner/name is required with -c ci_access=true (got {repo!r})")
    qualifier = str(context("@aws-cdk/core:bootstrapQualifier") or DEFAULT_BOOTSTRAP_QUALIFIER)
    if not _QUALIFIER.match(qualifier):
        raise CiAccessError(f"not a CDK bootstrap qualifier: {qualifier!r}")
    environments = tuple(str(context("github_environments") or ",".join(STAGES)).split(","))
    return CiAccessStack(
        app,
        CI_ACCESS_STACK,
        env=env,
        description="Conveyor: GitHub Actions OIDC deploy role (and the account's API Gateway logging role)",
        github_repo=repo,
        oidc_provider_arn=context("github_oidc_provider_arn") or None,
        bootstrap_qualifier=qualifier,
        environments=tuple(environment.strip() for environment in environments if environment.strip()),
        api_gateway_logging_role=str(context("api_gateway_logging_role")).lower() != "false",
    )
