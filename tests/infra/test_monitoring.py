"""The Monitoring construct: system alarms with actions, the alarm-state rule, its queue and function, grants."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from infra import constants as c
from tests.infra.conftest import Synth


def _alarms(synth: Synth) -> dict[str, dict[str, Any]]:
    return {k: v["Properties"] for k, v in synth.resources("AWS::CloudWatch::Alarm").items()}


def _topic_ref(synth: Synth) -> dict[str, str]:
    return {"Ref": synth.logical_id(synth.stack.alerts_topic)}


def _statements(synth: Synth, function: Any) -> list[dict[str, Any]]:
    role_id = synth.stack.resolve(function.role.node.default_child.logical_id)
    found = []
    for policy in synth.resources("AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"].get("Roles", []):
            found.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return found


def _actions(statement: dict[str, Any]) -> set[str]:
    actions = statement["Action"]
    return {actions} if isinstance(actions, str) else set(actions)


def test_every_alarm_tells_the_alerts_topic(synth: Synth) -> None:
    alarms = _alarms(synth)
    assert len(alarms) >= 30
    for logical_id, alarm in alarms.items():
        assert alarm["AlarmActions"] == [_topic_ref(synth)], logical_id


def test_system_alarms_cover_the_issue_list(synth: Synth) -> None:
    by_metric = {(a.get("Namespace"), a.get("MetricName")) for a in _alarms(synth).values()}
    for expected in (
        ("AWS/States", "ExecutionsFailed"),
        ("AWS/States", "ExecutionsTimedOut"),
        ("AWS/States", "ExecutionThrottled"),
        ("AWS/Lambda", "Errors"),
        ("AWS/Lambda", "Throttles"),
        ("AWS/Lambda", "Duration"),
        ("AWS/Lambda", "ConcurrentExecutions"),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("AWS/ApiGateway", "5XXError"),
        ("AWS/ApiGateway", "Latency"),
        ("AWS/Firehose", "DeliveryToS3.Success"),
        ("AWS/Firehose", "ThrottledRecords"),
    ):
        assert expected in by_metric, expected
    errors = [a for a in _alarms(synth).values() if a.get("MetricName") == "Errors"]
    assert len(errors) == len(c.ZIP_FUNCTIONS) + len(c.IMAGE_FUNCTIONS)  # every function
    p99 = [a for a in _alarms(synth).values() if a.get("ExtendedStatistic") == "p99"]
    assert {a["MetricName"] for a in p99} == {"Duration", "Latency"}


def test_system_alarm_names_carry_the_stack_and_never_parse_as_a_model_alarm(synth: Synth) -> None:
    from conveyor.monitoring.alarms import parse_alarm_name

    for alarm in _alarms(synth).values():
        joined = alarm["AlarmName"]["Fn::Join"][1]
        assert joined[0] == {"Ref": "AWS::StackName"}
        assert parse_alarm_name("S", "S" + "".join(joined[1:])) is None


def test_alarm_state_changes_reach_the_alarm_queue(synth: Synth) -> None:
    queue_id = synth.logical_id(synth.stack.monitoring.queue)
    rules = [
        r["Properties"]
        for r in synth.resources("AWS::Events::Rule").values()
        if r["Properties"].get("EventPattern", {}).get("source") == ["aws.cloudwatch"]
    ]
    (rule,) = rules
    pattern = rule["EventPattern"]
    assert pattern["detail-type"] == [c.ALARM_STATE_CHANGE]
    (prefix,) = pattern["detail"]["alarmName"]
    assert prefix == {"prefix": {"Fn::Join": ["", [{"Ref": "AWS::StackName"}, "-"]]}}
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    queue = synth.json["Resources"][queue_id]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True and "RedrivePolicy" in queue
    mappings = [
        m["Properties"]
        for m in synth.resources("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["EventSourceArn"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    ]
    (mapping,) = mappings
    assert mapping["FunctionName"] == {"Ref": synth.logical_id(synth.stack.monitoring.function)}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_the_alarm_function_grants_are_least_privilege(synth: Synth) -> None:
    statements = _statements(synth, synth.stack.monitoring.function)
    actions = set().union(*(_actions(s) for s in statements))
    assert {"states:StartExecution", "events:PutEvents", "sns:Publish", "cloudwatch:DescribeAlarms"} <= actions
    assert {"cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms", "cloudwatch:TagResource"} <= actions
    assert "dynamodb:PutItem" in actions and not any(a.endswith(":*") for a in actions)
    for statement in statements:
        if any(a.startswith("cloudwatch:") for a in _actions(statement)):
            assert "alarm:" in json.dumps(statement["Resource"]) and '"AWS::StackName"' in json.dumps(
                statement["Resource"]
            )


def test_the_deploy_function_may_sync_the_stacks_alarms_only(synth: Synth) -> None:
    from infra.constants import Fn

    deploy = synth.stack.node.find_child("Pipeline").node.find_child(f"{Fn.DEPLOY.capitalize()}Function")
    (statement,) = [s for s in _statements(synth, deploy) if "cloudwatch:PutMetricAlarm" in _actions(s)]
    assert _actions(statement) == {"cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms", "cloudwatch:TagResource"}
    assert json.dumps(statement["Resource"]).endswith('{"Ref": "AWS::StackName"}, "-*"]]}')


def test_the_alerts_key_lets_only_this_accounts_alarms_use_it(synth: Synth) -> None:
    (key,) = synth.resources("AWS::KMS::Key").values()
    (statement,) = [
        s
        for s in key["Properties"]["KeyPolicy"]["Statement"]
        if s.get("Principal", {}).get("Service") == "cloudwatch.amazonaws.com"
    ]
    assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert ":alarm:*" in json.dumps(statement["Condition"]["ArnLike"]["aws:SourceArn"])


def test_every_function_knows_the_stack_name(synth: Synth) -> None:
    for logical_id, fn in synth.resources("AWS::Lambda::Function").items():
        tags = {t["Key"] for t in fn["Properties"].get("Tags", [])}
        if c.FUNCTION_TAG in tags:
            assert fn["Properties"]["Environment"]["Variables"]["STACK_NAME"] == {"Ref": "AWS::StackName"}, logical_id


@pytest.fixture(scope="module")
def subscribed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    import aws_cdk as cdk

    from infra.app import build_app
    from infra.stack import ConveyorStack

    os.environ["CDK_OUTDIR"] = str(tmp_path_factory.mktemp("cdk.out"))
    try:
        app = build_app(
            {
                "aws:cdk:bundling-stacks": [],
                "alert_emails": "ops@example.com,ml@example.com",  # a stage setting (infra/stages.py)
                c.CONTEXT_ALERT_WEBHOOK: "https://chat.example.com/hooks/conveyor",
            }
        )
    finally:
        del os.environ["CDK_OUTDIR"]
    stack = next(child for child in app.node.children if isinstance(child, ConveyorStack))
    return dict(cdk.assertions.Template.from_stack(stack).to_json())


def test_alert_subscriptions_come_from_context(subscribed: dict[str, Any], synth: Synth) -> None:
    found = sorted(
        (r["Properties"]["Protocol"], r["Properties"]["Endpoint"])
        for r in subscribed["Resources"].values()
        if r["Type"] == "AWS::SNS::Subscription"
    )
    assert found == [
        ("email", "ml@example.com"),
        ("email", "ops@example.com"),
        ("https", "https://chat.example.com/hooks/conveyor"),
    ]
    assert not synth.resources("AWS::SNS::Subscription")  # none without context
