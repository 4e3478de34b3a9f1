"""Leakage: one feature predicting the target almost perfectly on its own (a leak of the label).

A 0/1 target is measured by the feature's AUC (a category by its target rate per category), any
other target by |Pearson r|. ``leakage_strength`` is shared with ``conveyor init``, which drops
such a feature from the spec it infers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from conveyor.spec import ModelSpec
from conveyor.validation.report import Check
from conveyor.validation.schema import Parsed

LEAKAGE_CORRELATION = 0.98
LEAKAGE_MAX_ROWS = 100_000  # leakage statistics on a fixed sample of larger files
LEAKAGE_MIN_PER_CLASS = 10
CATEGORY_MIN_SUPPORT = 5  # rarer categories are pooled when scoring a category for leakage


def binary_auc(score: np.ndarray, positive: np.ndarray) -> float:
    """ROC AUC of ``score`` for 0/1 labels by the rank-sum (Mann-Whitney) formula; ties count half."""
    from scipy.stats import rankdata

    labels = positive.astype(bool)
    n_pos = int(labels.sum())
    n_neg = int(labels.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        return 0.5
    ranks = rankdata(score)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def category_scores(categories: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Each row's category mean of ``target``; categories rarer than ``CATEGORY_MIN_SUPPORT`` are pooled."""
    codes, _ = pd.factorize(categories)
    counts = np.bincount(codes)
    sums = np.bincount(codes, weights=target.astype(np.float64))
    rare = counts < CATEGORY_MIN_SUPPORT
    rates = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
    if bool(rare.any()):
        rates[rare] = sums[rare].sum() / max(int(counts[rare].sum()), 1)
    return rates[codes]


def leakage_strength(
    values: np.ndarray, target: np.ndarray, *, categorical: bool, binary: bool
) -> tuple[str, float] | None:
    """How well one feature alone predicts the target: ("auc", max(AUC, 1 - AUC)) for a 0/1 target,
    ("abs_corr", |Pearson r|) otherwise; None when there is too little to say."""
    if values.size < 2 * LEAKAGE_MIN_PER_CLASS:
        return None
    score = category_scores(values, target) if categorical else values.astype(np.float64)
    if binary:
        positives = int(target.sum())
        if min(positives, target.size - positives) < LEAKAGE_MIN_PER_CLASS:
            return None
        auc = binary_auc(score, target)
        return "auc", max(auc, 1.0 - auc)
    if float(np.std(score)) == 0.0 or float(np.std(target)) == 0.0:
        return None
    return "abs_corr", abs(float(np.corrcoef(score, target.astype(np.float64))[0, 1]))


def leakage_checks(spec: ModelSpec, parsed_features: dict[str, Parsed], y: np.ndarray, binary: bool) -> list[Check]:
    """One failed ``leakage`` check per leaking feature, or one passed check with every strength."""
    target = spec.target.column
    threshold = spec.validation.leakage_auc if binary else LEAKAGE_CORRELATION
    sample: np.ndarray | None = None
    if y.size > LEAKAGE_MAX_ROWS:
        sample = np.sort(np.random.default_rng(0).choice(y.size, LEAKAGE_MAX_ROWS, replace=False))
        y = y[sample]
    checks: list[Check] = []
    strengths: dict[str, float] = {}
    for name, parsed in parsed_features.items():
        if parsed.categories is not None:
            values: np.ndarray = parsed.categories.to_numpy(dtype=object)
        else:
            assert parsed.numbers is not None
            values = parsed.numbers
        if sample is not None:
            values = values[sample]
        keep = np.ones(values.size, dtype=bool) if parsed.categories is not None else np.isfinite(values)
        measured = leakage_strength(values[keep], y[keep], categorical=parsed.categories is not None, binary=binary)
        if measured is None:
            continue
        statistic, strength = measured
        strengths[name] = round(strength, 4)
        if strength >= threshold:
            label = "AUC" if statistic == "auc" else "|correlation|"
            checks.append(
                Check(
                    "leakage",
                    "error",
                    False,
                    f"{name}: predicts the target {target} almost perfectly on its own "
                    f"({label} {strength:.3f} >= {threshold:g}); a leak of the label?",
                    column=name,
                    details={"statistic": statistic, "value": strength, "threshold": threshold},
                    value=strength,
                    threshold=threshold,
                )
            )
    if not checks:
        checks.append(
            Check(
                "leakage",
                "error",
                True,
                "no single feature predicts the target almost perfectly"
                if strengths
                else f"leakage not measured: too few rows (at least {LEAKAGE_MIN_PER_CLASS} of each class needed)",
                details={"strength": strengths, "threshold": threshold},
                value=max(strengths.values()) if strengths else None,  # the strongest single feature
                threshold=threshold,
            )
        )
    return checks
