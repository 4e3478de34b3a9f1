"""Leakage: one feature predicting the target almost perfectly on its own (a leak of the label).

A 0/1 target is measured by the feature's AUC (a category by its target rate per category), any
other target by |Pearson r| (``conveyor.stats.leakage_strength``, which ``conveyor init`` also
uses to drop such a feature from the spec it infers).
"""

from __future__ import annotations

import numpy as np

from conveyor.spec import ModelSpec
from conveyor.stats import LEAKAGE_MIN_PER_CLASS, leakage_strength
from conveyor.validation.report import Check
from conveyor.validation.schema import Parsed

LEAKAGE_CORRELATION = 0.98
LEAKAGE_MAX_ROWS = 100_000  # leakage statistics on a fixed sample of larger files


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
