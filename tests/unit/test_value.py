"""Business value: the spec's value section, value per 1,000 predictions, the value gate on the demo model."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from conveyor.errors import SpecError
from conveyor.evaluation import model_metrics
from conveyor.gates import assess_candidate
from conveyor.gates.common import predict_rows
from conveyor.gates.value import value_gate
from conveyor.scoring import OnnxModel
from conveyor.spec import parse_spec
from conveyor.spec_value import ValueSpec
from conveyor.tabular import target_vector
from conveyor.value import VALUE_METRIC, confusion_counts, value_per_1000

WORTH = {"true_positive": 50.0, "false_positive": -10.0, "false_negative": -40.0, "true_negative": 0.0}


def test_classification_value_counts_each_outcome_on_the_positive_class() -> None:
    y_true = [1, 1, 0, 0, 1, 0]
    y_pred = [1, 0, 1, 0, 1, 0]  # TP 2, FN 1, FP 1, TN 2
    assert confusion_counts(y_true, y_pred, 1) == {
        "true_positive": 2,
        "false_positive": 1,
        "false_negative": 1,
        "true_negative": 2,
    }
    expected = 1000 * (2 * 50 - 10 - 40 + 0) / 6
    assert value_per_1000("classification", y_true, y_pred, ValueSpec(**WORTH)) == pytest.approx(expected)


def test_positive_class_is_the_last_class_and_labels_may_be_strings() -> None:
    spec = ValueSpec(true_positive=1.0)
    assert value_per_1000("classification", ["no", "yes"], ["yes", "yes"], spec) == 500.0
    assert value_per_1000("classification", [0, 0], [0, 0], spec, classes=[0, 1]) == 0.0
    with pytest.raises(ValueError, match="binary"):
        value_per_1000("classification", [0, 1, 2], [0, 1, 2], spec)


def test_regression_value_is_the_cost_of_the_mean_absolute_error() -> None:
    spec = ValueSpec(cost_per_unit_error=2.5)
    assert value_per_1000("regression", [1.0, 2.0, 4.0], [2.0, 2.0, 1.0], spec) == pytest.approx(-1000 * 2.5 * 4 / 3)
    assert math.isnan(value_per_1000("regression", [], [], spec))
    with pytest.raises(ValueError, match="for regression"):
        value_per_1000("classification", [1], [1], spec)


def test_spec_value_section_is_checked_against_the_task(spec_dict: dict[str, Any]) -> None:
    spec = parse_spec({**spec_dict, "value": {**WORTH, "unit": "EUR"}, "gates": {"min_value_per_1000": 100}})
    assert spec.value is not None and spec.value.task == "classification" and spec.gates.min_value_per_1000 == 100
    with pytest.raises(SpecError, match="value: a classification model's value section"):
        parse_spec({**spec_dict, "value": {"cost_per_unit_error": 1.0}})
    with pytest.raises(SpecError, match="not both"):
        parse_spec({**spec_dict, "value": {"true_positive": 1.0, "cost_per_unit_error": 1.0}})
    with pytest.raises(SpecError, match="give the value of"):
        parse_spec({**spec_dict, "value": {"unit": "EUR"}})
    with pytest.raises(SpecError, match=r"gates\.min_value_per_1000: needs a value: section"):
        parse_spec({**spec_dict, "gates": {"min_value_per_1000": 1}})


def test_value_gate() -> None:
    assert value_gate({VALUE_METRIC: 5.0}, None) is None
    passed = value_gate({VALUE_METRIC: 5.0}, 5.0, "EUR")
    assert passed is not None and passed.passed and passed.message.endswith("5.00 EUR >= floor 5.00")
    failed = value_gate({VALUE_METRIC: 4.0}, 5.0)
    assert failed is not None and not failed.passed and failed.value == 4.0 and failed.threshold == 5.0
    missing = value_gate({}, 5.0)
    assert missing is not None and not missing.passed and missing.value is None


def test_holdout_value_of_the_demo_model_and_the_gate_on_it(trained_model: Any, spec_dict: dict[str, Any]) -> None:
    model = OnnxModel(trained_model.onnx)
    holdout = trained_model.result.holdout_df
    y = target_vector(holdout, trained_model.spec)
    labels = predict_rows(model, holdout).labels
    metrics = model_metrics(model, holdout, y, ValueSpec(**WORTH))
    assert metrics[VALUE_METRIC] == pytest.approx(value_per_1000("classification", y, labels, ValueSpec(**WORTH)))
    worth = metrics[VALUE_METRIC]
    assert np.isfinite(worth)
    for floor, passes in ((worth - 1, True), (worth + 1, False)):
        spec = parse_spec({**spec_dict, "value": WORTH, "gates": {"min_value_per_1000": floor}})
        assessment = assess_candidate(model, None, holdout, spec, candidate_bytes=trained_model.onnx, parity=None)
        (gate,) = [g for g in assessment.gates if g.name == "business_value"]
        assert gate.passed is passes and gate.value == pytest.approx(worth)
        assert assessment.to_dict()["candidate"][VALUE_METRIC] == pytest.approx(worth)
