"""The live monitor's schedule and the label ingest: one static rule -> the monitor's tick; the
functions' grants (capture, artifacts, registry, metrics namespace, retrain executions, labels)."""

from __future__ import annotations

import json
from typing import Any

from tests.infra.conftest import Synth


def _function(synth: Synth, name: str) -> tuple[str, dict[str, Any]]:
    for logical_id, fn in synth.resources("AWS::Lambda::Function").items():
        tags = {t["Key"]: t["Value"] for t in fn["Properties"].get("Tags", [])}
        if tags.get("conveyor:function") == name:
            return logical_id, fn
    raise AssertionError(f"no function {name}")


def _statements(synth: Synth, logical_id: str) -> list[dict[str, Any]]:
    role = synth.json["Resources"][logical_id]["Properties"]["Role"]["Fn::GetAtt"][0]
    found = []
    for policy in synth.resources("AWS::IAM::Policy").values():
        if {"Ref": role} in policy["Properties"]["Roles"]:
            found += policy["Properties"]["PolicyDocument"]["Statement"]
    return found


def _actions(statements: list[dict[str, Any]]) -> set[str]:
    actions: set[str] = set()
    for s in statements:
        actions |= set(s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    return actions


def test_one_schedule_rule_ticks_the_monitor_every_five_minutes_with_the_time(synth: Synth) -> None:
    schedules = [r for r in synth.resources("AWS::Events::Rule").values() if "ScheduleExpression" in r["Properties"]]
    assert len(schedules) == 1
    (rule,) = schedules
    assert rule["Properties"]["ScheduleExpression"] == "rate(5 minutes)"
    monitor_id, _ = _function(synth, "monitor")
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [monitor_id, "Arn"]}
    transformer = target["InputTransformer"]
    assert transformer["InputPathsMap"] == {"time": "$.time"}
    assert json.loads(transformer["InputTemplate"].replace("<time>", '"T"')) == {"action": "tick", "time": "T"}
    permissions = [
        p["Properties"]
        for p in synth.resources("AWS::Lambda::Permission").values()
        if p["Properties"]["Principal"] == "events.amazonaws.com"
    ]
    assert any(p["FunctionName"] == {"Fn::GetAtt": [monitor_id, "Arn"]} for p in permissions)


def test_the_monitor_reads_capture_and_artifacts_puts_conveyor_metrics_and_starts_retrains(synth: Synth) -> None:
    monitor_id, fn = _function(synth, "monitor")
    assert fn["Properties"]["PackageType"] == "Image"
    assert "STATE_MACHINE_ARN" in fn["Properties"]["Environment"]["Variables"]
    statements = _statements(synth, monitor_id)
    actions = _actions(statements)
    assert {"s3:GetObject*", "s3:List*", "s3:PutObject"} <= actions
    assert {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"} <= actions
    assert "states:StartExecution" in actions
    (metrics,) = [s for s in statements if s["Action"] == "cloudwatch:PutMetricData"]
    assert metrics["Condition"] == {"StringEquals": {"cloudwatch:namespace": "Conveyor"}}
    text = json.dumps(statements)
    assert synth.logical_id(synth.stack.capture_bucket) in text
    assert synth.logical_id(synth.stack.artifact_bucket) in text
    assert synth.logical_id(synth.stack.data_bucket) not in text


def test_labels_read_label_files_write_quarantine_and_joined_labels_and_the_dispatcher_invokes_them(
    synth: Synth,
) -> None:
    labels_id, fn = _function(synth, "labels")
    assert fn["Properties"]["PackageType"] == "Image"
    text = json.dumps(_statements(synth, labels_id))
    assert "/labels/*" in text and "/quarantine/labels/*" in text
    assert "/incoming/*" not in text and "/accepted/*" not in text
    dispatch_id, dispatch = _function(synth, "dispatch")
    assert dispatch["Properties"]["Environment"]["Variables"]["LABELS_FUNCTION_NAME"] == {"Ref": labels_id}
    invokes = [s for s in _statements(synth, dispatch_id) if "lambda:InvokeFunction" in json.dumps(s["Action"])]
    assert invokes and labels_id in json.dumps(invokes)


def test_the_cli_finds_the_monitor_function(synth: Synth) -> None:
    monitor_id, _ = _function(synth, "monitor")
    assert synth.json["Outputs"]["MonitorFunctionName"]["Value"] == {"Ref": monitor_id}
