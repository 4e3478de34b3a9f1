"""The frame against the spec's schema: rows, required, unexpected and deprecated columns, and
each feature parsed to its declared type (``type`` checks cite the rows that do not parse)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from conveyor.spec import Feature, ModelSpec
from conveyor.tabular import (
    BOOLEAN_FALSE,
    BOOLEAN_TRUE,
    category_strings,
    map_categories,
    parse_datetime,
    sentinel_mask,
)
from conveyor.validation.context import ValidationContext
from conveyor.validation.report import Check, cite

ID_NAME = re.compile(r"^(id|uuid|guid|index|row_?(id|no|num|number))$|(_id|_uuid|_key)$|^Unnamed: \d+$", re.IGNORECASE)


def row_checks(rows: int, spec: ModelSpec, context: ValidationContext | None) -> list[Check]:
    """``not_empty``, ``min_rows`` and (with a usual row count) ``row_count`` of a file of ``rows`` rows."""
    settings = spec.validation
    if rows == 0:
        return [Check("not_empty", "error", False, "no data rows (header only)", value=0, threshold=1)]
    checks = [Check("not_empty", "error", True, f"{rows} rows", value=rows, threshold=1)]
    if rows < settings.min_rows:
        checks.append(
            Check(
                "min_rows",
                "error",
                False,
                f"only {rows} rows; validation.min_rows is {settings.min_rows}",
                value=rows,
                threshold=settings.min_rows,
            )
        )
    if context is not None and context.usual_rows:
        floor = settings.min_rows_ratio * context.usual_rows
        checks.append(
            Check(
                "row_count",
                "warn",
                rows >= floor,
                f"{rows} rows, far below the usual {context.usual_rows} (under {settings.min_rows_ratio:.0%})"
                if rows < floor
                else f"{rows} rows (usual {context.usual_rows})",
                details={"rows": rows, "usual_rows": context.usual_rows, "min_rows_ratio": settings.min_rows_ratio},
                value=rows,
                threshold=floor,
            )
        )
    return checks


def column_checks(columns: list[str], spec: ModelSpec) -> list[Check]:
    """``required_column`` per missing feature or target, ``unexpected_columns`` and
    ``deprecated_columns`` (warn)."""
    checks: list[Check] = []
    target = spec.target.column
    for name in [*spec.features, target]:
        if name not in columns:
            role = "target" if name == target else "feature"
            checks.append(
                Check("required_column", "error", False, f"{name} missing (required {role} column)", column=name)
            )
    extra = [c for c in columns if c not in spec.known_columns()]
    if extra:
        checks.append(
            Check(
                "unexpected_columns",
                "warn",
                False,
                f"columns not in the spec (ignored): {', '.join(extra[:10])}{', ...' if len(extra) > 10 else ''}",
                column=extra[0],
                details={"columns": extra},
                value=len(extra),
                threshold=0,
            )
        )
    deprecated = [c for c in spec.deprecated if c in columns]
    if deprecated:
        checks.append(
            Check(
                "deprecated_columns",
                "warn",
                False,
                f"deprecated columns still sent (ignored): {', '.join(deprecated)}",
                column=deprecated[0],
                details={"columns": deprecated},
                value=len(deprecated),
                threshold=0,
            )
        )
    return checks


@dataclass
class Parsed:
    """One feature's values as the gate sees them (positions align with the frame)."""

    nulls: np.ndarray  # bool: missing in the file
    bad: np.ndarray  # bool: present but not of the declared type
    numbers: np.ndarray | None = None  # float64 (NaN for nulls and bad values): number/integer/boolean/datetime
    categories: pd.Series | None = None  # object str after mapping ("" for nulls): category
    sentinels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))  # declared sentinels (in nulls)


def parse_feature(column: pd.Series, feature: Feature) -> Parsed:
    """One feature's values parsed to its declared type, with its nulls (declared sentinels included)
    and unparsable values."""
    declared = sentinel_mask(column, feature)
    parsed = _parse_typed(column.where(~declared) if bool(declared.any()) else column, feature)
    parsed.sentinels = declared
    return parsed


def _parse_typed(column: pd.Series, feature: Feature) -> Parsed:
    nulls = column.isna().to_numpy(dtype=bool)
    kind = feature.type
    if kind == "category":
        strings = map_categories(category_strings(column), feature.category_mapping())
        return Parsed(nulls=nulls, bad=np.zeros(len(column), dtype=bool), categories=strings)
    if kind == "datetime":
        parsed = parse_datetime(column)
        missing = parsed.isna().to_numpy(dtype=bool)
        seconds = (parsed - pd.Timestamp("1970-01-01", tz="UTC")) / pd.Timedelta(seconds=1)
        return Parsed(nulls=nulls, bad=missing & ~nulls, numbers=seconds.to_numpy(dtype=np.float64, na_value=np.nan))
    if pd.api.types.is_bool_dtype(column):
        numbers = column.to_numpy(dtype=np.float64, na_value=np.nan)
    elif kind == "boolean" and not pd.api.types.is_numeric_dtype(column):
        text = column.astype("string").str.strip().str.lower()
        numbers = np.full(len(column), np.nan)
        numbers[text.isin(BOOLEAN_TRUE).to_numpy(dtype=bool, na_value=False)] = 1.0
        numbers[text.isin(BOOLEAN_FALSE).to_numpy(dtype=bool, na_value=False)] = 0.0
    elif pd.api.types.is_numeric_dtype(column):
        numbers = column.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        converted = pd.to_numeric(column.astype("string").str.strip(), errors="coerce")
        numbers = converted.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = np.isnan(numbers) & ~nulls
    with np.errstate(invalid="ignore"):
        if kind == "boolean":
            not_binary = ~np.isnan(numbers) & (numbers != 0.0) & (numbers != 1.0)
            bad |= not_binary
            numbers = np.where(not_binary, np.nan, numbers)
        elif kind == "integer":
            fractional = np.isfinite(numbers) & (numbers != np.floor(numbers))
            bad |= fractional
            numbers = np.where(fractional, np.nan, numbers)
    return Parsed(nulls=nulls, bad=bad, numbers=numbers)


def type_check(name: str, kind: str, count: int, examples: list[dict[str, Any]], faults: np.ndarray | None) -> Check:
    """``type``: ``count`` values that do not parse as ``kind`` (the first rows cited in ``examples``)."""
    if not count:
        return Check("type", "error", True, f"{name}: all values are {kind}", column=name, value=0, threshold=0)
    return Check(
        "type",
        "error",
        False,
        f"{name}: {count} value(s) are not {kind} ({cite(examples)})",
        column=name,
        details={"count": count, "examples": examples, "expected": kind},
        value=count,
        threshold=0,
        fault_rows=faults,
    )
