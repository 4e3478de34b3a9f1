from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from conveyor.evaluation import primary_score
from conveyor.gates import evaluate_candidate
from conveyor.onnx_export import export_onnx
from conveyor.scoring import OnnxModel, Prediction
from conveyor.spec import ModelSpec, spec_hash
from conveyor.tabular import feature_frame, onnx_inputs
from conveyor.training import train_model


def _model(df: pd.DataFrame, spec: ModelSpec) -> tuple[OnnxModel, pd.DataFrame]:
    result = train_model(df, spec)
    onnx_bytes = export_onnx(result.pipeline, spec, classes=result.classes, spec_hash=spec_hash(spec))
    return OnnxModel(onnx_bytes), result.holdout_df


@pytest.fixture(scope="module")
def models(_sample: pd.DataFrame, make_spec: Callable[..., ModelSpec]) -> dict:
    spec = make_spec()
    good, holdout = _model(_sample, spec)
    # a weak model: logistic regression on one uninformative-ish feature
    weak_spec = make_spec(features={"self": {"type": "boolean"}}, estimator={"type": "logistic_regression"})
    weak, _ = _model(_sample, weak_spec)
    return {"spec": spec, "good": good, "weak": weak, "holdout": holdout}


def test_no_champion_passes_with_reason(models: dict) -> None:
    evaluation = evaluate_candidate(models["good"], None, models["holdout"], models["spec"])
    assert evaluation.passed and evaluation.champion is None
    assert evaluation.reason.startswith("no champion: candidate roc_auc 0.")
    assert set(evaluation.candidate) == {"roc_auc", "accuracy", "log_loss"}
    assert evaluation.rows == len(models["holdout"])
    json.dumps(evaluation.to_dict())


def test_worse_candidate_fails_and_better_passes(models: dict) -> None:
    spec, good, weak, holdout = models["spec"], models["good"], models["weak"], models["holdout"]
    worse = evaluate_candidate(weak, good, holdout, spec)
    assert not worse.passed and worse.champion is not None
    drop = worse.champion["roc_auc"] - worse.candidate["roc_auc"]
    assert drop > spec.gates.max_degradation
    assert worse.reason == (
        f"roc_auc {worse.candidate['roc_auc']:.3f} vs champion {worse.champion['roc_auc']:.3f}: "
        f"worse by {drop:.3f} > allowed 0.005"
    )
    (gate,) = worse.gates
    assert gate.threshold == pytest.approx(worse.champion["roc_auc"] - 0.005)
    better = evaluate_candidate(good, weak, holdout, spec)
    assert better.passed and "better by" in better.reason


def test_same_model_passes_at_zero_tolerance(models: dict, make_spec: Callable[..., ModelSpec]) -> None:
    strict = make_spec(gates={"primary_metric": "roc_auc", "max_degradation": 0.0})
    evaluation = evaluate_candidate(models["good"], models["good"], models["holdout"], strict)
    assert evaluation.passed
    assert evaluation.candidate == evaluation.champion


def test_lower_is_better_metric_direction(models: dict, make_spec: Callable[..., ModelSpec]) -> None:
    spec = make_spec(gates={"primary_metric": "log_loss", "max_degradation": 0.0})
    first = evaluate_candidate(models["weak"], models["good"], models["holdout"], spec)
    assert first.metric == "log_loss" and not first.higher_is_better
    assert first.champion is not None and first.candidate["log_loss"] != first.champion["log_loss"]
    # on 1,600 training rows the boosted model overfits in log_loss: let the data decide who is better
    weak_is_better = first.candidate["log_loss"] < first.champion["log_loss"]
    assert first.passed is weak_is_better
    second = evaluate_candidate(models["good"], models["weak"], models["holdout"], spec)
    assert second.passed is not weak_is_better
    loser = second if weak_is_better else first
    assert loser.champion is not None
    assert "worse by" in loser.reason and loser.gates[0].threshold == pytest.approx(loser.champion["log_loss"])


def test_champion_that_cannot_score_is_recorded(
    models: dict, _sample: pd.DataFrame, make_spec: Callable[..., ModelSpec]
) -> None:
    renamed = _sample.rename(columns={"hhninc": "income"})
    other = make_spec(
        features={"age": {"type": "number"}, "income": {"type": "number"}}, estimator={"type": "logistic_regression"}
    )
    champion, _ = _model(renamed, other)
    evaluation = evaluate_candidate(models["good"], champion, models["holdout"], models["spec"])
    assert evaluation.passed and evaluation.champion is None
    assert "income" in (evaluation.champion_error or "")
    assert evaluation.reason.startswith("champion cannot score this holdout")


