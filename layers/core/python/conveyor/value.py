"""Business value of predictions: value per 1,000 predictions from the spec's ``value:`` section.

Classification (binary): each prediction is one outcome on the positive class (the last of the sorted
classes, as for ROC AUC): true/false positive/negative, worth the spec's value for that outcome.
Regression: each prediction costs ``cost_per_unit_error`` x |truth - prediction|.
The same function runs on the holdout at registration (``value_per_1000`` beside the metrics of the
candidate and the champion) and in the live monitor on labelled traffic (metric ``LiveValuePer1000``).
Imports numpy only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # the zip functions (board widget) import this module: pydantic is not in their layers
    from conveyor.spec_value import ValueSpec

VALUE_METRIC = "value_per_1000"


def confusion_counts(y_true: Any, y_pred: Any, positive: Any) -> dict[str, int]:
    """Counts of each outcome with ``positive`` as the positive class."""
    truth = np.asarray(y_true) == positive
    predicted = np.asarray(y_pred) == positive
    return {
        "true_positive": int(np.sum(truth & predicted)),
        "false_positive": int(np.sum(~truth & predicted)),
        "false_negative": int(np.sum(truth & ~predicted)),
        "true_negative": int(np.sum(~truth & ~predicted)),
    }


def positive_class(y_true: Any, y_pred: Any, classes: Sequence[Any] | None = None) -> Any:
    """The positive class: the last of the model's classes, else of the values seen.

    Raises
    ------
    ValueError
        If there are more than two classes (outcome values are defined for binary classifiers).
    """
    known = (
        list(classes)
        if classes is not None
        else sorted(set(np.asarray(y_true).tolist()) | set(np.asarray(y_pred).tolist()))
    )
    if len(known) > 2:
        raise ValueError(f"value per outcome needs a binary classifier, this one has {len(known)} classes")
    return known[-1] if known else 1


def value_per_1000(
    task: str, y_true: Any, y_pred: Any, value_spec: ValueSpec, classes: Sequence[Any] | None = None
) -> float:
    """Value of these predictions per 1,000 predictions (NaN for no predictions).

    Raises
    ------
    ValueError
        If the value section is written for the other task, or a classifier has more than two classes.
    """
    if value_spec.task != task:
        raise ValueError(f"the value section is for {value_spec.task}, the model does {task}")
    n = len(y_true)
    if n == 0:
        return math.nan
    if task == "regression":
        errors = np.abs(np.asarray(y_true, dtype=np.float64) - np.asarray(y_pred, dtype=np.float64))
        return -1000.0 * float(value_spec.cost_per_unit_error or 0.0) * float(np.mean(errors))
    counts = confusion_counts(y_true, y_pred, positive_class(y_true, y_pred, classes))
    worth = value_spec.outcome_values()
    return 1000.0 * math.fsum(counts[k] * worth[k] for k in counts) / n
