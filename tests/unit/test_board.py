"""The board on the memory adapters: the registry view, the document and page, approve/reject from the
board and from the CloudWatch custom widget (who pressed it), the SVG charts, the local metric index."""

from __future__ import annotations

import math
import re
import time
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from conveyor.adapters.memory import MemoryCallbacks, MemoryEvents, MemoryTable
from conveyor.board.actions import BadAction, Reviewing, review
from conveyor.board.document import board_document, registry_view
from conveyor.board.page import board_page
from conveyor.board.panels import PANEL_BY_KEY, PANELS, search_expression
from conveyor.board.sources import BoardSources, ItemsTable
from conveyor.board.svg import line_chart, number
from conveyor.board.widget import handle_widget_event, reviewer
from conveyor.deployment import Deployments
from conveyor.deployment.errors import NoApprovalPending
from conveyor.localcloud.alarm_eval import statistic
from conveyor.localcloud.board_metrics import LocalMetricReader
from conveyor.monitoring import metrics as published
from conveyor.registry import ModelVersion, Registry

NOW = 1_800_000_000.0
CONTEXT = {"dashboardName": "Conveyor-dev-board", "widgetId": "widget-3", "accountId": "123456789012"}


def _version(model: str, status: str, roc_auc: float) -> ModelVersion:
    metrics = {"candidate": {"roc_auc": roc_auc, "value_per_1000": 812.5}, "primary": "roc_auc"}
    return ModelVersion(model, 0, status, f"{model}/m.onnx", "0" * 64, metrics=metrics, created_at=NOW - 100)


@pytest.fixture
def world() -> SimpleNamespace:
    table, callbacks, events = MemoryTable(), MemoryCallbacks(), MemoryEvents()
    registry, deployments = Registry(table), Deployments(table)
    for model in ("alpha", "beta"):
        registry.register(_version(model, "approved", 0.71))
        registry.promote(model, 1)
        registry.register(_version(model, "candidate", 0.73))
    registry.register(_version("alpha", "approved", 0.72))  # v3 takes 25% as challenger
    registry.set_challenger("alpha", 3, 0.25)
    deployments.start(
        {"model": "beta", "version": 2, "strategy": "all_at_once", "approval": "manual", "phases": []}, execution="ex-1"
    )
    deployments.update("beta", 2, "awaiting_approval", token="token-beta-2", now=NOW - 60)
    callbacks.wait("token-beta-2")
    return SimpleNamespace(
        table=table,
        callbacks=callbacks,
        events=events,
        reviewing=Reviewing(registry, deployments, callbacks, events),
        registry=registry,
    )


def _items(table: MemoryTable) -> list[dict[str, Any]]:
    return list(table.items.values())


class FakeMetrics:
    def read(self, panels: Any, start: float, end: float, period: int) -> dict[str, Any]:
        hours = [start + i * period for i in range(3)]
        return {
            "requests": {"alpha": {"1": [(t, 10.0) for t in hours], "3": [(t, 3.0) for t in hours]}},
            "latency_p99": {"alpha": {"1": [(t, 12.5 + i) for i, t in enumerate(hours)]}},
            "live_metric": {"alpha": {"1": [(hours[-1], 0.69)]}},
        }


def _sources(world: SimpleNamespace) -> BoardSources:
    alarms = [
        {
            "name": "Conveyor-dev-alpha-latency",
            "model": "alpha",
            "signal": "latency",
            "state": "ALARM",
            "reason": "p99",
        },
        {"name": "Conveyor-dev-beta-drift", "model": "beta", "signal": "drift", "state": "OK", "reason": ""},
        {"name": "Conveyor-dev-PipelineFailed", "model": None, "signal": None, "state": "OK", "reason": ""},
    ]
    runs = [{"name": "alpha-1", "status": "SUCCEEDED", "started": NOW - 100, "stopped": NOW - 40}]
    return BoardSources(
        registry_items=lambda: _items(world.table),
        metrics=FakeMetrics(),
        alarms=SimpleNamespace(alarms=lambda: alarms),
        runs=SimpleNamespace(recent=lambda limit: runs[:limit]),
        stack="Conveyor-dev",
    )


def test_registry_view_from_one_snapshot(world: SimpleNamespace) -> None:
    alpha, beta = registry_view(_items(world.table))
    assert alpha["model"] == "alpha" and alpha["traffic"] == {"1": 0.75, "3": 0.25}
    assert [(s["version"], s["weight"], s["role"]) for s in alpha["serving"]] == [
        (1, 0.75, "champion"),
        (3, 0.25, "challenger"),
    ]
    assert alpha["pending"] == [] and beta["pending"][0]["version"] == 2 and beta["pending"][0]["execution"] == "ex-1"
    assert alpha["holdout"] == {"metric": "roc_auc", "value": 0.71} and alpha["value_per_1000"] == 812.5
    with pytest.raises(TypeError, match="read-only"):
        ItemsTable([]).put({"pk": "x", "sk": "y"})