def test_primary_score_matches_sklearn(models: dict) -> None:
    spec, good, holdout = models["spec"], models["good"], models["holdout"]
    prediction = good.predict(onnx_inputs(feature_frame(holdout, spec), spec))
    y = (holdout["docvis"] > 0).to_numpy().astype(int)
    assert prediction.probabilities is not None
    expected = roc_auc_score(y, prediction.probabilities[:, 1])
    assert primary_score("roc_auc", y, prediction, good.classes) == pytest.approx(expected)
    assert primary_score("accuracy", y, prediction) == pytest.approx(np.mean(prediction.labels == y))


def test_primary_score_regression_metrics() -> None:
    prediction = Prediction(labels=np.array([1.0, 2.0, 4.0]))
    y = np.array([1.0, 2.0, 2.0])
    assert primary_score("mae", y, prediction) == pytest.approx(2 / 3)
    assert primary_score("rmse", y, prediction) == pytest.approx(np.sqrt(4 / 3))
    with pytest.raises(ValueError, match="probabilities"):
        primary_score("roc_auc", y, prediction)


# --- minimum improvement over the champion ---------------------------------------------------


def test_min_improvement_records_the_score_to_reach_and_passes_only_above_it(
    models: dict, make_spec: Callable[..., ModelSpec]
) -> None:
    good, weak, holdout = models["good"], models["weak"], models["holdout"]
    baseline = evaluate_candidate(good, weak, holdout, models["spec"])
    assert baseline.champion is not None
    margin = baseline.candidate["roc_auc"] - baseline.champion["roc_auc"]
    assert margin > 0.02  # the boosted model is clearly better than one boolean feature
    for required, expected in ((margin / 2, True), (margin + 0.01, False)):
        spec = make_spec(gates={"primary_metric": "roc_auc", "min_improvement": required})
        evaluation = evaluate_candidate(good, weak, holdout, spec)
        (gate,) = evaluation.gates
        assert gate.name == "primary_metric_vs_champion" and gate.passed is expected
        assert gate.value == pytest.approx(evaluation.candidate["roc_auc"])
        assert gate.threshold == pytest.approx(baseline.champion["roc_auc"] + required)
        sign = ">=" if expected else "<"
        assert gate.message.endswith(f"better by {margin:.3f} {sign} required improvement {required:.3f}")
        assert evaluation.passed is expected


def test_min_improvement_refuses_an_equal_model_and_follows_the_metric_direction(
    models: dict, make_spec: Callable[..., ModelSpec]
) -> None:
    good, weak, holdout = models["good"], models["weak"], models["holdout"]
    same = evaluate_candidate(
        good, good, holdout, make_spec(gates={"primary_metric": "roc_auc", "min_improvement": 0.001})
    )
    assert not same.passed and "better by 0.000 < required improvement 0.001" in same.reason
    # lower is better: the candidate must bring log_loss below champion - required
    spec = make_spec(gates={"primary_metric": "log_loss", "min_improvement": 0.0})
    evaluation = evaluate_candidate(weak, good, holdout, spec)
    assert evaluation.champion is not None
    (gate,) = evaluation.gates
    assert gate.threshold == pytest.approx(evaluation.champion["log_loss"])
    assert gate.passed is (evaluation.candidate["log_loss"] <= evaluation.champion["log_loss"])
    strict = make_spec(gates={"primary_metric": "log_loss", "min_improvement": 0.05})
    (gate,) = evaluate_candidate(weak, good, holdout, strict).gates
    assert gate.threshold == pytest.approx(evaluation.champion["log_loss"] - 0.05)
    assert gate.passed is (evaluation.candidate["log_loss"] <= evaluation.champion["log_loss"] - 0.05)


def test_min_improvement_without_a_champion_passes_as_the_first_model(
    models: dict, make_spec: Callable[..., ModelSpec]
) -> None:
    spec = make_spec(gates={"primary_metric": "roc_auc", "min_improvement": 0.5})
    evaluation = evaluate_candidate(models["good"], None, models["holdout"], spec)
    assert evaluation.passed and evaluation.reason.startswith("no champion")
