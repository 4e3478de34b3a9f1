"""The target column: usable values, at least two classes (or a non-constant regression target),
and the balance of the classes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from conveyor.errors import DataError
from conveyor.spec import ModelSpec
from conveyor.tabular import target_vector
from conveyor.validation.report import Check


def target_checks(df: pd.DataFrame, spec: ModelSpec) -> tuple[list[Check], np.ndarray | None, bool]:
    """Target checks, the target as numbers for leakage (None if unusable), and whether it is 0/1."""
    name = spec.target.column
    try:
        y = target_vector(df, spec)
    except DataError as exc:
        nulls = exc.details.get("nulls")
        check = Check(
            "target",
            "error",
            False,
            f"{name}: {exc.message}",
            column=name,
            details=dict(exc.details),
            value=nulls if isinstance(nulls, int) else None,  # null targets: their count, held to 0
            threshold=0 if isinstance(nulls, int) else None,
        )
        return [check], None, False
    if spec.task == "regression":
        distinct = int(np.unique(y).size)
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
        check = Check("target", "error", True, f"target {name!r}: numeric", column=name, value=distinct, threshold=2)
        return [check], y.astype(np.float64), False
    return _class_checks(name, y, spec.validation.min_class_share)


def _class_checks(name: str, y: np.ndarray, min_class_share: float) -> tuple[list[Check], np.ndarray | None, bool]:
    """A classification target: at least two classes, and the rarest above ``min_class_share`` (warn)."""
    classes, counts = np.unique(y, return_counts=True)
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
    return checks, (y == classes[1]).astype(np.float64), True