def test_document_and_page_show_the_same_numbers(world: SimpleNamespace) -> None:
    document = board_document(_sources(world), now=NOW)
    alpha = document["models"][0]
    assert alpha["summary"]["requests"] == 39.0 and alpha["summary"]["latency_p99"] == 14.5
    assert [a["name"] for a in alpha["alarms"]] == ["Conveyor-dev-alpha-latency"]
    assert [a["name"] for a in document["alarms"]] == ["Conveyor-dev-PipelineFailed"]
    assert document["runs"][0]["seconds"] == 60.0 and document["window"]["hours"] == 168
    served = board_page(document, interactive=True)
    shown = re.findall(r'data-version="(\d+)" data-weight="([\d.]+)" data-role="(\w+)"', served)
    assert ("1", "0.75", "champion") in shown and ("3", "0.25", "challenger") in shown
    assert 'data-alarm="Conveyor-dev-alpha-latency" data-state="ALARM"' in served
    assert 'data-action="approve" data-model="beta" data-version="2"' in served and "<script>" in served
    static = board_page(document, interactive=False)
    assert "<button" not in static and "<script" not in static and static.count("<svg") == 2 * len(PANELS)
    assert "http://" not in static.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_review_approves_and_rejects_with_the_reviewer_named(world: SimpleNamespace) -> None:
    with pytest.raises(BadAction):
        review(world.reviewing, "promote", {"model": "beta", "version": 2}, by="x")
    with pytest.raises(BadAction):
        review(world.reviewing, "approve", {"model": "beta"}, by="x")
    with pytest.raises(NoApprovalPending):
        review(world.reviewing, "approve", {"model": "alpha", "version": 2}, by="x")
    result = review(world.reviewing, "reject", {"model": "beta", "version": 2, "reason": "too slow"}, by="local board")
    assert result["status"] == "rejected" and world.callbacks.answers["token-beta-2"][0] == "failure"
    assert world.registry.get("beta", 2).decision == "rejected by local board: too slow"


def test_the_custom_widget_renders_buttons_and_approves_naming_the_dashboard(world: SimpleNamespace) -> None:
    arn = "arn:aws:lambda:us-east-1:123456789012:function:board"
    html = handle_widget_event(
        {"widgetContext": CONTEXT}, endpoint=arn, ports=world.reviewing, registry_items=lambda: _items(world.table)
    )
    assert isinstance(html, str) and html.count("<cwdb-action") == 2 and f'endpoint="{arn}"' in html
    assert "v1 champion 75%" in html and "v3 challenger 25%" in html
    assert (
        "&quot;action&quot;: &quot;approve&quot;, &quot;model&quot;: &quot;beta&quot;, &quot;version&quot;: 2" in html
    )
    event = {"action": "approve", "model": "beta", "version": 2, "widgetContext": CONTEXT}
    after = handle_widget_event(event, endpoint=arn, ports=world.reviewing, registry_items=lambda: _items(world.table))
    who = reviewer(CONTEXT)
    assert who == "cloudwatch-dashboard:Conveyor-dev-board/widget-3 (account 123456789012)"
    assert f"beta v2: approved by {who}" in str(after) and "<cwdb-action" not in str(after)
    assert world.registry.get("beta", 2).decision == f"approved by {who}"
    assert world.events.events[-1][1] == "ModelApproved" and world.events.events[-1][2]["details"]["by"] == who
    again = handle_widget_event(event, endpoint=arn, ports=world.reviewing, registry_items=lambda: _items(world.table))
    assert "approve failed: no deployment of beta v2 is waiting" in str(again)
    described = handle_widget_event({"describe": True}, endpoint=arn, ports=world.reviewing, registry_items=list)
    assert isinstance(described, dict) and described["markdown"].startswith("## Conveyor registry")


def test_svg_chart_and_numbers() -> None:
    assert "no data" in line_chart({}, 0, 10, title="t")
    chart = line_chart({"1": [[0, 1.0], [5, 3.0]], "2": [[5, 2.0]]}, 0, 10, title="t", reference=2.5)
    assert chart.count("<polyline") == 2 and 'class="reference"' in chart
    assert (number(None), number(math.nan), number(3360), number(0.01234), number(1.5e6)) == (
        "-",
        "-",
        "3360",
        "0.0123",
        "1.5M",
    )


def test_search_expressions() -> None:
    assert search_expression(PANEL_BY_KEY["latency_p99"], 3600) == (
        "SEARCH('{Conveyor,model,version} MetricName=\"Latency\"', 'p99', 3600)"
    )
    assert search_expression(PANEL_BY_KEY["drifted_features"], 300, "m") == (
        "SEARCH('{Conveyor,model} MetricName=\"LiveDriftedFeatures\" model=\"m\"', 'Maximum', 300)"
    )


