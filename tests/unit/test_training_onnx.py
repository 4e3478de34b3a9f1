from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import StandardScaler

from conveyor.errors import ArtifactError, TrainingError
from conveyor.onnx_export import export_onnx, parity
from conveyor.scoring import OnnxModel
from conveyor.spec import ModelSpec, spec_hash
from conveyor.tabular import feature_frame, onnx_inputs
from conveyor.training import build_pipeline, split_holdout, train_model

ESTIMATORS = {
    "logistic_regression": {},
    "hist_gradient_boosting": {"max_iter": 50, "max_leaf_nodes": 15},
    "random_forest": {"n_estimators": 30, "max_depth": 8},
}


@pytest.fixture(scope="module")
def trained(_sample: pd.DataFrame, make_spec: Callable[..., ModelSpec]) -> dict:
    """One trained model and its ONNX bytes per estimator, on the 2,000-row sample."""
    out = {}
    for estimator, params in ESTIMATORS.items():
        spec = make_spec(estimator={"type": estimator, "params": params})
        result = train_model(_sample, spec)
        onnx_bytes = export_onnx(result.pipeline, spec, classes=result.classes, spec_hash=spec_hash(spec))
        out[estimator] = (spec, result, onnx_bytes)
    return out


def test_scoring_imports_no_training_libraries() -> None:
    code = (
        "import sys, json, conveyor.scoring;"
        "print(json.dumps(sorted(m for m in ('pandas','sklearn','scipy','skl2onnx','pydantic','onnx') if m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_pipeline_scales_only_linear_models(make_spec: Callable[..., ModelSpec]) -> None:
    def has_scaler(estimator: str) -> bool:
        pipeline = build_pipeline(make_spec(estimator={"type": estimator}))
        numeric = pipeline.named_steps["prepare"].transformers[0][1]
        return any(isinstance(step, StandardScaler) for _, step in numeric.steps)

    assert has_scaler("logistic_regression")
    assert not has_scaler("hist_gradient_boosting")
    model = build_pipeline(make_spec(estimator={"type": "random_forest", "params": {"n_estimators": 7}}))
    assert model.named_steps["model"].get_params()["n_estimators"] == 7
    assert model.named_steps["model"].get_params()["random_state"] == 42


def test_split_groups_patients(sample_df: pd.DataFrame, spec: ModelSpec) -> None:
    train, holdout = split_holdout(sample_df, spec)
    assert len(train) + len(holdout) == len(sample_df)
    assert not set(train["id"]) & set(holdout["id"])
    assert 0.1 < len(holdout) / len(sample_df) < 0.3
    again = split_holdout(sample_df, spec)[1]
    assert holdout.index.equals(again.index)


def test_split_without_identifiers_hashes_rows(sample_df: pd.DataFrame, make_spec: Callable[..., ModelSpec]) -> None:
    spec = make_spec(identifiers=["no_such_column"], time_column=None)
    train, holdout = split_holdout(sample_df, spec)
    assert 0.17 < len(holdout) / len(sample_df) < 0.23
    assert set(train["id"]) & set(holdout["id"])  # patients now straddle the split
    rate = (sample_df["docvis"] > 0).mean()
    assert abs((holdout["docvis"] > 0).mean() - rate) < 0.05
    other_seed = make_spec(identifiers=[], time_column=None, split={"holdout_fraction": 0.2, "seed": 1})
    assert not split_holdout(sample_df, other_seed)[1].index.equals(holdout.index)


def test_split_is_stable_as_data_grows(sample_df: pd.DataFrame, spec: ModelSpec) -> None:
    """A later, larger training set never holds out a patient an earlier model trained on."""
    early = sample_df.iloc[: len(sample_df) // 2]
    early_train, _ = split_holdout(early, spec)
    _, later_holdout = split_holdout(sample_df, spec)
    assert not set(early_train["id"]) & set(later_holdout["id"])
    _, early_holdout = split_holdout(early, spec)
    assert set(early_holdout["id"]) <= set(later_holdout["id"])


def test_training_fails_fast_with_named_problem(
    sample_df: pd.DataFrame, spec: ModelSpec, make_spec: Callable[..., ModelSpec]
) -> None:
    with pytest.raises(TrainingError, match="missing from data: hhninc"):
        train_model(sample_df.drop(columns=["hhninc"]), spec)
    with pytest.raises(TrainingError, match="single class"):
        train_model(sample_df.assign(docvis=0), spec)
    unsupported = make_spec(estimator={"type": "logistic_regression"}).model_copy(update={"task": "regression"})
    with pytest.raises(TrainingError, match="not supported for regression"):
        train_model(sample_df, unsupported)
    with pytest.raises(TrainingError, match=r"estimator\.params"):
        train_model(sample_df, make_spec(estimator={"type": "random_forest", "params": {"n_trees": 3}}))


@pytest.mark.parametrize("estimator", list(ESTIMATORS))
def test_onnx_parity_with_sklearn(trained: dict, full_df: pd.DataFrame, estimator: str) -> None:
    spec, result, onnx_bytes = trained[estimator]
    rows = full_df.sample(n=5000, random_state=1)  # includes rows never seen in training
    report = parity(result.pipeline, onnx_bytes, rows, spec)
    assert report.rows == 5000
    assert report.label_agreement == 1.0
    assert report.max_abs_diff <= spec.gates.parity_tolerance, report
    assert 0.55 < result.metrics["roc_auc"] < 0.8
    assert result.n_train + result.n_holdout == 2000


def test_parity_with_missing_values(
    sample_df: pd.DataFrame, make_spec: Callable[..., ModelSpec], spec_dict: dict
) -> None:
    features = {name: {**f, "nullable": True} for name, f in spec_dict["features"].items()}
    frame = sample_df.reset_index(drop=True)
    frame.loc[::7, "hhninc"] = np.nan
    frame.loc[::11, "edlevel"] = np.nan
    frame.loc[::13, "female"] = np.nan
    for estimator, params in ESTIMATORS.items():
        spec = make_spec(features=features, estimator={"type": estimator, "params": params})
        result = train_model(frame, spec)
        onnx_bytes = export_onnx(result.pipeline, spec, classes=result.classes, spec_hash="h")
        report = parity(result.pipeline, onnx_bytes, frame, spec)
        assert report.max_abs_diff <= 1e-5 and report.label_agreement == 1.0, (estimator, report)


def test_regression_export_and_parity(sample_df: pd.DataFrame, make_spec: Callable[..., ModelSpec]) -> None:
    params = {
        "linear_regression": {},
        "hist_gradient_boosting": {"max_iter": 30},
        "random_forest": {"n_estimators": 20},
    }
    for estimator in ("linear_regression", "hist_gradient_boosting", "random_forest"):
        spec = make_spec(
            task="regression",
            target={"column": "docvis"},
            estimator={"type": estimator, "params": params[estimator]},
            gates={"primary_metric": "mae"},
        )
        result = train_model(sample_df, spec)
        assert set(result.metrics) == {"rmse", "mae", "r2"} and result.classes is None
        onnx_bytes = export_onnx(result.pipeline, spec, classes=None, spec_hash="h")
        model = OnnxModel(onnx_bytes)
        assert model.task == "regression" and model.classes is None
        prediction = model.predict(onnx_inputs(feature_frame(sample_df, spec), spec))
        assert prediction.probabilities is None and prediction.values.shape == (2000,)
        # float32 arithmetic on values up to ~100 visits: relative parity
        expected = result.pipeline.predict(feature_frame(sample_df, spec))
        np.testing.assert_allclose(prediction.values, expected, rtol=1e-5, atol=1e-4)


def test_onnx_metadata_and_inputs(trained: dict) -> None:
    spec, result, onnx_bytes = trained["hist_gradient_boosting"]
    model = OnnxModel(onnx_bytes)
    assert model.task == "classification"
    assert model.classes == [0, 1] == result.classes
    assert model.spec_hash == spec_hash(spec)
    assert model.target == "docvis"
    assert model.feature_types == spec.feature_types()
    assert model.features == {n: ("category" if n == "edlevel" else "number") for n in spec.features}


def test_single_row_matches_batch_and_serving_format(trained: dict, sample_df: pd.DataFrame) -> None:
    from conveyor.serving import columns_from_instances

    spec, _, onnx_bytes = trained["hist_gradient_boosting"]
    model = OnnxModel(onnx_bytes)
    rows = sample_df.head(25)
    batch = model.predict(onnx_inputs(feature_frame(rows, spec), spec))
    # what a JSON client sends: ints stay ints (edlevel 3, not 3.0)
    instances = json.loads(rows[list(spec.features)].to_json(orient="records"))
    assert instances[0]["edlevel"] in (1, 2, 3, 4)
    assert batch.probabilities is not None
    served = model.predict(columns_from_instances(instances, model.features, 1000))
    np.testing.assert_array_equal(served.probabilities, batch.probabilities)
    one = model.predict(columns_from_instances(instances[:1], model.features, 1000))
    assert one.labels.shape == (1,) and one.probabilities is not None and one.probabilities.shape == (1, 2)
    np.testing.assert_allclose(one.probabilities[0], batch.probabilities[0], atol=1e-7)
    np.testing.assert_allclose(batch.probabilities.sum(axis=1), 1.0, atol=1e-6)


def test_training_is_deterministic(_sample: pd.DataFrame, trained: dict) -> None:
    for estimator in ("hist_gradient_boosting", "random_forest"):
        spec, result, onnx_bytes = trained[estimator]
        again = train_model(_sample, spec)
        frame = feature_frame(_sample, spec)
        np.testing.assert_array_equal(result.pipeline.predict_proba(frame), again.pipeline.predict_proba(frame))
        assert result.metrics == again.metrics
        assert export_onnx(again.pipeline, spec, classes=again.classes, spec_hash=spec_hash(spec)) == onnx_bytes


def test_bad_model_bytes_and_missing_inputs(trained: dict) -> None:
    with pytest.raises(ArtifactError, match="cannot load ONNX model"):
        OnnxModel(b"not onnx")
    model = OnnxModel(trained["logistic_regression"][2])
    with pytest.raises(ArtifactError, match="'age'"):
        model.predict({"hhninc": np.zeros((1, 1), dtype=np.float32)})


def test_auto_split_prefers_groups_then_time(sample_df: pd.DataFrame, make_spec: Callable[..., ModelSpec]) -> None:
    from conveyor.training import split_strategy

    assert split_strategy(sample_df, make_spec()) == "grouped"
    no_ids = make_spec(identifiers=[], time_column="year")
    assert split_strategy(sample_df.drop(columns=["id"]), no_ids) == "temporal"
    assert split_strategy(sample_df, make_spec(identifiers=[], time_column=None)) == "random"


def test_temporal_split_trains_on_the_past_and_keeps_entities_on_one_side(
    sample_df: pd.DataFrame, make_spec: Callable[..., ModelSpec]
) -> None:
    spec = make_spec(time_column="year", split={"strategy": "temporal", "holdout_fraction": 0.2, "seed": 42})
    train, holdout = split_holdout(sample_df, spec)
    assert train["year"].max() < holdout["year"].min()
    assert not set(train["id"]) & set(holdout["id"])
    assert holdout["year"].nunique() >= 1 and len(train) > 0


def test_class_weight_reaches_the_estimator_and_is_refused_for_regression(
    sample_df: pd.DataFrame, make_spec: Callable[..., ModelSpec]
) -> None:
    from conveyor.training import build_pipeline

    spec = make_spec(estimator={"type": "logistic_regression", "class_weight": "balanced"})
    assert build_pipeline(spec).named_steps["model"].class_weight == "balanced"
    regression = make_spec(
        task="regression",
        target={"column": "docvis"},
        estimator={"type": "linear_regression", "class_weight": "balanced"},
        gates={"primary_metric": "rmse"},
    )
    with pytest.raises(TrainingError, match="class_weight"):
        build_pipeline(regression)


@pytest.mark.parametrize(
    ("estimator", "params"), [("hist_gradient_boosting", {"max_iter": 5}), ("random_forest", {"n_estimators": 5})]
)
def test_thresholds_between_adjacent_float32_values_keep_parity(
    estimator: str, params: dict, sample_df: pd.DataFrame, make_spec: Callable[..., ModelSpec]
) -> None:
    """A split fitted between two adjacent float32 values must not send those rows the other way in ONNX
    (seen at 1,000,000 rows before the fix: one row in 200,000 off by 0.12 in probability)."""
    # The next float32 after `low`: the fitted split lies between the two, and its float32 rounding
    # lands on one of them. (Large values: scikit-learn's own trees never split values closer than 1e-7.)
    low = np.float32(30000.123)
    high = np.nextafter(low, np.float32(np.inf))
    rng = np.random.default_rng(0)
    df = sample_df.copy()
    higher = rng.random(len(df)) < 0.5
    df["hhninc"] = np.where(higher, float(high), float(low))
    df["docvis"] = np.where(higher, 3, 0)  # a doctor visit exactly when income is the higher value
    spec = make_spec(estimator={"type": estimator, "params": params})
    result = train_model(df, spec)
    onnx_bytes = export_onnx(result.pipeline, spec, classes=result.classes, spec_hash=spec_hash(spec))
    report = parity(result.pipeline, onnx_bytes, result.holdout_df, spec)
    assert report.label_agreement == 1.0
    assert report.max_abs_diff < 1e-5
    assert result.metrics["accuracy"] == 1.0  # the alignment kept scikit-learn's own decisions right
