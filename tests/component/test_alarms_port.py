"""The ``Alarms`` port's contract, through the in-memory fake and through CloudWatch on a moto server."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest

from conveyor.adapters.aws import CloudWatchAlarms
from conveyor.adapters.memory import MemoryAlarms
from conveyor.monitoring.alarms import SIGNALS, alarm_definitions, sync_model_alarms
from conveyor.ports import Alarms
from tests.component.conftest import moto_server


@pytest.fixture(scope="module")
def cloudwatch() -> Iterator[object]:
    with moto_server() as (url, _port):
        yield boto3.client(
            "cloudwatch", endpoint_url=url, region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s"
        )


@pytest.fixture(params=["memory", "aws"])
def alarms(request: pytest.FixtureRequest) -> Alarms:
    if request.param == "memory":
        return MemoryAlarms()
    client = request.getfixturevalue("cloudwatch")
    client.delete_alarms(AlarmNames=[a["AlarmName"] for a in client.describe_alarms()["MetricAlarms"]])
    return CloudWatchAlarms(client)


def test_put_describe_update_delete(alarms: Alarms) -> None:
    names = sync_model_alarms(alarms, stack="S", model="m", settings={"max_latency_p99_ms": 80}, topic_arn="")
    sync_model_alarms(alarms, stack="S", model="m-2", settings=None)
    found = {a.name: a for a in alarms.describe("S-m-")}  # a prefix: model m-2's alarms too
    assert sorted(names) == sorted(f"S-m-{s}" for s in SIGNALS)
    assert sorted(found) == sorted([*names, *(f"S-m-2-{s}" for s in SIGNALS)])
    assert found["S-m-latency"].metric == "Latency" and found["S-m-latency"].threshold == 80.0
    assert found["S-m-latency"].state in {"OK", "INSUFFICIENT_DATA"} and found["S-m-latency"].updated > 0
    (latency, *_) = alarm_definitions("S", "m", {"max_latency_p99_ms": 90})
    alarms.put(latency)
    assert {a.name: a.threshold for a in alarms.describe("S-m-latency")} == {"S-m-latency": 90.0}
    alarms.delete([*names, "S-never-existed"])
    assert sorted(a.name for a in alarms.describe("S-m-")) == sorted(f"S-m-2-{s}" for s in SIGNALS)
    assert len(alarms.describe()) == len(SIGNALS)