def test_every_panel_reads_a_metric_conveyor_publishes() -> None:
    names = {value for key, value in vars(published).items() if key.isupper() and isinstance(value, str)}
    assert {panel.metric for panel in PANELS} <= names
    assert PANEL_BY_KEY["value"].metric == published.LIVE_VALUE_PER_1000 == "LiveValuePer1000"


def _datum(name: str, value: float, at: float, **dims: str) -> SimpleNamespace:
    return SimpleNamespace(
        namespace="Conveyor",
        name=name,
        value=value,
        timestamp=at,
        dimensions=[SimpleNamespace(name=k, value=v) for k, v in dims.items()],
    )


def test_local_metric_index_computes_cloudwatch_statistics_per_hour() -> None:
    data = [_datum("Latency", float(v), NOW + v, model="m", version="1") for v in range(1, 101)]
    data += [_datum("Latency", 7.0, NOW + 3600, model="m", version="1"), _datum("Latency", 9.0, NOW, model="m")]
    data += [_datum("Latency", 1.0, NOW, model="m", version="1", extra="x")]  # another dimension set: left out
    backend = SimpleNamespace(metric_data=data)
    reader = LocalMetricReader(backend)
    hour = NOW // 3600 * 3600
    series = reader.read(PANELS, hour, hour + 7200, 3600)
    assert series["requests"]["m"]["1"] == [(hour, 100.0), (hour + 3600, 1.0)]
    assert series["latency_p50"]["m"]["1"][0] == (hour, 50.0) and series["latency_p99"]["m"]["1"][0] == (hour, 99.0)
    backend.metric_data.append(_datum("Latency", 1000.0, NOW + 1, model="m", version="1"))
    again = reader.read(PANELS, hour, hour + 7200, 3600)  # the hour that got a sample is computed afresh
    assert again["requests"]["m"]["1"][0] == (hour, 101.0) and again["latency_p99"]["m"]["1"][0] == (hour, 100.0)
    two_hours = reader.read(PANELS, hour, hour + 7200, 7200)
    assert (
        two_hours["requests"]["m"]["1"] == [(hour // 7200 * 7200, 102.0)] or two_hours["requests"]["m"]["1"][-1][1] >= 1
    )
    assert statistic([3.0, 1.0, 2.0], "Average") == 2.0 and statistic([1.0, 5.0], "Maximum") == 5.0
    with pytest.raises(ValueError, match="whole hours"):
        reader.read(PANELS, hour, hour + 7200, 60)


def test_local_metric_index_agrees_with_get_metric_data_where_moto_computes() -> None:
    import boto3
    from moto import mock_aws
    from moto.cloudwatch.models import cloudwatch_backends

    from conveyor.localcloud.resolver import ACCOUNT

    start = (time.time() - 3 * 3600) // 3600 * 3600
    with mock_aws():
        cw = boto3.client("cloudwatch", region_name="us-east-1")
        dims = [{"Name": "model", "Value": "m"}, {"Name": "version", "Value": "1"}]
        for hour in range(3):
            at = datetime.fromtimestamp(start + hour * 3600 + 30, UTC)
            cw.put_metric_data(
                Namespace="Conveyor",
                MetricData=[
                    {
                        "MetricName": name,
                        "Dimensions": dims,
                        "Timestamp": at,
                        "Values": [0.0, 1.0],
                        "Counts": [3 + hour, 1],
                    }
                    for name in ("Errors", "Latency")
                ],
            )
        ours = LocalMetricReader(cloudwatch_backends[ACCOUNT]["us-east-1"]).read(PANELS, start, start + 3 * 3600, 3600)
        for panel_key, stat in (("error_rate", "Average"), ("requests", "SampleCount")):
            metric = PANEL_BY_KEY[panel_key].metric
            answer = cw.get_metric_data(
                MetricDataQueries=[
                    {
                        "Id": "q",
                        "MetricStat": {
                            "Metric": {"Namespace": "Conveyor", "MetricName": metric, "Dimensions": dims},
                            "Period": 3600,
                            "Stat": stat,
                        },
                    }
                ],
                StartTime=datetime.fromtimestamp(start, UTC),
                EndTime=datetime.fromtimestamp(start + 3 * 3600, UTC),
            )["MetricDataResults"][0]
            theirs = sorted(zip((t.timestamp() for t in answer["Timestamps"]), answer["Values"], strict=True))
            mine = ours[panel_key]["m"]["1"]
            assert [t for t, _ in mine] == [t for t, _ in theirs]
            assert [v for _, v in mine] == pytest.approx([v for _, v in theirs])
            expected = [1 / 4, 1 / 5, 1 / 6] if stat == "Average" else [4.0, 5.0, 6.0]
            assert [v for _, v in theirs] == pytest.approx(expected)
