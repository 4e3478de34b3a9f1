from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from conveyor.errors import ConveyorError, SpecError
from conveyor.spec import ModelSpec, load_spec, parse_spec, spec_hash


def _load(data: dict[str, Any]) -> ModelSpec:
    return load_spec(yaml.safe_dump(data))


def _error(data: dict[str, Any]) -> SpecError:
    with pytest.raises(SpecError) as caught:
        _load(data)
    return caught.value


def test_demo_spec_loads_from_path_text_and_bytes(spec_path: Path) -> None:
    from_path = load_spec(spec_path)
    assert from_path.name == "doctor-visits"
    assert list(from_path.features) == [
        "age",
        "hhninc",
        "educ",
        "female",
        "married",
        "kids",
        "outwork",
        "self",
        "edlevel",
    ]
    assert from_path.target.positive_when is not None and from_path.target.positive_when.op == "gt"
    assert from_path.primary_metric == "roc_auc"
    assert load_spec(spec_path.read_text()) == from_path
    assert load_spec(spec_path.read_bytes()) == from_path


def test_bad_feature_type_names_the_key_path_and_choices(spec_dict: dict[str, Any]) -> None:
    data = spec_dict
    data["features"]["age"]["type"] = "numeric"
    error = _error(data)
    assert "features.age.type: must be one of number, integer, category, boolean" in error.message
    assert isinstance(error, ConveyorError)
    assert error.details["errors"][0]["path"] == "features.age.type"


def test_unknown_keys_are_named(spec_dict: dict[str, Any]) -> None:
    data = spec_dict
    data["estimatr"] = {"type": "random_forest"}
    data["split"]["sed"] = 1
    message = _error(data).message
    assert "estimatr: unknown key" in message
    assert "split.sed: unknown key" in message


def test_missing_required_key_is_named(spec_dict: dict[str, Any]) -> None:
    data = spec_dict
    del data["target"]
    assert "target: required" in _error(data).message


@pytest.mark.parametrize("name", ["Doctor", "a_b", "", "x" * 64, "dash space"])
def test_invalid_names_are_rejected(name: str, spec_dict: dict[str, Any]) -> None:
    data = spec_dict
    data["name"] = name
    assert _error(data).message.startswith("name:")


def test_target_among_features_is_rejected(spec_dict: dict[str, Any]) -> None:
    data = spec_dict
    data["features"]["docvis"] = {"type": "number"}
    assert _error(data).message.startswith("target.column:")


@pytest.mark.parametrize(
    ("task", "estimator", "metric"),
    [("classification", "linear_regression", None), ("regression", "logistic_regression", None)],
)
def test_estimator_must_fit_the_task(task: str, estimator: str, metric: str | None, spec_dict: dict[str, Any]) -> None:
    data = spec_dict
    data.update(task=task, estimator={"type": estimator})
    data["target"].pop("positive_when")
    data["gates"].pop("primary_metric")
    assert _error(data).message.startswith(f"estimator.type: {estimator} cannot be used for {task}")


def test_primary_metric_must_fit_the_task(spec_dict: dict[str, Any]) -> None:
    data = spec_dict
    data["gates"]["primary_metric"] = "rmse"
    assert _error(data).message.startswith("gates.primary_metric: rmse is not a classification metric")


def test_default_metric_follows_task_and_direction(spec_dict: dict[str, Any]) -> None:
    data = spec_dict
    data["gates"].pop("primary_metric")
    assert _load(data).primary_metric == "roc_auc"
    assert _load(data).metric_higher_is_better() is True
    data.update(task="regression", estimator={"type": "linear_regression"})
    data["target"].pop("positive_when")
    regression = _load(data)
    assert regression.primary_metric == "rmse"
    assert regression.metric_higher_is_better() is False


@pytest.mark.parametrize("fraction", [0.0, 0.95, -0.1])
def test_holdout_fraction_bounds(fraction: float, spec_dict: dict[str, Any]) -> None:
    data = spec_dict
    data["split"]["holdout_fraction"] = fraction
    assert _error(data).message.startswith("split.holdout_fraction:")


