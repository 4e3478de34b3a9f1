"""The live monitor (conveyor.monitoring.live) on memory ports: drift of live inputs, score shift
against the holdout, what counts as served traffic, masked inputs, metrics and the report."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from conveyor.monitoring import metrics as names
from conveyor.monitoring.live import live_metrics, run_monitor
from conveyor.monitoring.scores import distribution, live_shift, row_score
from conveyor.profile import Profile
from tests.conftest import DATASET
from tests.unit.monitoring_world import MODEL, NOW, make_world

WINDOW = 3600


@pytest.fixture(scope="module")
def years() -> dict[int, pd.DataFrame]:
    frame = pd.read_csv(DATASET)
    return {year: part.reset_index(drop=True) for year, part in frame.groupby("year")}


def _metric(world, name, dims):
    return [v for ns, n, d, v in world.metrics.datapoints if ns == "Conveyor" and n == name and d == dims]


def test_drifted_inputs_give_a_drift_verdict_with_hhninc_and_publish_live_metrics(trained_model, years):
    world = make_world(trained_model)
    world.serve(years[1988].sample(800, random_state=1), start=NOW - 1800)
    run = run_monitor(MODEL, world.ctx, NOW, WINDOW)
    document = run.primary()
    assert set(document) == {"model", "version", "window", "requests", "drift", "score_shift", "live_metrics"}
    assert (document["model"], document["version"], document["requests"]) == (MODEL, 1, 800)
    assert document["window"]["seconds"] == WINDOW
    assert document["drift"]["verdict"] == "drift"
    assert "hhninc" in document["drift"]["drifted_features"]
    assert {f["name"] for f in document["drift"]["features"]} == set(world.spec.features)
    drifted = float(len(document["drift"]["drifted_features"]))
    assert _metric(world, names.LIVE_DRIFTED_FEATURES, {"model": MODEL}) == [drifted]
    assert _metric(world, names.LIVE_DRIFTED_FEATURES, {"model": MODEL, "version": "1"}) == [drifted]
    assert _metric(world, names.LIVE_REQUESTS, {"model": MODEL}) == [800.0]
    assert _metric(world, names.LIVE_DOMAIN_CLASSIFIER_AUC, {"model": MODEL}) == [
        pytest.approx(document["drift"]["domain_classifier_auc"])
    ]
    assert _metric(world, names.LIVE_LABELLED_REQUESTS, {"model": MODEL}) == [0.0]
    assert not _metric(world, names.LIVE_METRIC, {"model": MODEL}), "no labels: no live metric"
    stored = json.loads(world.store.get("capture", run.report_key))
    assert run.report_key.startswith(f"{MODEL}/monitor/2027/01/15/08/")
    assert stored["versions"][0] == document


def test_training_like_traffic_has_no_drift_and_almost_no_score_shift(trained_model):
    world = make_world(trained_model)
    world.serve(trained_model.result.holdout_df.sample(800, random_state=2), start=NOW - 1800)
    document = run_monitor(MODEL, world.ctx, NOW, WINDOW).primary()
    assert document["drift"]["verdict"] == "no_drift", document["drift"]
    shift = document["score_shift"]
    assert shift["psi_variant"] == "debiased" and shift["n_current"] == 800
    assert shift["shift"] < 0.02
    assert _metric(world, names.LIVE_SCORE_SHIFT, {"model": MODEL}) == [shift["shift"]]


def test_only_served_answers_in_the_window_count(trained_model, years):
    world = make_world(trained_model)
    rows = years[1986].head(150)
    world.serve(rows, start=NOW - 1800)
    world.serve(rows, start=NOW - 1800, role="shadow", served=False, model_version=2)
    world.serve(rows.head(20), start=NOW - 1800, status=503, predictions=[], probabilities=None)
    world.serve(rows.head(30), start=NOW - 3 * WINDOW)  # before the window
    world.serve(rows.head(10), start=NOW - 1800, model="another")
    run = run_monitor(MODEL, world.ctx, NOW, WINDOW)
    assert [d["version"] for d in run.documents] == [1]
    assert run.primary()["requests"] == 150
    assert run.primary()["score_shift"]["n_current"] == 150


def test_masked_inputs_are_left_out_of_drift(trained_model, years):
    world = make_world(trained_model, spec_changes={"capture": {"pii": ["hhninc"]}})
    world.serve(years[1988].sample(500, random_state=3), start=NOW - 1800)
    drift = run_monitor(MODEL, world.ctx, NOW, WINDOW).primary()["drift"]
    assert drift["masked_features"] == ["hhninc"]
    assert "hhninc" not in {f["name"] for f in drift["features"]}
    assert "hhninc" not in drift["drifted_features"]


def test_too_few_requests_are_reported_without_a_drift_verdict(trained_model, years):
    world = make_world(trained_model, spec_changes={"monitoring": {"min_requests": 50}})
    world.serve(years[1988].head(20), start=NOW - 600)
    document = run_monitor(MODEL, world.ctx, NOW, WINDOW).primary()
    assert document["requests"] == 20
    assert document["drift"]["verdict"] == "insufficient_data"
    assert not _metric(world, names.LIVE_DRIFTED_FEATURES, {"model": MODEL})
    assert _metric(world, names.LIVE_REQUESTS, {"model": MODEL}) == [20.0]


def test_a_profile_without_scores_measures_no_score_shift(trained_model, years):
    world = make_world(trained_model, scores=False)
    world.serve(years[1986].head(200), start=NOW - 600)
    document = run_monitor(MODEL, world.ctx, NOW, WINDOW).primary()
    assert document["score_shift"] is None
    assert not _metric(world, names.LIVE_SCORE_SHIFT, {"model": MODEL})


def test_a_window_without_traffic_reports_the_champion_with_zero_requests(trained_model):
    world = make_world(trained_model)
    document = run_monitor(MODEL, world.ctx, NOW, WINDOW).primary()
    assert (document["version"], document["requests"], document["drift"]["verdict"]) == (1, 0, "insufficient_data")
    assert document["score_shift"] is None
    assert _metric(world, names.LIVE_REQUESTS, {"model": MODEL}) == [0.0]


def test_profiles_keep_their_score_distribution_and_old_ones_still_read(trained_model):
    from conveyor.training import holdout_scores

    scores = holdout_scores(trained_model.result, trained_model.spec)
    assert len(scores) == trained_model.result.n_holdout and all(0.0 <= s <= 1.0 for s in scores)
    stored = distribution(scores)
    assert stored["kind"] == "numeric" and sum(stored["counts"]) == len(scores) == stored["n"]
    from conveyor.profile import build_profile

    profile = build_profile(trained_model.result.train_df, trained_model.spec)
    profile.scores = stored
    assert Profile.from_json(profile.to_json()).scores == stored
    old = profile.to_dict()
    del old["scores"]
    assert Profile.from_dict(old).scores is None


def test_score_shift_of_labels_and_of_mismatched_kinds():
    reference = distribution(["a"] * 50 + ["b"] * 50)
    assert reference == {"kind": "labels", "counts": {"a": 50, "b": 50}, "n": 100}
    same = live_shift(reference, ["a"] * 500 + ["b"] * 500)
    moved = live_shift(reference, ["a"] * 900 + ["b"] * 50 + ["c"] * 50)
    assert same is not None and moved is not None
    assert same.shift == 0.0 and moved.shift > 0.5 and moved.bins == 3
    assert live_shift(reference, [0.5, 0.2]) is None
    assert live_shift(None, [0.5]) is None
    assert row_score(1, {"0": 0.25, "1": 0.75}) == 0.75
    assert row_score(2, {"0": 0.1, "1": 0.2, "2": 0.7}) == "2"
    assert row_score(3.5, None) == 3.5


def test_regression_live_metrics_are_mae_and_the_primary_metric(make_spec):
    from sklearn.metrics import mean_absolute_error, mean_squared_error

    spec = make_spec(
        task="regression",
        target={"column": "docvis"},
        estimator={"type": "linear_regression", "params": {}},
        gates={"primary_metric": "rmse"},
        value={"cost_per_unit_error": 2.0},
    )
    truth = [1.0, 2.0, 4.0, 0.0, 3.0]
    predicted = [1.5, 2.0, 3.0, 0.5, 3.0]
    rows = [
        {"request_id": f"r{i // 2}", "row": i % 2, "label": t, "prediction": p, "probabilities": None}
        for i, (t, p) in enumerate(zip(truth, predicted, strict=True))
    ]
    document = live_metrics(rows, spec, holdout=0.5)
    assert document["mae"] == pytest.approx(mean_absolute_error(truth, predicted))
    assert document["rmse"] == pytest.approx(mean_squared_error(truth, predicted) ** 0.5)
    assert (document["labelled_requests"], document["labelled_rows"]) == (3, 5)
    assert document["degradation"] == pytest.approx(document["rmse"] - 0.5)  # rmse: lower is better
    assert document["value_per_1000"] == pytest.approx(-1000.0 * 2.0 * mean_absolute_error(truth, predicted))
