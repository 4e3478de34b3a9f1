"""The slice gate: one metric per slice of a sensitive or slice column, and the largest gap."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from conveyor.gates.common import Gate, GateThresholds, is_binary, predict_rows, same_labels
from conveyor.scoring import OnnxModel, Prediction
from conveyor.tabular import MISSING_CATEGORY, category_strings

MISSING_SLICE = "(missing)"
MAX_SLICE_VALUES = 10  # a numeric slice column with more distinct values is cut into quantile bins
SLICE_BINS = 4


def _slice_keys(column: pd.Series) -> pd.Series:
    """Slice label per row: the value as text, or a quantile bin for a many-valued numeric column."""
    numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
    if numeric and column.nunique(dropna=True) > MAX_SLICE_VALUES:
        binned = pd.qcut(column, q=SLICE_BINS, duplicates="drop")
        keys = binned.astype("string").fillna(MISSING_SLICE)
        return pd.Series(keys.to_numpy(dtype=object), index=column.index)
    keys = category_strings(column)
    return keys.where(keys != MISSING_CATEGORY, MISSING_SLICE)


def _rate(mask: np.ndarray, within: np.ndarray) -> float | None:
    total = int(within.sum())
    return float((mask & within).sum() / total) if total else None


def _slice_row(model: OnnxModel, y_true: np.ndarray, prediction: Prediction, scale: float) -> dict[str, Any]:
    rows = len(y_true)
    if is_binary(model):
        assert model.classes is not None and prediction.probabilities is not None
        positive_class = str(model.classes[1])
        actual = np.asarray(y_true).astype(str) == positive_class
        predicted = np.asarray(prediction.labels).astype(str) == positive_class
        auc = None
        if actual.any() and not actual.all():
            auc = float(skm.roc_auc_score(actual, prediction.probabilities[:, 1]))
        return {
            "rows": rows,
            "positive_rate": float(predicted.mean()),
            "base_rate": float(actual.mean()),
            "tpr": _rate(predicted, actual),
            "fpr": _rate(predicted, ~actual),
            "auc": auc,
        }
    if model.task == "classification":
        return {"rows": rows, "accuracy": float(same_labels(y_true, prediction.labels).mean())}
    errors = np.abs(np.asarray(y_true, dtype=np.float64) - prediction.values)
    mae = float(errors.mean())
    return {"rows": rows, "mae": mae, "nmae": mae / scale if scale > 0 else None}


def _gap_metrics(model: OnnxModel) -> tuple[str, ...]:
    if is_binary(model):
        return ("positive_rate", "tpr", "fpr", "auc")
    if model.task == "classification":
        return ("accuracy",)
    return ("nmae",)  # MAE over std(target): comparable with max_slice_gap whatever the target's unit


def slice_metrics(
    model: OnnxModel,
    frame: pd.DataFrame,
    y_true: np.ndarray,
    columns: Sequence[str],
    *,
    min_slice_rows: int = 30,
) -> dict[str, Any]:
    """Per column, per slice value: rows and metrics; per metric, the largest gap between slices.

    A slice column is read from ``frame`` and need not be a model feature. A numeric column with
    more than ``MAX_SLICE_VALUES`` distinct values is cut into ``SLICE_BINS`` quantile bins; nulls
    form the slice ``"(missing)"``.

    Per slice, binary classification reports ``rows``, ``positive_rate`` (share predicted
    positive), ``base_rate`` (share actually positive), ``tpr``, ``fpr`` and ``auc`` (None when the
    slice holds one class); multiclass reports ``accuracy``; regression reports ``mae`` and
    ``nmae`` (MAE divided by the std of the whole ``y_true``).

    Returns
    -------
    dict
        ``{column: {"slices": {value: {...}}, "gaps": {metric: {"gap", "low", "high",
        "low_value", "high_value"}}, "small_slices": [value, ...]}}``. Gaps only use slices with
        at least ``min_slice_rows`` rows and a defined metric; a column missing from ``frame``
        gets ``{"error": ...}`` instead.
    """
    y_true = np.asarray(y_true)
    prediction = predict_rows(model, frame)
    scale = float(np.std(np.asarray(y_true, dtype=np.float64))) if model.task == "regression" else 0.0
    result: dict[str, Any] = {}
    for column in columns:
        if column not in frame.columns:
            result[column] = {"error": f"column {column!r} is not in the holdout"}
            continue
        keys = _slice_keys(frame[column]).to_numpy(dtype=object)
        slices: dict[str, dict[str, Any]] = {}
        for value in sorted(set(keys.tolist()), key=str):
            mask = keys == value
            part = Prediction(
                labels=prediction.labels[mask],
                probabilities=None if prediction.probabilities is None else prediction.probabilities[mask],
            )
            slices[str(value)] = _slice_row(model, y_true[mask], part, scale)
        large = {name: row for name, row in slices.items() if row["rows"] >= min_slice_rows}
        gaps: dict[str, dict[str, Any]] = {}
        for metric in _gap_metrics(model):
            defined = {name: row[metric] for name, row in large.items() if row.get(metric) is not None}
            if len(defined) < 2:
                continue
            low = min(defined, key=lambda name: defined[name])
            high = max(defined, key=lambda name: defined[name])
            gaps[metric] = {
                "gap": defined[high] - defined[low],
                "low": low,
                "high": high,
                "low_value": defined[low],
                "high_value": defined[high],
            }
        result[column] = {
            "slices": slices,
            "gaps": gaps,
            "small_slices": sorted(name for name in slices if name not in large),
        }
    return result


def slice_gate(slices: dict[str, Any], thresholds: GateThresholds) -> Gate:
    name, limit = "slice_gap", thresholds.max_slice_gap
    if not slices:
        return Gate(
            name, None, limit, True, "no slice columns (spec.sensitive and spec.slices are empty): gaps not measured"
        )
    worst: tuple[float, str, str, dict[str, Any]] | None = None
    for column, entry in slices.items():
        for metric, gap in entry.get("gaps", {}).items():
            if worst is None or gap["gap"] > worst[0]:
                worst = (gap["gap"], column, metric, gap)
    missing = [column for column, entry in slices.items() if "error" in entry]
    note = f"; not in the holdout: {', '.join(missing)}" if missing else ""
    if worst is None:
        return Gate(name, None, limit, True, f"no slice gap measurable (fewer than two large slices){note}")
    value, column, metric, gap = worst
    passed = value <= limit
    sign = "<=" if passed else ">"
    message = (
        f"largest gap: {column} {metric} {value:.3f} {sign} {limit:.3f} "
        f"(slice {gap['low']!r} {gap['low_value']:.3f} vs {gap['high']!r} {gap['high_value']:.3f}){note}"
    )
    return Gate(name, value, limit, passed, message)