def test_defaults_are_filled() -> None:
    spec = parse_spec(
        {
            "name": "m",
            "task": "classification",
            "target": {"column": "y"},
            "features": {"x": {"type": "number"}},
            "estimator": {"type": "random_forest"},
        }
    )
    assert spec.split.holdout_fraction == 0.2 and spec.split.seed == 42
    assert spec.gates.max_degradation == 0.0 and spec.gates.parity_tolerance == 1e-5
    assert spec.deployment.strategy == "all_at_once" and spec.deployment.approval == "auto"
    assert spec.identifiers == [] and spec.time_column is None


def test_invalid_yaml_and_non_mapping_raise_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec("name: [unclosed")
    with pytest.raises(SpecError, match="mapping"):
        load_spec("- a\n- b\n")
    with pytest.raises(SpecError, match="cannot read"):
        load_spec(tmp_path / "absent.yaml")


def test_spec_hash_is_canonical_and_sensitive(spec_dict: dict[str, Any]) -> None:
    data = spec_dict
    reordered = dict(reversed(list(data.items())))
    assert spec_hash(_load(data)) == spec_hash(_load(reordered))
    assert len(spec_hash(_load(data))) == 64
    before = spec_hash(_load(data))
    data["split"]["seed"] = 43
    assert spec_hash(_load(data)) != before


def test_range_must_be_ordered(spec_dict: dict[str, Any]) -> None:
    data = spec_dict
    data["features"]["age"]["range"] = [64, 25]
    assert "features.age" in _error(data).message


def test_new_sections_have_defaults(spec_dict: dict[str, Any]) -> None:
    for key in ("validation", "drift", "retrain"):
        spec_dict.pop(key, None)
    spec = _load(spec_dict)
    assert spec.validation.max_file_mb == 1024 and spec.validation.min_rows_ratio == 0.2
    assert spec.validation.max_duplicate_share == 0.05 and spec.validation.leakage_auc == 0.98
    assert spec.drift.psi_threshold == 0.2 and spec.drift.domain_classifier.max_rows == 20000
    assert spec.drift.max_drifted_share == 0.0
    assert spec.retrain.on_drift is True and spec.retrain.min_new_rows == 1000 and spec.retrain.schedule is None
    assert spec.features["age"].null_share_limit == 0.0 and spec.features["age"].sentinels == []


@pytest.mark.parametrize(
    ("section", "key", "value", "path"),
    [
        ("validation", "max_dup_share", 0.1, "validation.max_dup_share: unknown key"),
        ("validation", "leakage_auc", 0.3, "validation.leakage_auc:"),
        ("drift", "psi", 0.1, "drift.psi: unknown key"),
        ("retrain", "schedule", "weekly", "retrain.schedule:"),
    ],
)
def test_bad_keys_in_new_sections_are_named(
    section: str, key: str, value: Any, path: str, spec_dict: dict[str, Any]
) -> None:
    spec_dict.setdefault(section, {})[key] = value
    assert path in _error(spec_dict).message


def test_drift_domain_classifier_keys_are_checked(spec_dict: dict[str, Any]) -> None:
    spec_dict["drift"] = {"domain_classifier": {"enabled": True, "auc": 0.7}}
    assert "drift.domain_classifier.auc: unknown key" in _error(spec_dict).message


def test_feature_rules_load_and_bad_ones_are_named(spec_dict: dict[str, Any]) -> None:
    spec_dict["features"]["edlevel"] = {"type": "category", "allowed": [1, 2, 3, 4], "mapping": {9: 4, "x": "1"}}
    spec_dict["features"]["hhninc"] = {"type": "number", "nullable": True, "max_null_share": 0.1, "sentinels": [-1]}
    spec = _load(spec_dict)
    assert spec.features["edlevel"].category_mapping() == {"9": "4", "x": "1"}
    assert spec.features["edlevel"].allowed_categories() == {"1", "2", "3", "4"}
    assert spec.features["hhninc"].null_share_limit == 0.1
    spec_dict["features"]["age"]["mapping"] = {1: 2}
    assert "features.age.mapping: only category features" in _error(spec_dict).message
    del spec_dict["features"]["age"]["mapping"]
    spec_dict["features"]["age"]["max_null_share"] = 0.5
    assert "features.age.max_null_share: set nullable: true" in _error(spec_dict).message
    spec_dict["features"]["age"] = {"type": "number", "sentnels": [-1]}
    assert "features.age.sentnels: unknown key" in _error(spec_dict).message


