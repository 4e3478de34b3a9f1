"""The explainability gate: permutation importance through ONNX, and the share a sensitive or
identifier feature carries."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from conveyor.evaluation import primary_score
from conveyor.gates.common import Gate, GateThresholds, model_frame, predict_frame
from conveyor.scoring import OnnxModel
from conveyor.spec import HIGHER_IS_BETTER, ModelSpec

IMPORTANCE_MAX_ROWS = 2000  # permutation importance subsamples larger holdouts (seeded)
IMPORTANCE_REPEATS = 3
TOP_FEATURES = 5


def permutation_importance(
    model: OnnxModel,
    frame: pd.DataFrame,
    y_true: np.ndarray,
    spec: ModelSpec,
    *,
    metric: str | None = None,
    n_repeats: int = IMPORTANCE_REPEATS,
    seed: int = 0,
) -> dict[str, float]:
    """Drop of ``metric`` (default: the spec's primary metric) when one feature column is shuffled.

    Computed through ONNX on the model's own inputs: each feature is shuffled ``n_repeats`` times
    (seeded) and the mean drop recorded, signed so that a positive value always means "the model
    needs this feature" (for lower-is-better metrics the drop is ``permuted - baseline``). A
    negative value means shuffling helped, i.e. noise. :func:`importance_shares` normalizes.
    """
    metric = metric or spec.primary_metric
    higher = metric in HIGHER_IS_BETTER
    y_true = np.asarray(y_true)
    typed = model_frame(model, frame)
    baseline = primary_score(metric, y_true, predict_frame(model, typed), model.classes)
    rng = np.random.default_rng(seed)
    importance: dict[str, float] = {}
    for name in model.feature_types:
        original = typed[name].to_numpy()
        drops = []
        for _ in range(n_repeats):
            shuffled = typed.copy()
            shuffled[name] = pd.Series(rng.permutation(original), index=typed.index).astype(typed[name].dtype)
            score = primary_score(metric, y_true, predict_frame(model, shuffled), model.classes)
            drops.append(baseline - score if higher else score - baseline)
        importance[name] = float(np.nanmean(drops)) if not np.isnan(drops).all() else math.nan
    return importance


def importance_shares(importance: Mapping[str, float]) -> dict[str, float]:
    """Each feature's share of the total positive importance (negative and NaN count as 0)."""
    clipped = {name: max(0.0, value) if math.isfinite(value) else 0.0 for name, value in importance.items()}
    total = sum(clipped.values())
    return {name: (value / total if total > 0 else 0.0) for name, value in clipped.items()}


def importance_evidence(
    model: OnnxModel, holdout: pd.DataFrame, y_true: np.ndarray, spec: ModelSpec, seed: int
) -> dict[str, Any]:
    frame, labels = holdout, y_true
    if len(holdout) > IMPORTANCE_MAX_ROWS:
        rows = np.sort(np.random.default_rng(seed).choice(len(holdout), IMPORTANCE_MAX_ROWS, replace=False))
        frame, labels = holdout.iloc[rows], y_true[rows]
    metric = spec.primary_metric
    importance = permutation_importance(
        model, frame, labels, spec, metric=metric, n_repeats=IMPORTANCE_REPEATS, seed=seed
    )
    shares = importance_shares(importance)
    ranked = sorted(importance, key=lambda name: shares[name], reverse=True)
    return {
        "metric": metric,
        "rows": len(frame),
        "n_repeats": IMPORTANCE_REPEATS,
        "features": [{"name": name, "importance": importance[name], "share": shares[name]} for name in ranked],
        "top": ranked[:TOP_FEATURES],
    }


def explainability_gate(evidence: dict[str, Any], spec: ModelSpec, thresholds: GateThresholds) -> Gate:
    name, limit = "explainability", thresholds.max_importance_share
    shares = {row["name"]: row["share"] for row in evidence["features"]}
    top = ", ".join(f"{feature} {shares[feature]:.0%}" for feature in evidence["top"])
    watched = [column for column in dict.fromkeys([*spec.sensitive, *spec.identifiers]) if column in shares]
    if not watched:
        return Gate(name, None, limit, True, f"no sensitive or identifier column is a feature; top: {top}")
    worst = max(watched, key=lambda column: shares[column])
    value = shares[worst]
    passed = value <= limit
    kind = "sensitive" if worst in spec.sensitive else "identifier"
    sign = "<=" if passed else ">"
    message = f"{kind} feature {worst!r} carries {value:.0%} of permutation importance {sign} {limit:.0%}; top: {top}"
    return Gate(name, value, limit, passed, message)
