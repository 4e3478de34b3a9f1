"""The local cloud's clock drives schedules and alarm evaluation alike, and outlives a restart with a data
directory: the alarm evaluator on a moto server moved by ``LocalSchedules.advance``; the schedules' offset
and next due times (and the evaluator's known states) through ``Persistence.extensions``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from conveyor.localcloud.cloudwatch import LocalCloudWatch
from conveyor.localcloud.emf import Sample
from conveyor.localcloud.persist.snapshotter import Extension, Persistence
from conveyor.localcloud.persist.store import DataDir
from conveyor.localcloud.schedules import LocalSchedules, Target
from tests.component.conftest import moto_server

REGION = "us-east-1"
RULE_ARN = "arn:aws:events:us-east-1:123456789012:rule/tick"
ALARM = "S-m-latency"
WALL = 1_800_000_030.0


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_server() as (url, _port):
        yield url


@pytest.fixture
def cloudwatch(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, LocalSchedules, LocalCloudWatch]]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    client = boto3.client("cloudwatch", endpoint_url=endpoint, region_name=REGION)
    # A wall clock that stands still mid-minute: no period boundary passes but the ones advanced over.
    schedules = LocalSchedules(lambda name, event: None, clock=lambda: WALL, region=REGION)
    local = LocalCloudWatch(endpoint=endpoint, region=REGION, clock=schedules.now, max_wait_seconds=600)
    schedules.after_advance.append(local.evaluate_all)
    client.put_metric_alarm(
        AlarmName=ALARM,
        Namespace="Conveyor",
        MetricName="Latency",
        Dimensions=[{"Name": "model", "Value": "m"}],
        Statistic="Maximum",
        Threshold=100.0,
        ComparisonOperator="GreaterThanThreshold",
        Period=60,
        EvaluationPeriods=1,
        TreatMissingData="notBreaching",
    )
    local.start()
    yield client, schedules, local
    local.stop()
    client.delete_alarms(AlarmNames=[ALARM])


def _state(client: Any) -> str:
    return str(client.describe_alarms(AlarmNames=[ALARM])["MetricAlarms"][0]["StateValue"])


def _slow(local: LocalCloudWatch) -> None:
    """One EMF sample of a slow request, stamped now on the wall clock (as the predict function's EMF line is):
    it lands at the local clock's now."""
    local.put_samples([Sample("Conveyor", "Latency", (("model", "m"),), time.time(), 500.0)])


def test_an_advance_moves_the_alarms_evaluation_periods(
    cloudwatch: tuple[Any, LocalSchedules, LocalCloudWatch],
) -> None:
    client, schedules, local = cloudwatch
    _slow(local)
    local.evaluate_all()
    assert _state(client) == "ALARM"
    schedules.advance(180)  # three quiet minutes on the local clock: missing data is not breaching
    assert _state(client) == "OK"
    _slow(local)  # a wall-clock EMF stamp lands at the local clock's time, in the period being evaluated
    local.evaluate_all()
    assert _state(client) == "ALARM"
    schedules.advance(120)
    assert _state(client) == "OK"
    # PutMetricData without a timestamp (the live monitor's) is stamped on the local clock too.
    client.put_metric_data(
        Namespace="Conveyor",
        MetricData=[{"MetricName": "Latency", "Dimensions": [{"Name": "model", "Value": "m"}], "Value": 300.0}],
    )
    local.evaluate_all()
    assert _state(client) == "ALARM"
    assert [(c["from"], c["to"]) for c in local.changes][-4:] == [
        ("ALARM", "OK"),
        ("OK", "ALARM"),
        ("ALARM", "OK"),
        ("OK", "ALARM"),
    ]


def _persistence(path: Path, schedules: LocalSchedules, local: LocalCloudWatch | None = None) -> Persistence:
    persistence = Persistence(DataDir(path), REGION, interval=3600)
    persistence.extensions["schedules"] = Extension(schedules.dump, schedules.load, lambda: schedules.changes)
    if local is not None:
        persistence.extensions["cloudwatch"] = Extension(local.dump, local.load)
    persistence.restore(persistence.open())
    return persistence


def test_the_clock_and_the_next_due_times_outlive_a_restart(
    tmp_path: Path, endpoint: str, cloudwatch: tuple[Any, LocalSchedules, LocalCloudWatch]
) -> None:
    client, _, local = cloudwatch
    _slow(local)
    local.evaluate_all()
    wall = [1_800_000_000.0]
    fired: list[str] = []
    tick = [Target("monitor", input='{"action": "tick"}')]
    first = LocalSchedules(lambda name, event: fired.append(name), clock=lambda: wall[0])
    first.add("tick", RULE_ARN, "rate(5 minutes)", tick)
    persistence = _persistence(tmp_path / "data", first, local)
    assert persistence.snapshot(force=True), "the first snapshot"
    first.advance(420)  # fired at +300; next due at +600
    assert fired == ["monitor"]
    assert persistence.snapshot(), "an advance alone (no request to moto) leads to a snapshot"
    persistence.stop()

    wall[0] += 60  # the cloud was stopped for a minute
    second = LocalSchedules(lambda name, event: fired.append(name), clock=lambda: wall[0])
    second.add("tick", RULE_ARN, "rate(5 minutes)", tick)
    restored_local = LocalCloudWatch(endpoint=endpoint, region=REGION, clock=second.now)
    restarted = _persistence(tmp_path / "data", second, restored_local)
    try:
        assert second.now() == 1_800_000_000.0 + 60 + 420
        assert second.dump() == [{"offset": 420.0}, {"rule": "tick", "next_due": 1_800_000_000.0 + 600}]
        assert {r["alarm"]: r["state"] for r in restored_local.dump()}[ALARM] == _state(client) == "ALARM"
        assert second.fire_due() == [] and fired == ["monitor"]
        wall[0] += 3600  # stopped for an hour: the missed tick fires once, at the latest missed time
        second.load(first.dump())
        assert [f["rule"] for f in second.fire_due()] == ["tick"] and fired == ["monitor", "monitor"]
    finally:
        restarted.stop()
