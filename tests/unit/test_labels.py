"""Delayed labels (conveyor.monitoring.labels) on memory ports: the join with served records only,
unknown request ids, quarantine of malformed files, and the live metric they give."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, roc_auc_score

from conveyor.layout import labels_report_key
from conveyor.monitoring.alarms import WATCHED, alarm_definitions
from conveyor.monitoring.labels import ingest_labels
from conveyor.monitoring.live import run_monitor
from conveyor.ports import ObjectRef
from tests.conftest import DATASET
from tests.unit.monitoring_world import MODEL, NOW, make_world


@pytest.fixture(scope="module")
def rows_1986() -> pd.DataFrame:
    frame = pd.read_csv(DATASET)
    return frame[frame["year"] == 1986].sample(300, random_state=5).reset_index(drop=True)


def _drop(world, frame: pd.DataFrame, name: str = "batch.csv") -> ObjectRef:
    buffer = io.BytesIO()
    if name.endswith(".parquet"):
        frame.to_parquet(buffer, index=False)
    else:
        frame.to_csv(buffer, index=False)
    return world.store.put("data", f"{MODEL}/labels/{name}", buffer.getvalue())


def test_labels_join_served_records_and_give_the_offline_metric(trained_model, rows_1986):
    world = make_world(trained_model)
    served = world.serve(rows_1986, start=NOW - 1800)
    shadow = world.serve(rows_1986.head(50), start=NOW - 1800, role="shadow", served=False, model_version=2)
    for record in shadow:  # a shadow record shares its request id with the served one
        record["request_id"] = served[shadow.index(record)]["request_id"]
    world.write(shadow)
    labels = pd.DataFrame(
        {
            "request_id": [r["request_id"] for r in served[:200]] + ["nobody-1", "nobody-2"],
            "docvis": [*rows_1986["docvis"].head(200).tolist(), 1, 0],
        }
    )
    outcome = ingest_labels(_drop(world, labels, "labels.parquet"), world.spec, world.store, "capture", now=NOW)
    assert (outcome.verdict, outcome.labels, outcome.matched, outcome.unknown_request_ids) == ("joined", 202, 200, 2)
    report = json.loads(world.store.get("capture", labels_report_key(MODEL, outcome.label_object)))
    assert report["matched"] == 200 and report["unknown_request_ids"] == 2

    live = run_monitor(MODEL, world.ctx, NOW, 3600).primary()["live_metrics"]
    truth = (rows_1986["docvis"].head(200) > 0).astype(int)
    p1 = [r["probabilities"][0]["1"] for r in served[:200]]
    predicted = [r["predictions"][0] for r in served[:200]]
    assert live["labelled_requests"] == 200
    assert live["roc_auc"] == pytest.approx(roc_auc_score(truth, p1), abs=1e-6)
    assert live["accuracy"] == pytest.approx(accuracy_score(truth, predicted), abs=1e-6)
    holdout = trained_model.result.metrics["roc_auc"]
    assert live["degradation"] == pytest.approx(holdout - live["roc_auc"], abs=1e-6)
    points = {(n, tuple(sorted(d.items()))): v for _, n, d, v in world.metrics.datapoints}
    assert points[("LiveMetric", (("model", MODEL),))] == pytest.approx(live["roc_auc"])
    assert points[("LiveAccuracy", (("model", MODEL), ("version", "1")))] == pytest.approx(live["accuracy"])
    assert points[("LiveLabelledRequests", (("model", MODEL),))] == 200.0


def test_labelled_traffic_gives_the_value_per_1000_and_every_live_alarms_metric(trained_model, rows_1986):
    worth = {"true_positive": 30.0, "false_positive": -5.0, "false_negative": -40.0, "true_negative": 0.0}
    world = make_world(trained_model, spec_changes={"value": {**worth, "unit": "EUR"}})
    served = world.serve(rows_1986.head(120), start=NOW - 1800)
    labels = pd.DataFrame({"request_id": [r["request_id"] for r in served], "docvis": rows_1986["docvis"].head(120)})
    ingest_labels(_drop(world, labels), world.spec, world.store, "capture", now=NOW)
    live = run_monitor(MODEL, world.ctx, NOW, 3600).primary()["live_metrics"]
    truth = (rows_1986["docvis"].head(120) > 0).astype(int).tolist()
    predicted = [r["predictions"][0] for r in served]
    outcomes = [
        "true_positive" if t and p else "false_positive" if p else "false_negative" if t else "true_negative"
        for t, p in zip(truth, predicted, strict=True)
    ]
    expected = 1000.0 * sum(worth[o] for o in outcomes) / len(outcomes)
    assert live["value_per_1000"] == pytest.approx(expected, abs=1e-6)
    points = {(n, tuple(sorted(d.items()))): v for _, n, d, v in world.metrics.datapoints}
    assert points[("LiveValuePer1000", (("model", MODEL),))] == pytest.approx(expected, abs=1e-6)
    assert points[("LiveValuePer1000", (("model", MODEL), ("version", "1")))] == pytest.approx(expected, abs=1e-6)
    # Each live-monitor alarm watches a metric the monitor published, with the alarm's dimensions.
    live_alarms = [d for d in alarm_definitions("S", MODEL) if not WATCHED[d.name.rsplit("-", 1)[1]].request]
    assert {d.name.rsplit("-", 1)[1] for d in live_alarms} == {
        "drift",
        "domain_classifier",
        "score_shift",
        "live_metric",
    }
    for definition in live_alarms:
        assert (definition.metric, tuple(sorted(definition.dimensions.items()))) in points, definition.name


def test_without_a_value_section_no_value_is_published(trained_model, rows_1986):
    world = make_world(trained_model)
    served = world.serve(rows_1986.head(20), start=NOW - 600)
    labels = pd.DataFrame({"request_id": [r["request_id"] for r in served], "docvis": rows_1986["docvis"].head(20)})
    ingest_labels(_drop(world, labels), world.spec, world.store, "capture", now=NOW)
    assert run_monitor(MODEL, world.ctx, NOW, 3600).primary()["live_metrics"]["value_per_1000"] is None
    assert not [v for _, n, _, v in world.metrics.datapoints if n == "LiveValuePer1000"]


def test_rows_of_a_multi_row_request_and_a_row_it_does_not_have(trained_model, rows_1986):
    world = make_world(trained_model)
    served = world.serve(rows_1986.head(3), start=NOW - 600)
    labels = pd.DataFrame(
        {"request_id": [served[0]["request_id"]] * 2, "row": [0, 5], "docvis": [2, 0]}  # row 5 does not exist
    )
    outcome = ingest_labels(_drop(world, labels), world.spec, world.store, "capture", now=NOW)
    assert (outcome.matched, outcome.unmatched_rows, outcome.unknown_request_ids) == (1, 1, 0)
    [key] = outcome.joined_keys
    [joined] = [json.loads(line) for line in world.store.get("capture", key).splitlines()]
    assert (joined["label"], joined["row"], joined["model_version"]) == ("1", 0, 1)  # positive_when: docvis > 0


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (pd.DataFrame({"request_id": ["a"], "visits": [1]}), "missing column"),
        (pd.DataFrame({"request_id": ["a", None], "docvis": [1, 0]}), "request_id has null"),
        (pd.DataFrame({"request_id": ["a"], "row": [-1], "docvis": [1]}), "row must be"),
        (pd.DataFrame({"request_id": ["a"], "docvis": [None]}), "null value"),
    ],
)
def test_a_malformed_label_file_is_quarantined_with_a_report(trained_model, frame, reason):
    world = make_world(trained_model)
    source = _drop(world, frame)
    outcome = ingest_labels(source, world.spec, world.store, "capture", now=NOW)
    assert outcome.verdict == "quarantined" and reason in outcome.reason
    assert outcome.quarantine_key == f"{MODEL}/quarantine/labels/batch.csv"
    report = json.loads(world.store.get("data", f"{outcome.quarantine_key}.report.json"))
    assert report["verdict"] == "rejected" and reason in report["summary"]
    assert world.store.head("data", source.key) is None
    assert json.loads(world.store.get("capture", labels_report_key(MODEL, outcome.label_object)))["verdict"] == (
        "quarantined"
    )


def test_an_unreadable_label_file_is_quarantined(trained_model):
    world = make_world(trained_model)
    source = world.store.put("data", f"{MODEL}/labels/broken.parquet", b"not parquet at all")
    assert ingest_labels(source, world.spec, world.store, "capture", now=NOW).verdict == "quarantined"
