"""The model gates on the real demo model, and on deliberately bad models that make each gate fail."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from conveyor.errors import DataError
from conveyor.gates import (
    GateReport,
    GateThresholds,
    agreement,
    assess_candidate,
    importance_shares,
    latency,
    noise_flip_rate,
    parity_gates,
    permutation_importance,
    run_gates,
    slice_metrics,
)
from conveyor.onnx_export import export_onnx, parity
from conveyor.scoring import OnnxModel
from conveyor.spec import ModelSpec, spec_hash
from conveyor.tabular import target_vector
from conveyor.training import train_model

GATE_NAMES = [
    "slice_gap",
    "noise_robustness",
    "inference_agreement",
    "explainability",
    "latency_single",
    "latency_batch",
    "model_size",
]


def _train(df: pd.DataFrame, spec: ModelSpec) -> tuple[OnnxModel, bytes]:
    result = train_model(df, spec)
    data = export_onnx(result.pipeline, spec, classes=result.classes, spec_hash=spec_hash(spec))
    return OnnxModel(data), data


@pytest.fixture(scope="module")
def demo(trained_model: Any) -> dict[str, Any]:
    holdout = trained_model.result.holdout_df
    return {
        "spec": trained_model.spec,
        "model": OnnxModel(trained_model.onnx),
        "bytes": trained_model.onnx,
        "holdout": holdout,
        # train_model splits again (by patient id, stably): it needs train and holdout rows together
        "rows": pd.concat([trained_model.result.train_df, holdout]),
        "y": target_vector(holdout, trained_model.spec),
    }


def _gate(report: GateReport, name: str) -> Any:
    (gate,) = [g for g in report.gates if g.name == name]
    return gate


# --- the real model --------------------------------------------------------------------------


def test_demo_model_passes_every_gate_and_reports_json(demo: dict[str, Any]) -> None:
    live = demo["holdout"].head(40).to_dict("records")
    report = run_gates(
        demo["model"], demo["model"], demo["holdout"], demo["spec"], candidate_bytes=demo["bytes"], live_instances=live
    )
    assert [g.name for g in report.gates] == GATE_NAMES
    assert report.passed, report.failed
    assert report.agreement["holdout"] == 1.0 and report.agreement["live"] == 1.0
    assert report.agreement["live_rows"] == 40
    assert "no slice columns" in _gate(report, "slice_gap").message
    assert report.importance["top"] == [row["name"] for row in report.importance["features"][:5]]
    assert sum(row["share"] for row in report.importance["features"]) == pytest.approx(1.0)
    assert report.latency["model_mb"] == pytest.approx(len(demo["bytes"]) / 1e6)
    data = report.to_dict()
    assert data["passed"] is True
    json.dumps(data, allow_nan=False)
    assert report.seconds < 10  # about 0.3 s on an idle 2-core machine; loose for busy CI


def test_to_dict_turns_nan_into_none(demo: dict[str, Any]) -> None:
    report = run_gates(demo["model"], None, demo["holdout"], demo["spec"], candidate_bytes=demo["bytes"])
    report.flip_rate = float("nan")
    report.latency["single"]["p99_ms"] = np.float64("inf")
    data = report.to_dict()
    assert data["flip_rate"] is None and data["latency"]["single"]["p99_ms"] is None
    json.dumps(data, allow_nan=False)


def test_candidate_that_cannot_score_the_holdout_raises(demo: dict[str, Any]) -> None:
    with pytest.raises(DataError, match="age"):
        run_gates(demo["model"], None, demo["holdout"].drop(columns=["age"]), demo["spec"], candidate_bytes=b"")


# --- slices ----------------------------------------------------------------------------------


def test_slice_metrics_match_a_hand_computation(demo: dict[str, Any]) -> None:
    model, holdout, y = demo["model"], demo["holdout"], demo["y"]
    slices = slice_metrics(model, holdout, y, ["female", "year"])
    women = slices["female"]["slices"]["1"]
    mask = holdout["female"].to_numpy() == 1
    labels = model.predict(
        {name: values for name, values in _inputs(model, holdout).items()},
    ).labels.astype(int)
    assert women["rows"] == int(mask.sum())
    assert women["positive_rate"] == pytest.approx(labels[mask].mean())
    assert women["base_rate"] == pytest.approx(y[mask].mean())
    assert women["tpr"] == pytest.approx(labels[mask & (y == 1)].mean())
    assert women["fpr"] == pytest.approx(labels[mask & (y == 0)].mean())
    assert 0.0 <= women["auc"] <= 1.0
    gap = slices["female"]["gaps"]["positive_rate"]
    assert gap["gap"] == pytest.approx(gap["high_value"] - gap["low_value"])
    # year is no feature of the model: slices are read from the frame
    assert set(slices["year"]["slices"]) == {str(v) for v in holdout["year"].unique()}


def _inputs(model: OnnxModel, frame: pd.DataFrame) -> dict[str, np.ndarray]:
    from conveyor.tabular import inputs_from_frame, typed_frame

    return inputs_from_frame(typed_frame(frame, model.feature_types), model.feature_types)


def test_single_class_and_small_slices_are_reported_not_gated(demo: dict[str, Any]) -> None:
    holdout = demo["holdout"].copy()
    holdout["outcome_group"] = np.where(demo["y"] == 1, "visited", "not visited")
    holdout["tiny"] = ["a"] * 10 + ["b"] * (len(holdout) - 10)
    slices = slice_metrics(demo["model"], holdout, demo["y"], ["outcome_group", "tiny", "absent"])
    group = slices["outcome_group"]["slices"]
    assert group["visited"]["auc"] is None and group["visited"]["fpr"] is None
    assert group["not visited"]["tpr"] is None
    assert "auc" not in slices["outcome_group"]["gaps"]
    assert slices["tiny"]["small_slices"] == ["a"] and slices["tiny"]["gaps"] == {}
    assert "error" in slices["absent"]


def test_many_valued_numeric_slice_column_is_binned(demo: dict[str, Any]) -> None:
    slices = slice_metrics(demo["model"], demo["holdout"], demo["y"], ["age"])
    assert len(slices["age"]["slices"]) == 4


def test_slice_gap_gate_fails_naming_column_metric_and_slices(demo: dict[str, Any]) -> None:
    # the demo model predicts "visits a doctor" for ~94% of women and ~43% of men
    report = run_gates(
        demo["model"], None, demo["holdout"], demo["spec"], candidate_bytes=demo["bytes"], slice_columns=["female"]
    )
    gate = _gate(report, "slice_gap")
    assert not gate.passed and not report.passed and report.failed == ["slice_gap"]
    assert gate.value > 0.25
    assert gate.message.startswith("largest gap: female ") and "'0'" in gate.message and "'1'" in gate.message
    lenient = run_gates(
        demo["model"],
        None,
        demo["holdout"],
        demo["spec"],
        candidate_bytes=demo["bytes"],
        slice_columns=["female"],
        thresholds=GateThresholds(max_slice_gap=0.9),
    )
    assert _gate(lenient, "slice_gap").passed


def test_spec_sensitive_columns_are_sliced(demo: dict[str, Any], spec_dict: dict[str, Any]) -> None:
    from conveyor.spec import parse_spec

    spec_dict["features"]["married"]["allow_sensitive"] = True
    spec = parse_spec({**spec_dict, "sensitive": ["married"]})
    report = run_gates(demo["model"], None, demo["holdout"], spec, candidate_bytes=demo["bytes"])
    assert list(report.slices) == ["married"]


def test_spec_slices_are_sliced_beside_sensitive_and_gated(demo: dict[str, Any], spec_dict: dict[str, Any]) -> None:
    from conveyor.spec import parse_spec

    spec_dict["features"]["married"]["allow_sensitive"] = True
    spec = parse_spec({**spec_dict, "sensitive": ["married"], "slices": ["year", "female"]})
    report = run_gates(demo["model"], None, demo["holdout"], spec, candidate_bytes=demo["bytes"])
    assert list(report.slices) == ["married", "year", "female"]
    assert set(report.slices["year"]["slices"]) == {"1984", "1985"}
    # the demo model's gap between women and men (see above) now fails the gate through the spec alone
    gate = _gate(report, "slice_gap")
    assert not gate.passed and gate.message.startswith("largest gap: female ")
    lenient = parse_spec({**spec_dict, "slices": ["female"], "gates": {"max_slice_gap": 0.9}})
    assessment = assess_candidate(
        demo["model"], None, demo["holdout"], lenient, candidate_bytes=demo["bytes"], parity=None
    )
    (gate,) = [g for g in assessment.gates if g.name == "slice_gap"]
    assert gate.passed and gate.threshold == 0.9 and "female" in assessment.details()["slices"]


# --- ONNX parity -----------------------------------------------------------------------------


def test_classification_parity_needs_close_probabilities_and_identical_labels() -> None:
    measured = {"max_abs_diff": 2e-7, "label_agreement": 1.0, "rows": 500, "task": "classification", "tolerance": 1e-5}
    probability, labels = parity_gates(measured)
    assert (probability.name, probability.value, probability.threshold, probability.passed) == (
        "onnx_parity",
        2e-7,
        1e-5,
        True,
    )
    assert (labels.name, labels.value, labels.threshold, labels.passed) == ("onnx_label_agreement", 1.0, 1.0, True)
    # one flipped label (a row on the decision boundary) fails, however small the probability difference
    probability, labels = parity_gates({**measured, "label_agreement": 0.998})
    assert probability.passed and not labels.passed and "99.80% of 500" in labels.message
    probability, labels = parity_gates({**measured, "max_abs_diff": 3e-3})
    assert not probability.passed and labels.passed and "3.00e-03 > 1e-05" in probability.message


def test_parity_that_was_not_measured_passes_and_says_why() -> None:
    (gate,) = parity_gates(None, missing_reason="no scikit-learn model at hand")
    assert (gate.name, gate.value, gate.passed) == ("onnx_parity", None, True)
    assert gate.message == "not measured: no scikit-learn model at hand"


def test_classification_parity_of_the_demo_model_passes(trained_model: Any) -> None:
    report = parity(
        trained_model.result.pipeline, trained_model.onnx, trained_model.result.holdout_df, trained_model.spec
    )
    assert report.passed and report.to_dict()["passed"] is True
    assert all(gate.passed for gate in parity_gates(report.to_dict()))


@pytest.mark.parametrize(
    ("estimator", "params"),
    [("linear_regression", {}), ("hist_gradient_boosting", {"max_iter": 30}), ("random_forest", {"n_estimators": 20})],
)
def test_regression_pipelines_pass_the_parity_gate_with_a_relative_tolerance(
    demo: dict[str, Any], make_spec: Callable[..., ModelSpec], estimator: str, params: dict[str, Any]
) -> None:
    # visits x 10,000: float32 in onnxruntime loses ~1e-7 of each value, far above any absolute 1e-4
    rows = demo["rows"].assign(docvis=demo["rows"]["docvis"] * 10_000)
    spec = make_spec(
        task="regression",
        target={"column": "docvis"},
        estimator={"type": estimator, "params": params},
        gates={"primary_metric": "mae"},
    )
    result = train_model(rows, spec)
    onnx_bytes = export_onnx(result.pipeline, spec, classes=None, spec_hash="h")
    report = parity(result.pipeline, onnx_bytes, result.holdout_df, spec)
    assert (report.task, report.tolerance, report.rtol) == ("regression", 1e-4, 1e-5)
    assert report.passed and report.label_agreement == 1.0, report
    assert report.max_abs_diff > report.tolerance  # an absolute-only gate would refuse a faithful export
    (gate,) = parity_gates(report.to_dict())
    assert gate.name == "onnx_parity" and gate.passed and gate.threshold == 1.0
    assert gate.value == report.tolerance_used and 0.0 <= gate.value <= 1.0
    # an absolute tolerance alone, one float32 arithmetic cannot meet, fails the same model
    tight = spec.model_copy(
        update={"gates": spec.gates.model_copy(update={"parity_tolerance": 1e-9, "parity_rtol": 0.0})}
    )
    strict = parity(result.pipeline, onnx_bytes, result.holdout_df, tight)
    (gate,) = parity_gates(strict.to_dict())
    assert not strict.passed and not gate.passed and gate.value > 1.0 and strict.label_agreement < 1.0


# --- noise robustness ------------------------------------------------------------------------


def test_flip_rate_is_seeded_and_zero_without_noise(demo: dict[str, Any]) -> None:
    model, holdout, spec = demo["model"], demo["holdout"], demo["spec"]
    first = noise_flip_rate(model, holdout, spec, GateThresholds(seed=3))
    assert first == noise_flip_rate(model, holdout, spec, GateThresholds(seed=3))
    assert 0.0 < first <= 0.10
    assert noise_flip_rate(model, holdout, spec, GateThresholds(noise_scale=0.0, swap_rate=0.0)) == 0.0


def test_heavy_noise_fails_the_robustness_gate(demo: dict[str, Any]) -> None:
    heavy = GateThresholds(noise_scale=3.0, swap_rate=0.8)
    report = run_gates(
        demo["model"], None, demo["holdout"], demo["spec"], candidate_bytes=demo["bytes"], thresholds=heavy
    )
    gate = _gate(report, "noise_robustness")
    assert not gate.passed and gate.value == report.flip_rate and report.flip_rate > 0.10
    assert "change under noise" in gate.message


# --- agreement -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shuffled_label_model(demo: dict[str, Any]) -> OnnxModel:
    """Trained on the demo rows with the target shuffled: it learned nothing about visits."""
    train = demo["rows"].copy()
    train["docvis"] = np.random.default_rng(1).permutation(train["docvis"].to_numpy())
    # boosting on shuffled labels fits noise: its labels are not one constant class
    params = {"max_iter": 50}
    spec = demo["spec"].model_copy(update={"estimator": demo["spec"].estimator.model_copy(update={"params": params})})
    model, _ = _train(train, spec)
    return model


def test_agreement_fails_against_a_model_trained_on_shuffled_labels(
    demo: dict[str, Any], shuffled_label_model: OnnxModel
) -> None:
    score = agreement(shuffled_label_model, demo["model"], demo["holdout"])
    assert score < 0.70
    report = run_gates(
        shuffled_label_model, demo["model"], demo["holdout"], demo["spec"], candidate_bytes=demo["bytes"]
    )
    gate = _gate(report, "inference_agreement")
    assert not gate.passed and gate.value == pytest.approx(score)
    assert "agreement with the champion holdout" in gate.message


def test_agreement_on_live_instances(demo: dict[str, Any], shuffled_label_model: OnnxModel) -> None:
    rows = demo["holdout"].head(60)
    live = rows.to_dict("records")
    assert agreement(demo["model"], demo["model"], live) == 1.0
    assert agreement(shuffled_label_model, demo["model"], live) == agreement(shuffled_label_model, demo["model"], rows)
    assert agreement(demo["model"], demo["model"], []) == 1.0
    # a live request the champion cannot score: agreement is measured on the holdout only
    broken = [{k: v for k, v in row.items() if k != "age"} for row in live]
    report = run_gates(
        demo["model"],
        demo["model"],
        demo["holdout"],
        demo["spec"],
        candidate_bytes=demo["bytes"],
        live_instances=broken,
    )
    gate = _gate(report, "inference_agreement")
    assert gate.passed and report.agreement["live"] is None and "age" in report.agreement["live_error"]
    assert "not measured: live" in gate.message


def test_no_champion_skips_agreement_with_a_message(demo: dict[str, Any]) -> None:
    report = run_gates(demo["model"], None, demo["holdout"], demo["spec"], candidate_bytes=demo["bytes"])
    gate = _gate(report, "inference_agreement")
    assert gate.passed and gate.value is None and gate.message.startswith("no champion")


# --- explainability --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def leaky(demo: dict[str, Any], spec_dict_module: dict[str, Any]) -> dict[str, Any]:
    """A model given a near-copy of the target as a feature, ``leak``."""
    from conveyor.spec import parse_spec

    def with_leak(df: pd.DataFrame, seed: int) -> pd.DataFrame:
        df = df.copy()
        visited = df["docvis"].to_numpy() > 0
        noise = np.random.default_rng(seed).random(len(df)) < 0.1
        df["leak"] = np.where(noise, ~visited, visited).astype(int)
        return df

    leak = {"type": "boolean", "allow_sensitive": True}
    data = {**spec_dict_module, "features": {**spec_dict_module["features"], "leak": leak}}
    spec = parse_spec({**data, "sensitive": ["leak"]})
    train = with_leak(demo["rows"], 0)
    model, onnx_bytes = _train(train, spec)
    # specs reject identifiers as features; a spec built without validation stands in for an older one
    as_identifier = spec.model_copy(update={"sensitive": [], "identifiers": [*spec.identifiers, "leak"]})
    return {"spec": spec, "identifier_spec": as_identifier, "model": model, "bytes": onnx_bytes, "frame": train}


@pytest.fixture(scope="module")
def spec_dict_module() -> dict[str, Any]:
    import yaml

    from tests.conftest import DEMO_SPEC

    return yaml.safe_load(DEMO_SPEC.read_text())


def test_explainability_fails_when_a_sensitive_feature_dominates(leaky: dict[str, Any]) -> None:
    holdout = leaky["frame"].sample(1500, random_state=0)
    report = run_gates(leaky["model"], None, holdout, leaky["spec"], candidate_bytes=leaky["bytes"])
    gate = _gate(report, "explainability")
    assert not gate.passed and gate.value > 0.5
    assert gate.message.startswith("sensitive feature 'leak' carries")
    assert report.importance["top"][0] == "leak"
    as_id = run_gates(leaky["model"], None, holdout, leaky["identifier_spec"], candidate_bytes=leaky["bytes"])
    assert _gate(as_id, "explainability").message.startswith("identifier feature 'leak' carries")
    assert not _gate(as_id, "explainability").passed


def test_permutation_importance_through_onnx(leaky: dict[str, Any]) -> None:
    frame = leaky["frame"].sample(800, random_state=1)
    y = target_vector(frame, leaky["spec"])
    importance = permutation_importance(leaky["model"], frame, y, leaky["spec"], metric="roc_auc", seed=0)
    assert list(importance) == list(leaky["spec"].features)
    assert max(importance, key=lambda name: importance[name]) == "leak"
    again = permutation_importance(leaky["model"], frame, y, leaky["spec"], metric="roc_auc", seed=0)
    assert again == importance
    by_loss = permutation_importance(leaky["model"], frame, y, leaky["spec"], metric="log_loss", n_repeats=1)
    assert by_loss["leak"] > 0  # lower-is-better metrics are signed so that positive means important


def test_importance_shares_ignore_negative_and_nan() -> None:
    shares = importance_shares({"a": 0.3, "b": 0.1, "c": -0.2, "d": float("nan")})
    assert shares == pytest.approx({"a": 0.75, "b": 0.25, "c": 0.0, "d": 0.0})
    assert importance_shares({"a": 0.0}) == {"a": 0.0}


# --- latency and size ------------------------------------------------------------------------


def test_latency_reports_percentiles_and_size(demo: dict[str, Any]) -> None:
    timing = latency(
        demo["model"], demo["holdout"].head(30), model_bytes=demo["bytes"], trials=2, single_runs=20, batch_runs=5
    )
    assert 0 < timing["single"]["p50_ms"] <= timing["single"]["p99_ms"]
    assert 0 < timing["batch"]["p50_ms"] <= timing["batch"]["p99_ms"]
    assert timing["batch_rows"] == 100 and timing["single_runs"] == 40 and timing["clock"] == "thread_cpu"
    assert timing["champion"] is None and len(timing["single"]["trial_p99_ms"]) == 2
    assert timing["model_mb"] == pytest.approx(len(demo["bytes"]) / 1e6)
    with pytest.raises(DataError):
        latency(demo["model"], demo["holdout"].head(0))


def test_latency_and_size_gates_fail_over_their_limits(demo: dict[str, Any]) -> None:
    strict = GateThresholds(max_p99_ms_single=1e-6, max_p99_ms_batch=1e-6, max_model_mb=0.001)
    report = run_gates(
        demo["model"], None, demo["holdout"], demo["spec"], candidate_bytes=demo["bytes"], thresholds=strict
    )
    assert report.failed == ["latency_single", "latency_batch", "model_size"]
    assert "MB > 0.001 MB" in _gate(report, "model_size").message


# --- other tasks -----------------------------------------------------------------------------


def test_regression_model_runs_every_gate(demo: dict[str, Any], make_spec: Callable[..., ModelSpec]) -> None:
    spec = make_spec(task="regression", target={"column": "docvis"}, gates={"primary_metric": "mae"})
    model, onnx_bytes = _train(demo["rows"], spec)
    holdout = demo["holdout"]
    report = run_gates(model, model, holdout, spec, candidate_bytes=onnx_bytes, slice_columns=["female"])
    assert [g.name for g in report.gates] == GATE_NAMES
    assert set(report.slices["female"]["slices"]["1"]) == {"rows", "mae", "nmae"}
    assert set(report.slices["female"]["gaps"]) == {"nmae"}
    assert report.flip_rate is not None and 0.0 <= report.flip_rate <= 1.0
    assert report.agreement["holdout"] == 1.0
    assert report.importance["metric"] == "mae"
    json.dumps(report.to_dict(), allow_nan=False)


def test_multiclass_slices_use_accuracy(demo: dict[str, Any], make_spec: Callable[..., ModelSpec]) -> None:
    features = {"age": {"type": "number"}, "hhninc": {"type": "number"}, "female": {"type": "boolean"}}
    spec = make_spec(
        target={"column": "edlevel"},
        features=features,
        estimator={"type": "logistic_regression"},
        sensitive=["married"],
    )
    model, onnx_bytes = _train(demo["rows"], spec)
    report = run_gates(model, None, demo["holdout"], spec, candidate_bytes=onnx_bytes)
    assert set(report.slices["married"]["gaps"]) == {"accuracy"}
    assert report.flip_rate is not None
