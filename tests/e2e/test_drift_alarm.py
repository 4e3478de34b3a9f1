"""Drifted live inputs raise the model's drift alarm within one monitor run, and ``on_alarm: {drift: retrain}``
starts a retrain run, on the local cloud, end to end: requests -> capture -> `conveyor monitor --now` ->
LiveDriftedFeatures {model} -> the drift alarm evaluated -> CloudWatch's SNS message and state-change event
-> rule -> alarm queue -> alarm-action function -> a pipeline execution with the retrain input.

The model (``drift-visits``) is the demo's, trained on 1984-1985; its live traffic is 1988's rows, where
household income (hhninc) rose.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pandas as pd
import pytest
import requests
import yaml

from conveyor.cli.target import Target
from tests.conftest import DATASET, DEMO_SPEC
from tests.e2e.alarm_scenario import Cli, Watchers, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local-cloud")]
MODEL = "drift-visits"
REQUESTS, ROWS_PER_REQUEST = 10, 30
FEATURES = ("age", "hhninc", "educ", "female", "married", "kids", "outwork", "self", "edlevel")


def _serve_drifted_rows(cloud: Target) -> None:
    rows = pd.read_csv(DATASET).query("year == 1988").sample(REQUESTS * ROWS_PER_REQUEST, random_state=11)
    instances = [
        {name: row[name] for name in FEATURES} | {"edlevel": str(row["edlevel"])} for row in rows.to_dict("records")
    ]
    session = requests.Session()
    for start in range(0, len(instances), ROWS_PER_REQUEST):
        response = session.post(
            f"{cloud.api_url}/models/{MODEL}/predict",
            json={"instances": instances[start : start + ROWS_PER_REQUEST]},
            headers={"X-Request-Id": f"drift-{uuid.uuid4()}"},
            timeout=30,
        )
        assert response.status_code == 200, response.text


@pytest.fixture(scope="module")
def alarmed(cloud: Target, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    directory = tmp_path_factory.mktemp("drift-alarm")
    cli = Cli.for_cloud(cloud, directory)
    watchers = Watchers.create(cloud, MODEL)
    spec = yaml.safe_load(DEMO_SPEC.read_text())
    spec["name"] = MODEL
    spec["gates"] = {"primary_metric": "roc_auc", "max_degradation": 1.0, "min_agreement": 0.0, "max_flip_rate": 1.0}
    # Only a run that sees every request tests drift (and so publishes LiveDriftedFeatures).
    spec["monitoring"] = {"min_requests": REQUESTS, "on_alarm": {"drift": "retrain"}}
    (directory / "model.yaml").write_text(yaml.safe_dump(spec))
    train = directory / "german_health_1984_1985.csv"
    pd.read_csv(DATASET).query("year <= 1985").to_csv(train, index=False)
    code, dropped = cli.json("drop", str(train), "--model", MODEL, "--spec", str(directory / "model.yaml"), timeout=900)
    assert code == 0 and dropped["registration"]["version"] == 1, dropped
    _serve_drifted_rows(cloud)

    def monitored() -> dict[str, Any] | None:  # capture is written in batches, within seconds
        code, document = cli.json("monitor", MODEL, "--now")
        assert code == 0, document
        return document if document["requests"] >= REQUESTS else None

    document = wait_for(monitored, "the monitor seeing every request", timeout=120, every=1)

    drift = f"{cloud.output('StackName')}-{MODEL}-drift"

    def announced() -> bool:
        # Wait for each thing the tests read, not for "some alert": the alerts topic is the stack's (other
        # models' alerts arrive too), and one drain reads the alerts queue before the registry events, so
        # the action's event can be read in the same drain that missed the alert published just before it.
        watchers.drain()
        taken = [e for e in watchers.seen["registry"] if e["detail-type"] == "AlarmActionTaken"]
        alarms = [e for e in watchers.seen["alarms"] if e["detail"]["state"]["value"] == "ALARM"]
        return bool(taken and alarms and _alarm_messages(watchers, drift) and _retrain_alerts(watchers))

    wait_for(announced, "the drift alarm's SNS message, state change, action and retrain alert", timeout=90)
    return {"cli": cli, "watchers": watchers, "document": document, "drift": drift}


def _alarm_messages(watchers: Watchers, alarm: str) -> list[dict[str, Any]]:
    """CloudWatch's SNS notifications of ``alarm`` going into ALARM."""
    messages = [json.loads(m["Message"]) for m in watchers.seen["alerts"] if m["Message"].startswith("{")]
    return [m for m in messages if m.get("AlarmName") == alarm and m.get("NewStateValue") == "ALARM"]


def _retrain_alerts(watchers: Watchers) -> list[dict[str, Any]]:
    """The alarm action's alert that it started a retrain run (conveyor.monitoring.actions)."""
    return [m for m in watchers.seen["alerts"] if f"{MODEL} retraining on its drift alarm" in (m["Subject"] or "")]


def test_the_drift_alarm_is_in_alarm_on_the_metric_the_monitor_publishes(alarmed: dict[str, Any]) -> None:
    document = alarmed["document"]
    assert document["drift"]["verdict"] == "drift" and "hhninc" in document["drift"]["drifted_features"]
    drifted = len(document["drift"]["drifted_features"])
    watchers: Watchers = alarmed["watchers"]
    (message,) = _alarm_messages(watchers, alarmed["drift"])
    trigger = message["Trigger"]
    assert (trigger["Namespace"], trigger["MetricName"], trigger["Statistic"]) == (
        "Conveyor",
        "LiveDriftedFeatures",
        "MAXIMUM",
    )
    assert trigger["Dimensions"] == [{"value": MODEL, "name": "model"}]
    assert message["NewStateReason"].startswith(f"Threshold Crossed: 1 out of the last 1 datapoints [{drifted} (")
    states = [(e["detail"]["alarmName"], e["detail"]["state"]["value"]) for e in watchers.seen["alarms"]]
    assert (alarmed["drift"], "ALARM") in states
    code, listed = alarmed["cli"].json("alarms", MODEL)
    assert code == 0
    assert {a["signal"]: a["state"] for a in listed["alarms"]}["drift"] == "ALARM"


def test_on_alarm_retrain_starts_a_retrain_run(alarmed: dict[str, Any], cloud: Target) -> None:
    watchers: Watchers = alarmed["watchers"]
    (taken,) = [e["detail"] for e in watchers.seen["registry"] if e["detail-type"] == "AlarmActionTaken"]
    details = taken["details"]
    assert (taken["model_version"], details["signal"], details["action"], details["started"]) == (
        1,
        "drift",
        "retrain",
        True,
    )
    (alert,) = _retrain_alerts(watchers)
    assert f"Retrain run: {details['execution']}." in alert["Message"]
    machine = cloud.output("StateMachineArn")
    execution = f"{machine.replace(':stateMachine:', ':execution:')}:{details['execution']}"
    described = cloud.sfn.describe_execution(executionArn=execution)
    retrain = json.loads(described["input"])["retrain"]
    assert retrain["model"] == MODEL and alarmed["drift"] in retrain["reason"]