def test_datetime_is_a_feature_type(spec_dict: dict[str, Any]) -> None:
    spec_dict["features"]["visit_date"] = {"type": "datetime", "nullable": True}
    assert _load(spec_dict).features["visit_date"].type == "datetime"


def test_sensitive_feature_needs_allow_sensitive(spec_dict: dict[str, Any]) -> None:
    spec_dict["sensitive"] = ["female"]
    message = _error(spec_dict).message
    assert message.startswith("features.female: 'female' is listed in sensitive; set allow_sensitive: true")
    spec_dict["features"]["female"]["allow_sensitive"] = True
    assert _load(spec_dict).features["female"].allow_sensitive is True
    del spec_dict["features"]["female"]
    assert "female" not in _load(spec_dict).features


def test_identifier_or_deprecated_column_as_feature_is_refused(spec_dict: dict[str, Any]) -> None:
    spec_dict["features"]["id"] = {"type": "integer"}
    assert _error(spec_dict).message.startswith("features.id: 'id' is an identifier")
    del spec_dict["features"]["id"]
    spec_dict["deprecated"] = ["age"]
    assert _error(spec_dict).message.startswith("features.age: 'age' is deprecated")


def test_known_columns_cover_every_role(spec: ModelSpec) -> None:
    known = spec.known_columns()
    assert {"age", "docvis", "id", "Unnamed: 0", "year", "hospvis", "edlevel4"} <= known


def test_min_improvement_and_max_degradation_are_exclusive(spec_dict: dict[str, Any]) -> None:
    spec_dict["gates"] = {"primary_metric": "roc_auc", "min_improvement": 0.01}
    assert parse_spec(spec_dict).gates.min_improvement == 0.01
    spec_dict["gates"]["max_degradation"] = 0.005
    error = _error(spec_dict)
    assert error.message.startswith("gates.min_improvement: set either min_improvement")
    spec_dict["gates"] = {"min_improvement": -0.1}
    assert _error(spec_dict).message.startswith("gates.min_improvement:")


def test_parity_tolerance_defaults_by_task(spec_dict: dict[str, Any]) -> None:
    assert parse_spec(spec_dict).parity_tolerance == 1e-5
    regression = {**spec_dict, "task": "regression", "target": {"column": "docvis"}, "gates": {"primary_metric": "mae"}}
    spec = parse_spec(regression)
    assert spec.parity_tolerance == 1e-4 and spec.gates.parity_rtol == 1e-5
    regression["gates"] = {"primary_metric": "mae", "parity_tolerance": 1e-3, "parity_rtol": 0.0}
    assert parse_spec(regression).parity_tolerance == 1e-3


def test_slices_are_known_columns_and_never_the_target(spec_dict: dict[str, Any]) -> None:
    spec_dict["slices"] = ["year", "region"]
    spec = parse_spec(spec_dict)
    assert spec.slices == ["year", "region"] and "region" in spec.known_columns()
    spec_dict["slices"] = ["docvis"]
    assert _error(spec_dict).message == "slices: the target 'docvis' cannot be a slice column"


def test_monitoring_defaults_and_actions(spec_path: Path) -> None:
    from conveyor.spec import SIGNALS, rate_seconds

    base = yaml.safe_load(spec_path.read_text())
    spec = parse_spec(base)
    assert spec.monitoring.schedule_seconds() == 3600
    assert spec.monitoring.window() == 3600
    assert all(spec.monitoring.action(signal) == "notify" for signal in SIGNALS)
    base["monitoring"] = {"schedule": "rate(5 minutes)", "on_alarm": {"drift": "retrain", "latency": "rollback"}}
    spec = parse_spec(base)
    assert spec.monitoring.window() == 300
    assert spec.monitoring.action("drift") == "retrain"
    assert spec.monitoring.action("latency") == "rollback"
    assert spec.monitoring.action("errors") == "notify"
    assert rate_seconds("rate(2 days)") == 172800
    base["monitoring"] = {"on_alarm": {"drift": "explode"}}
    with pytest.raises(SpecError, match=r"monitoring\.on_alarm"):
        parse_spec(base)
    base["monitoring"] = {"evaluation_periods": 2, "datapoints_to_alarm": 3}
    with pytest.raises(SpecError, match="datapoints_to_alarm"):
        parse_spec(base)
