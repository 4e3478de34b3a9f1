"""Leakage: one feature predicting the target almost perfectly on its own (a leak of the label).

A 0/1 target is measured by the feature's AUC (a category by its target rate per category), any
other target by |Pearson r| (``conveyor.stats.leakage_strength``, which ``conveyor init`` also
uses to drop such a feature from the spec it infers).

The statistics need the rows themselves, so they are computed on at most ``LEAKAGE_MAX_ROWS``
rows: a file read whole is sampled with a fixed seed; a file read in chunks keeps a uniform
reservoir of that many rows (``LeakageSample``). Both are uniform samples of the rows, so the
strength measured differs by sampling noise only (at 100,000 rows, an AUC moves by about 0.001).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from conveyor.spec import ModelSpec
from conveyor.stats import LEAKAGE_MIN_PER_CLASS, leakage_strength
from conveyor.validation.report import Check
from conveyor.validation.schema import Parsed

LEAKAGE_CORRELATION = 0.98
LEAKAGE_MAX_ROWS = 100_000  # leakage statistics on a fixed sample of larger files


def _values(parsed: Parsed) -> np.ndarray:
    if parsed.categories is not None:
        return parsed.categories.to_numpy(dtype=object)
    assert parsed.numbers is not None
    return parsed.numbers


class LeakageSample:
    """The features and the target of the rows leakage is measured on: every row of the first
    chunk, then a uniform reservoir of ``LEAKAGE_MAX_ROWS`` rows once more chunks arrive."""

    def __init__(self, limit: int = LEAKAGE_MAX_ROWS) -> None:
        self.limit = limit
        self.seen = 0
        self.columns: dict[str, list[np.ndarray]] = {}
        self.categorical: set[str] = set()
        self.target: list[np.ndarray] = []
        self._rng = np.random.default_rng(0)

    def add(self, parsed: dict[str, Parsed], y: np.ndarray) -> None:
        values = {name: _values(p) for name, p in parsed.items()}
        self.categorical |= {name for name, p in parsed.items() if p.categories is not None}
        if y.dtype.kind in "US":
            y = y.astype(object)  # labels of any length fit the reservoir
        kept = sum(len(t) for t in self.target)
        if not self.target or (kept == self.seen and kept + len(y) <= self.limit):
            for name, column in values.items():  # every row so far
                self.columns.setdefault(name, []).append(column)
            self.target.append(y)
            self.seen += len(y)
            return
        if kept == self.seen:  # every row so far is at hand: a uniform choice of them starts the reservoir
            columns = {name: np.concatenate([*self.columns[name], values[name]]) for name in values}
            target = np.concatenate([*self.target, y])
            keep = np.sort(self._rng.choice(len(target), self.limit, replace=False))
            self.columns = {name: [column[keep]] for name, column in columns.items()}
            self.target = [target[keep]]
            self.seen += len(y)
            return
        # Algorithm R over the chunk's rows: row i (0-based in the file) replaces slot j when j < limit
        index = np.arange(self.seen, self.seen + len(y))
        slots = (self._rng.random(len(y)) * (index + 1)).astype(np.int64)
        taken = np.flatnonzero(slots < self.limit)
        if taken.size:
            order = taken[::-1]  # a later row replacing the same slot wins: keep the last row per slot
            _, first = np.unique(slots[order], return_index=True)
            chosen = order[first]
            for name, column in values.items():
                self.columns[name][0][slots[chosen]] = column[chosen]
            self.target[0][slots[chosen]] = y[chosen]
        self.seen += len(y)

    def rows(self) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The sampled features and target; a single chunk above the limit is sampled here, with the
        fixed seed that validation has always used."""
        columns = {name: np.concatenate(parts) for name, parts in self.columns.items()}
        y = np.concatenate(self.target) if self.target else np.zeros(0)
        if y.size > self.limit:
            sample = np.sort(np.random.default_rng(0).choice(y.size, self.limit, replace=False))
            columns = {name: values[sample] for name, values in columns.items()}
            y = y[sample]
        return columns, y


def leakage_checks(spec: ModelSpec, sample: LeakageSample, positive: Any, binary: bool) -> list[Check]:
    """One failed ``leakage`` check per leaking feature, or one passed check with every strength.

    ``positive``: the class that is 1 when the target is binary (the sampled target is compared to it).
    """
    target = spec.target.column
    threshold = spec.validation.leakage_auc if binary else LEAKAGE_CORRELATION
    columns, y_raw = sample.rows()
    y = (y_raw == positive).astype(np.float64) if binary else y_raw.astype(np.float64)
    checks: list[Check] = []
    strengths: dict[str, float] = {}
    for name, values in columns.items():
        categorical = name in sample.categorical
        keep = np.ones(values.size, dtype=bool) if categorical else np.isfinite(values)
        measured = leakage_strength(values[keep], y[keep], categorical=categorical, binary=binary)
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
