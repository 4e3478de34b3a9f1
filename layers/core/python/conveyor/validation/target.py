"""The target column: usable values, at least two classes (or a non-constant regression target),
and the balance of the classes; measured chunk by chunk (``TargetTally``)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from conveyor.errors import DataError
from conveyor.spec import ModelSpec
from conveyor.tabular import target_vector
from conveyor.validation.report import Check


class TargetTally:
    """The target over every chunk: nulls, the first other fault, the classes and their counts (or,
    for regression, the distinct values)."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.nulls = 0
        self.fault: DataError | None = None
        self.classes: Counter[Any] = Counter()
        self.distinct: list[np.ndarray] = []

    def add(self, frame: pd.DataFrame) -> np.ndarray | None:
        """Measure one chunk; its target as numbers or labels (None when a value is unusable)."""
        column = frame[self.spec.target.column]
        nulls = int(column.isna().sum())
        self.nulls += nulls
        if nulls:
            return None
        try:
            y = target_vector(frame, self.spec)
        except DataError as exc:
            self.fault = self.fault or exc
            return None
        if self.spec.task == "regression":
            self.distinct.append(np.unique(y))
        else:
            classes, counts = np.unique(y, return_counts=True)
            self.classes.update(dict(zip(classes.tolist(), counts.tolist(), strict=True)))
        return y

    def checks(self) -> tuple[list[Check], Any, bool]:
        """Target checks; what a sampled target must equal to be positive (binary), ``True`` for a
        usable regression target, None if unusable; and whether it is 0/1."""
        spec, name = self.spec, self.spec.target.column
        fault = self.fault
        if self.nulls:
            fault = DataError(
                f"target column {name!r} has {self.nulls} null value(s)", details={"column": name, "nulls": self.nulls}
            )
        if fault is not None:
            nulls = fault.details.get("nulls")
            check = Check(
                "target",
                "error",
                False,
                f"{name}: {fault.message}",
                column=name,
                details=dict(fault.details),
                value=nulls if isinstance(nulls, int) else None,  # null targets: their count, held to 0
                threshold=0 if isinstance(nulls, int) else None,
            )
            return [check], None, False
        if spec.task == "regression":
            distinct = int(np.unique(np.concatenate(self.distinct)).size) if self.distinct else 0
            if distinct < 2:
                check = Check(
                    "target",
                    "error",
                    False,
                    f"{name}: the target is constant",
                    column=name,
                    value=distinct,
                    threshold=2,
                )
                return [check], None, False
            check = Check(
                "target", "error", True, f"target {name!r}: numeric", column=name, value=distinct, threshold=2
            )
            return [check], True, False
        return _class_checks(name, self.classes, spec.validation.min_class_share)


def _class_checks(name: str, tally: Counter[Any], min_class_share: float) -> tuple[list[Check], Any, bool]:
    """A classification target: at least two classes, and the rarest above ``min_class_share`` (warn)."""
    classes = np.array(sorted(tally))
    counts = np.array([tally[c] for c in classes.tolist()], dtype=np.int64)
    distribution = {str(c): int(n) for c, n in zip(classes.tolist(), counts.tolist(), strict=True)}
    if len(classes) < 2:
        check = Check(
            "target",
            "error",
            False,
            f"{name}: target has a single class {classes.tolist()}; need at least two",
            column=name,
            details={"classes": distribution},
            value=len(classes),
            threshold=2,
        )
        return [check], None, False
    checks = [
        Check(
            "target",
            "error",
            True,
            f"target {name!r}: {len(classes)} classes",
            column=name,
            details={"classes": distribution},
            value=len(classes),
            threshold=2,
        )
    ]
    shares = counts / counts.sum()
    rarest = int(np.argmin(shares))
    if shares[rarest] < min_class_share:
        checks.append(
            Check(
                "class_balance",
                "warn",
                False,
                f"{name}: class {classes[rarest]!s} is only {shares[rarest]:.2%} of rows "
                f"(below min_class_share {min_class_share:g})",
                column=name,
                details={"classes": distribution, "min_class_share": min_class_share},
                value=float(shares[rarest]),
                threshold=min_class_share,
            )
        )
    if len(classes) != 2:
        return checks, None, False
    return checks, classes[1], True
