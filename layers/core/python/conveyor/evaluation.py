"""Metrics of a model on labelled rows: every metric of a task, one primary metric, an ONNX model on a frame.

The gates that judge these numbers live in :mod:`conveyor.gates` (the primary-metric gate in
:mod:`conveyor.gates.primary`); training records the same metrics for its holdout.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from conveyor.scoring import OnnxModel, Prediction
from conveyor.spec import CLASSIFICATION_METRICS, REGRESSION_METRICS
from conveyor.spec_value import ValueSpec
from conveyor.tabular import inputs_from_frame, typed_frame
from conveyor.value import VALUE_METRIC, value_per_1000


def _score(
    metric: str, y_true: np.ndarray, labels: np.ndarray, probabilities: np.ndarray | None, classes: Any
) -> float:
    if metric == "accuracy":
        return float(skm.accuracy_score(y_true, labels))
    if metric == "rmse":
        return float(math.sqrt(skm.mean_squared_error(y_true, labels)))
    if metric == "mae":
        return float(skm.mean_absolute_error(y_true, labels))
    if metric == "r2":
        return float(skm.r2_score(y_true, labels))
    if probabilities is None or classes is None:
        raise ValueError(f"{metric} needs class probabilities")
    if metric == "log_loss":
        # onnxruntime's float32 rows sum to 1 only within ~1e-7: renormalize in float64
        rows = np.asarray(probabilities, dtype=np.float64)
        rows = rows / rows.sum(axis=1, keepdims=True)
        return float(skm.log_loss(y_true, rows, labels=list(classes)))
    if metric == "roc_auc":
        if len(np.unique(y_true)) < 2:
            return math.nan  # undefined with one class present
        if len(classes) == 2:
            positive = np.asarray(y_true) == classes[1]
            return float(skm.roc_auc_score(positive, probabilities[:, 1]))
        return float(skm.roc_auc_score(y_true, probabilities, multi_class="ovr", labels=list(classes)))
    raise ValueError(f"unknown metric {metric!r}")


def metrics_from_arrays(
    task: str,
    y_true: np.ndarray,
    labels: np.ndarray,
    probabilities: np.ndarray | None,
    classes: list[Any] | None,
) -> dict[str, float]:
    """All metrics of a task (classification: roc_auc, accuracy, log_loss; regression: rmse, mae, r2)."""
    names = CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
    return {name: _score(name, y_true, labels, probabilities, classes) for name in sorted(names)}


def primary_score(metric: str, y_true: np.ndarray, prediction: Prediction, classes: list[Any] | None = None) -> float:
    """One metric of a Prediction; ``classes`` (column order of probabilities) is needed for roc_auc/log_loss."""
    if classes is None and prediction.probabilities is not None:
        classes = sorted(np.unique(y_true).tolist())
    return _score(metric, y_true, prediction.labels, prediction.probabilities, classes)


def model_metrics(
    model: OnnxModel, df: pd.DataFrame, y_true: np.ndarray, value: ValueSpec | None = None
) -> dict[str, float]:
    """Score an ONNX model on a frame, building its inputs from the feature types it was exported with.

    With the spec's ``value`` section, ``value_per_1000`` (:func:`conveyor.value.value_per_1000`) is
    among the metrics (left out for a classifier of more than two classes).

    Raises
    ------
    DataError, ArtifactError, ValueError
        If the frame lacks the model's inputs or the labels do not fit the model's classes.
    """
    inputs = inputs_from_frame(typed_frame(df, model.feature_types), model.feature_types)
    prediction = model.predict(inputs)
    metrics = metrics_from_arrays(model.task, y_true, prediction.labels, prediction.probabilities, model.classes)
    if value is not None and not (model.task == "classification" and model.classes and len(model.classes) > 2):
        metrics[VALUE_METRIC] = value_per_1000(model.task, y_true, prediction.labels, value, model.classes)
    return metrics
