"""The business-value gate (``gates.min_value_per_1000``): the candidate's value per 1,000 predictions
on the holdout (``conveyor.value``) must reach the spec's floor."""

from __future__ import annotations

import math
from collections.abc import Mapping

from conveyor.gates.common import Gate
from conveyor.value import VALUE_METRIC

NAME = "business_value"


def value_gate(candidate_metrics: Mapping[str, float], floor: float | None, unit: str = "") -> Gate | None:
    """None without a floor; else passed when the holdout value per 1,000 predictions is at least ``floor``."""
    if floor is None:
        return None
    value = candidate_metrics.get(VALUE_METRIC)
    suffix = f" {unit}" if unit else ""
    if value is None or math.isnan(value):
        return Gate(NAME, None, floor, False, "value per 1,000 predictions could not be computed on the holdout")
    passed = value >= floor
    sign = ">=" if passed else "<"
    return Gate(NAME, value, floor, passed, f"value per 1,000 predictions {value:.2f}{suffix} {sign} floor {floor:.2f}")
