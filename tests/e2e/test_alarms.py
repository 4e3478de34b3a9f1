"""A served version whose latency alarm breaches is rolled back by ``on_alarm: {latency: rollback}``, on the
local cloud, end to end: EMF lines -> metric data -> the alarm evaluated -> CloudWatch's state-change
event -> rule -> alarm queue -> alarm-action function -> rollback; clients see no 5xx meanwhile, and SNS
and EventBridge say so. (The breach is genuine: v2 is a far larger model than v1, and its latency alarm's
threshold lies between the two versions' real latencies; see tests/e2e/alarm_scenario.py.)
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from conveyor.cli.target import Target
from tests.e2e.alarm_scenario import (
    LATENCY_THRESHOLD_MS,
    Cli,
    Traffic,
    Watchers,
    deploy_two_versions,
    serving_version,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local-cloud")]
MODEL = "alarm-visits"


@pytest.fixture(scope="module")
def rolled_back(cloud: Target, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    directory = tmp_path_factory.mktemp("alarms")
    cli = Cli.for_cloud(cloud, directory)
    watchers = Watchers.create(cloud, MODEL)
    deploy_two_versions(cloud, cli, MODEL, directory)
    code, listed = cli.json("alarms", MODEL)
    assert code == 0 and len(listed["alarms"]) == 8, listed
    with Traffic(f"{cloud.api_url}/models/{MODEL}/predict") as traffic:
        wait_for(lambda: serving_version(cloud, MODEL) == 1, "the rollback to v1", timeout=120)
        # Requests keep flowing after the rollback: v1 answers them.
        wait_for(lambda: any(version == 1 for _, _, version in traffic.answers[-5:]), "v1 answering", timeout=60)

    def announced() -> bool:
        watchers.drain()
        registry = {e["detail-type"] for e in watchers.seen["registry"]}
        return {"AlarmActionTaken", "ModelRolledBack"} <= registry and len(watchers.seen["alerts"]) >= 2

    wait_for(announced, "the SNS messages and EventBridge events of the rollback", timeout=60)
    return {"cli": cli, "watchers": watchers, "answers": traffic.answers}


def test_the_breaching_version_is_rolled_back_and_rejected_with_the_reason(rolled_back: dict[str, Any]) -> None:
    code, models = rolled_back["cli"].json("models", MODEL)
    assert code == 0, models
    (entry,) = models["models"]
    assert entry["serving"]["version"] == 1
    (v2,) = [v for v in entry["versions"] if v["version"] == 2]
    assert v2["status"] == "rejected"


def test_clients_see_no_5xx_meanwhile(rolled_back: dict[str, Any]) -> None:
    statuses = [status for _, status, _ in rolled_back["answers"]]
    assert statuses and set(statuses) == {200}
    versions = [version for _, _, version in rolled_back["answers"]]
    assert 2 in versions and versions[-1] == 1


def test_sns_and_eventbridge_say_so(rolled_back: dict[str, Any], cloud: Target) -> None:
    watchers: Watchers = rolled_back["watchers"]
    latency = f"{cloud.output('StackName')}-{MODEL}-latency"
    alarm_messages = [json.loads(m["Message"]) for m in watchers.seen["alerts"] if m["Message"].startswith("{")]
    (alarm,) = [m for m in alarm_messages if m["AlarmName"] == latency and m["NewStateValue"] == "ALARM"]
    assert alarm["Trigger"]["Statistic"] == "p99" and alarm["Trigger"]["Threshold"] == LATENCY_THRESHOLD_MS
    assert alarm["NewStateReason"].startswith("Threshold Crossed")
    assert any("rolled back" in (m["Subject"] or "") for m in watchers.seen["alerts"])
    states = [(e["detail"]["alarmName"], e["detail"]["state"]["value"]) for e in watchers.seen["alarms"]]
    assert (latency, "ALARM") in states
    events = {e["detail-type"]: e["detail"] for e in watchers.seen["registry"]}
    taken = events["AlarmActionTaken"]
    assert taken["model_version"] == 2 and taken["details"]["action"] == "rollback"
    assert taken["details"]["signal"] == "latency" and taken["details"]["champion"] == 1
    assert events["ModelRolledBack"]["details"]["champion"] == 1


def test_conveyor_alarms_shows_the_models_alarms(rolled_back: dict[str, Any]) -> None:
    code, listed = rolled_back["cli"].json("alarms", MODEL)
    assert code == 0
    by_signal = {a["signal"]: a for a in listed["alarms"]}
    assert set(by_signal) == {
        "latency",
        "errors",
        "drift",
        "domain_classifier",
        "score_shift",
        "live_metric",
        "capture_errors",
        "breaker",
    }
    assert all(a["model"] == MODEL and a["updated"] for a in listed["alarms"])
    assert by_signal["errors"]["state"] in {"OK", "INSUFFICIENT_DATA"}

    # After the rollback the alarms follow v1's thresholds (p99 above 250 ms): the latency alarm returns to OK.
    def latency_state() -> str:
        alarms = rolled_back["cli"].json("alarms", MODEL)[1]["alarms"]
        return str(next(a for a in alarms if a["signal"] == "latency")["state"])

    wait_for(lambda: latency_state() == "OK", "the latency alarm back to OK under v1's threshold", timeout=60)
