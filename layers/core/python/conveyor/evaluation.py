"""Measure a candidate ONNX model against the champion on the same holdout, and gate it."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from conveyor.errors import ArtifactError, ConveyorError, DataError
from conveyor.scoring import OnnxModel, Prediction
from conveyor.spec import CLASSIFICATION_METRICS, HIGHER_IS_BETTER, REGRESSION_METRICS, ModelSpec
from conveyor.tabular import inputs_from_frame, target_vector, typed_frame

_EPSILON = 1e-12  # float noise allowed when comparing scores


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


@dataclass
class Gate:
    name: str
    value: float | None
    threshold: float | None
    passed: bool
    message: str


@dataclass
class Evaluation:
    """Candidate versus champion on one holdout; ``to_dict()`` is JSON-able (NaN -> None)."""

    metric: str
    higher_is_better: bool
    rows: int
    candidate: dict[str, float]
    champion: dict[str, float] | None
    gates: list[Gate]
    passed: bool
    reason: str
    champion_error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return _json_safe(asdict(self))


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def model_metrics(model: OnnxModel, df: pd.DataFrame, y_true: np.ndarray) -> dict[str, float]:
    """Score an ONNX model on a frame, building its inputs from the feature types it was exported with.

    Raises
    ------
    DataError, ArtifactError, ValueError
        If the frame lacks the model's inputs or the labels do not fit the model's classes.
    """
    inputs = inputs_from_frame(typed_frame(df, model.feature_types), model.feature_types)
    prediction = model.predict(inputs)
    return metrics_from_arrays(model.task, y_true, prediction.labels, prediction.probabilities, model.classes)


def _compare(
    metric: str, higher: bool, candidate: float, champion: float, allowed: float, required: float | None = None
) -> Gate:
    """The primary metric against the champion's on the same holdout.

    Without ``required`` the candidate may be worse by at most ``allowed`` (max_degradation); with
    ``required`` (min_improvement) it must be better by at least that much. The recorded threshold
    is the score the candidate had to reach: champion -/+ allowed, or champion +/- required.
    """
    worse_by = (champion - candidate) if higher else (candidate - champion)
    name = "primary_metric_vs_champion"
    if required is not None:
        threshold = champion + required if higher else champion - required
    else:
        threshold = champion - allowed if higher else champion + allowed
    if math.isnan(candidate):
        return Gate(name, candidate, threshold, False, f"{metric} of the candidate is undefined on this holdout")
    if math.isnan(champion):
        return Gate(name, candidate, None, True, f"{metric} of the champion is undefined; candidate {candidate:.3f}")
    versus = f"{metric} {candidate:.3f} vs champion {champion:.3f}"
    if required is not None:
        better_by = (candidate - champion) if higher else (champion - candidate)
        passed = better_by >= required - _EPSILON
        sign = ">=" if passed else "<"
        what = f"better by {better_by:.3f}" if better_by >= 0 else f"worse by {worse_by:.3f}"
        return Gate(name, candidate, threshold, passed, f"{versus}: {what} {sign} required improvement {required:.3f}")
    passed = worse_by <= allowed + _EPSILON
    if worse_by <= 0:
        message = f"{versus}: better by {-worse_by:.3f}"
    else:
        sign = "<=" if passed else ">"
        message = f"{versus}: worse by {worse_by:.3f} {sign} allowed {allowed:.3f}"
    return Gate(name, candidate, threshold, passed, message)


def evaluate_candidate(
    candidate: OnnxModel, champion: OnnxModel | None, holdout_df: pd.DataFrame, spec: ModelSpec
) -> Evaluation:
    """Score both models on the same holdout and apply the gates of ``spec``.

    Raises
    ------
    DataError
        If the candidate cannot score the holdout (missing target or feature columns).
    """
    metric = spec.primary_metric
    higher = metric in HIGHER_IS_BETTER
    y_true = target_vector(holdout_df, spec)
    try:
        candidate_metrics = model_metrics(candidate, holdout_df, y_true)
    except (ArtifactError, ValueError) as exc:
        raise DataError(f"candidate cannot score the holdout: {exc}") from None
    score = candidate_metrics[metric]
    champion_metrics: dict[str, float] | None = None
    champion_error: str | None = None
    if champion is not None:
        try:
            champion_metrics = model_metrics(champion, holdout_df, y_true)
        except (ConveyorError, ValueError, KeyError) as exc:
            champion_error = str(exc)[:300]
    gates: list[Gate] = []
    if champion_metrics is not None and metric in champion_metrics:
        gate = _compare(
            metric,
            higher,
            score,
            champion_metrics[metric],
            spec.gates.max_degradation,
            spec.gates.min_improvement,
        )
        reason = gate.message
    else:
        if champion is None:
            message = f"no champion: candidate {metric} {score:.3f} is the first model"
        else:
            message = (
                f"champion cannot score this holdout ({champion_error}); candidate {metric} {score:.3f} not compared"
            )
        passed = not math.isnan(score)
        if not passed:
            message = f"{metric} of the candidate is undefined on this holdout"
        gate = Gate("primary_metric_vs_champion", score, None, passed, message)
        reason = message
    gates.append(gate)
    passed = all(g.passed for g in gates)
    return Evaluation(
        metric=metric,
        higher_is_better=higher,
        rows=len(holdout_df),
        candidate=candidate_metrics,
        champion=champion_metrics,
        gates=gates,
        passed=passed,
        reason=reason,
        champion_error=champion_error,
    )
