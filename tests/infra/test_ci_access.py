"""ConveyorCiAccess: the GitHub OIDC deploy role trusts only this repository's main branch and
environments, and may only assume the CDK bootstrap roles; cdk-nag finds nothing unsuppressed."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Annotations, Match, Template
from cdk_nag import AwsSolutionsChecks

from infra.ci_access import CI_ACCESS_STACK, CiAccessError, CiAccessStack, add_ci_access

REPO = "acme/conveyor"
SUBJECTS = [
    "repo:acme/conveyor:ref:refs/heads/main",
    "repo:acme/conveyor:environment:dev",
    "repo:acme/conveyor:environment:staging",
    "repo:acme/conveyor:environment:prod",
]
EXISTING_PROVIDER = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"


def _checked_app(context: dict[str, Any] | None = None) -> cdk.App:
    return cdk.App(context={"ci_access": "true", "github_repo": REPO, **(context or {})})


def _synth(context: dict[str, Any] | None = None) -> tuple[CiAccessStack, dict[str, Any]]:
    app = _checked_app(context)
    stack = add_ci_access(app, env=None)
    cdk.Aspects.of(app).add(AwsSolutionsChecks(verbose=True))
    return stack, dict(Template.from_stack(stack).to_json())


@pytest.fixture(scope="module")
def created() -> tuple[CiAccessStack, dict[str, Any]]:
    return _synth()


def _of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {key: value for key, value in template["Resources"].items() if value["Type"] == resource_type}


def _deploy_role(stack: CiAccessStack, template: dict[str, Any]) -> dict[str, Any]:
    logical_id = stack.resolve(stack.get_logical_id(stack.deploy_role.node.default_child))
    return dict(template["Resources"][logical_id])


def test_the_provider_is_github_with_the_sts_audience(created: tuple[CiAccessStack, dict[str, Any]]) -> None:
    _, template = created
    (provider,) = _of_type(template, "AWS::IAM::OIDCProvider").values()
    assert provider["Properties"]["Url"] == "https://token.actions.githubusercontent.com"
    assert provider["Properties"]["ClientIdList"] == ["sts.amazonaws.com"]


def test_the_role_trusts_only_main_and_the_environments(created: tuple[CiAccessStack, dict[str, Any]]) -> None:
    stack, template = created
    (statement,) = _deploy_role(stack, template)["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    (provider_id,) = _of_type(template, "AWS::IAM::OIDCProvider")
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Principal"] == {"Federated": {"Ref": provider_id}}
    assert statement["Condition"] == {
        "StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"},
        "StringLike": {"token.actions.githubusercontent.com:sub": SUBJECTS},
    }


def test_the_role_may_only_assume_the_cdk_bootstrap_roles(created: tuple[CiAccessStack, dict[str, Any]]) -> None:
    stack, template = created
    role = _deploy_role(stack, template)
    assert "ManagedPolicyArns" not in role["Properties"] and "Policies" not in role["Properties"]
    (policy,) = _of_type(template, "AWS::IAM::Policy").values()
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "sts:AssumeRole"
    account, region, partition = {"Ref": "AWS::AccountId"}, {"Ref": "AWS::Region"}, {"Ref": "AWS::Partition"}
    assert statement["Resource"] == {
        "Fn::Join": ["", ["arn:", partition, ":iam::", account, ":role/cdk-hnb659fds-*-", account, "-", region]]
    }


def test_the_stack_owns_the_account_api_gateway_logging_role(created: tuple[CiAccessStack, dict[str, Any]]) -> None:
    _, template = created
    (account,) = _of_type(template, "AWS::ApiGateway::Account").values()
    role_id = account["Properties"]["CloudWatchRoleArn"]["Fn::GetAtt"][0]
    trust = template["Resources"][role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert [statement["Principal"] for statement in trust] == [{"Service": "apigateway.amazonaws.com"}]


def test_cdk_nag_finds_nothing_unsuppressed(created: tuple[CiAccessStack, dict[str, Any]]) -> None:
    stack, _ = created
    annotations = Annotations.from_stack(stack)
    findings = [
        *annotations.find_error("*", Match.string_like_regexp("AwsSolutions-.*")),
        *annotations.find_warning("*", Match.string_like_regexp("AwsSolutions-.*")),
    ]
    assert findings == [], [str(finding.entry.data)[:300] for finding in findings]


def test_an_existing_provider_is_imported_not_created() -> None:
    stack, template = _synth(
        {
            "github_oidc_provider_arn": EXISTING_PROVIDER,
            "api_gateway_logging_role": "false",
            "github_environments": "prod",
            "@aws-cdk/core:bootstrapQualifier": "team7",
        }
    )
    assert stack.stack_name == CI_ACCESS_STACK
    assert _of_type(template, "AWS::IAM::OIDCProvider") == {}
    assert _of_type(template, "AWS::ApiGateway::Account") == {}
    (statement,) = _deploy_role(stack, template)["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Federated": EXISTING_PROVIDER}
    assert statement["Condition"]["StringLike"] == {
        "token.actions.githubusercontent.com:sub": [
            "repo:acme/conveyor:ref:refs/heads/main",
            "repo:acme/conveyor:environment:prod",
        ]
    }
    (policy,) = _of_type(template, "AWS::IAM::Policy").values()
    assert ":role/cdk-team7-*-" in policy["Properties"]["PolicyDocument"]["Statement"][0]["Resource"]["Fn::Join"][1]


@pytest.mark.parametrize("repo", ["", "conveyor", "acme/conveyor/extra", "acme/*"])
def test_the_repository_is_required_and_exact(repo: str) -> None:
    with pytest.raises(CiAccessError, match="github_repo=owner/name"):
        add_ci_access(cdk.App(context={"github_repo": repo}), env=None)
