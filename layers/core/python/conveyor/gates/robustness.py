"""The noise-robustness gate: the share of predictions that change under small, seeded input noise."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from conveyor.gates.common import Gate, GateThresholds, model_frame, predict_frame, same_labels
from conveyor.scoring import OnnxModel
from conveyor.spec import ModelSpec
from conveyor.tabular import target_vector

REGRESSION_MOVE = 0.10  # a regression prediction "flips" when it moves by more than this share of std(target)
_NUMERIC_TYPES = frozenset({"number", "integer"})


def _perturb(typed: pd.DataFrame, feature_types: Mapping[str, str], thresholds: GateThresholds) -> pd.DataFrame:
    """Gaussian noise on number/integer features (integers rounded back), swaps on category/boolean ones."""
    rng = np.random.default_rng(thresholds.seed)
    noisy = typed.copy()
    for name, kind in feature_types.items():
        values = typed[name].to_numpy()
        if kind in _NUMERIC_TYPES:
            numbers = values.astype(np.float64)
            std = float(np.nanstd(numbers)) if np.isfinite(numbers).any() else 0.0
            moved = numbers + rng.normal(0.0, thresholds.noise_scale * std, size=len(numbers))
            if kind == "integer":
                moved = np.round(moved)
            noisy[name] = moved.astype(np.float32)  # NaN stays NaN
            continue
        observed = pd.unique(values[pd.notna(values)])
        swap = rng.random(len(values)) < thresholds.swap_rate
        if len(observed) < 2 or not swap.any():
            continue
        swapped = values.copy()
        for i in np.flatnonzero(swap):
            others = observed[observed != values[i]]
            swapped[i] = others[rng.integers(len(others))]
        noisy[name] = pd.Series(swapped, index=typed.index).astype(typed[name].dtype)
    return noisy


def noise_flip_rate(
    model: OnnxModel, frame: pd.DataFrame, spec: ModelSpec, thresholds: GateThresholds | None = None
) -> float:
    """Share of rows whose prediction changes under small, seeded input noise.

    Numeric features get Gaussian noise with std ``noise_scale * std(feature)`` (integers are
    rounded back); each category or boolean value is swapped, with probability ``swap_rate``, to
    another value observed in that column. Classification counts changed labels. Regression
    counts predictions that move by more than ``REGRESSION_MOVE`` (10%) of the target's std in
    ``frame`` (of the predictions' std when the target column is absent).
    """
    thresholds = thresholds or GateThresholds()
    if frame.empty:
        return 0.0
    typed = model_frame(model, frame)
    before = predict_frame(model, typed)
    after = predict_frame(model, _perturb(typed, model.feature_types, thresholds))
    if model.task == "classification":
        return float(np.mean(~same_labels(before.labels, after.labels)))
    if spec.target.column in frame.columns:
        scale = float(np.std(target_vector(frame, spec).astype(np.float64)))
    else:
        scale = float(np.std(before.values))
    moved = np.abs(after.values - before.values)
    return float(np.mean(moved > REGRESSION_MOVE * scale))


def noise_gate(flip_rate: float, thresholds: GateThresholds) -> Gate:
    limit = thresholds.max_flip_rate
    passed = flip_rate <= limit
    sign = "<=" if passed else ">"
    message = (
        f"{flip_rate:.1%} of predictions change under noise "
        f"({thresholds.noise_scale:g} std, {thresholds.swap_rate:.0%} category swaps) {sign} {limit:.1%}"
    )
    return Gate("noise_robustness", flip_rate, limit, passed, message)
