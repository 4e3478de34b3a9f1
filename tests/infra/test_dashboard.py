"""The CloudWatch dashboard (the board in the cloud): its widgets, and the custom widget's permissions."""

from __future__ import annotations

import json
from typing import Any

import pytest

from conveyor.board.panels import PANELS
from tests.infra.conftest import Synth
from tests.infra.test_functions import _actions, _statements_of, functions_by_tag


def _token(part: dict[str, Any]) -> str:
    if "Ref" in part:
        return f"TOKEN({part['Ref']})"
    return f"TOKEN({'.'.join(part['Fn::GetAtt'])})"


def _body(synth: Synth) -> tuple[str, dict[str, Any]]:
    (dashboard,) = synth.resources("AWS::CloudWatch::Dashboard").values()
    parts = dashboard["Properties"]["DashboardBody"]["Fn::Join"][1]
    # Tokens (ARNs, region) become placeholders: the rest is the dashboard's JSON.
    text = "".join(p if isinstance(p, str) else _token(p) for p in parts)
    return dashboard["Properties"]["DashboardName"], json.loads(text)


def test_one_dashboard_named_after_the_stack(synth: Synth) -> None:
    name, body = _body(synth)
    assert name == f"{synth.stack.stack_name}-board"
    assert body["start"] == "-P7D"


@pytest.mark.parametrize("panel", PANELS, ids=lambda p: p.key)
def test_each_panel_is_a_search_over_every_model(synth: Synth, panel: Any) -> None:
    _, body = _body(synth)
    expressions = [
        metric[0]["expression"]
        for widget in body["widgets"]
        if widget["type"] == "metric"
        for metric in widget["properties"]["metrics"]
        if isinstance(metric[0], dict) and "expression" in metric[0]
    ]
    dims = "{Conveyor,model,version}" if panel.by_version else "{Conveyor,model}"
    expected = f"SEARCH('{dims} MetricName=\"{panel.metric}\"', '{panel.stat}', 3600)"
    assert expected in expressions


def test_pipeline_and_dead_letter_widgets(synth: Synth) -> None:
    _, body = _body(synth)
    metrics = [
        tuple(m for m in metric if isinstance(m, str))
        for widget in body["widgets"]
        if widget["type"] == "metric"
        for metric in widget["properties"]["metrics"]
        if isinstance(metric[0], str)
    ]
    names = {m[1] for m in metrics}
    assert {"ExecutionsStarted", "ExecutionsFailed", "ExecutionsTimedOut", "ExecutionTime"} <= names
    assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible") in {m[:2] for m in metrics}
    (dlq,) = [
        w
        for w in body["widgets"]
        if w["type"] == "metric" and w["properties"].get("title") == "Ingest dead-letter queue"
    ]
    assert "IngestDeadLetterQueue" in json.dumps(dlq)


def test_the_custom_widget_calls_the_board_widget_function(synth: Synth) -> None:
    _, body = _body(synth)
    (custom,) = [w for w in body["widgets"] if w["type"] == "custom"]
    (logical_id,) = [
        lid
        for lid, r in synth.resources("AWS::Lambda::Function").items()
        if {"Key": "conveyor:function", "Value": "board_widget"} in r["Properties"].get("Tags", [])
    ]
    assert logical_id in custom["properties"]["endpoint"]
    assert custom["properties"]["updateOn"]["refresh"] is True


def test_the_custom_widget_has_least_privilege(synth: Synth) -> None:
    statements = _statements_of(synth, "board_widget")
    actions = _actions(statements)
    assert actions == {
        "dynamodb:GetItem",
        "dynamodb:Query",
        "dynamodb:Scan",
        "dynamodb:PutItem",
        "states:SendTaskSuccess",
        "states:SendTaskFailure",
        "events:PutEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "logs:CreateLogStream",  # its own log group (tests/infra/test_hardening.py)
        "logs:PutLogEvents",
    }
    table_id = synth.logical_id(synth.stack.table)
    machine_id = synth.logical_id(synth.stack.state_machine)
    for statement in statements:
        acts = _actions([statement])
        resource = json.dumps(statement["Resource"])
        if any(a.startswith("dynamodb:") for a in acts):
            assert resource == json.dumps({"Fn::GetAtt": [table_id, "Arn"]})
        elif any(a.startswith("states:") for a in acts):
            assert resource == json.dumps({"Ref": machine_id})
        elif "events:PutEvents" in acts:
            assert "event-bus/default" in resource
        elif any(a.startswith("logs:") for a in acts):
            assert "BoardwidgetFunctionLogs" in resource
        else:
            assert acts <= {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
    env = functions_by_tag(synth)["board_widget"]["Environment"]["Variables"]
    assert "REGISTRY_TABLE" in env
