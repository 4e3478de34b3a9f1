"""Data gate (skeleton): is a dropped file usable for this spec? Never raises on bad data.

Each check yields a ``Check``; any failed ``error`` check rejects the file. Later work adds
ranges, allowed values, drift and leakage checks.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from conveyor.errors import DataError
from conveyor.spec import ModelSpec
from conveyor.tabular import BOOLEAN_FALSE, BOOLEAN_TRUE, read_table, target_vector

Severity = Literal["error", "warn", "info"]
_EXAMPLES = 5


@dataclass
class Check:
    name: str
    severity: Severity
    passed: bool
    message: str
    column: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class ValidationReport:
    """The verdict on one data object, with every check that led to it."""

    verdict: Literal["accepted", "rejected"]
    checks: list[Check]
    rows: int
    columns: list[str]
    summary: str
    source: str = ""

    @property
    def accepted(self) -> bool:
        return self.verdict == "accepted"

    @property
    def errors(self) -> list[Check]:
        return [c for c in self.checks if c.severity == "error" and not c.passed]

    def to_dict(self) -> dict[str, Any]:
        return _json_safe(asdict(self))


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _report(checks: list[Check], rows: int, columns: list[str], source: str) -> ValidationReport:
    failed = [c for c in checks if c.severity == "error" and not c.passed]
    verdict: Literal["accepted", "rejected"] = "rejected" if failed else "accepted"
    if failed:
        first = failed[0].message
        more = f" (+{len(failed) - 1} more)" if len(failed) > 1 else ""
        summary = f"rejected {source}: {first}{more}"
    else:
        warnings = sum(1 for c in checks if c.severity == "warn" and not c.passed)
        summary = f"accepted {source}: {rows} rows, {len(columns)} columns" + (
            f", {warnings} warning(s)" if warnings else ""
        )
    return ValidationReport(verdict=verdict, checks=checks, rows=rows, columns=columns, summary=summary, source=source)


def _row_examples(mask: pd.Series, column: pd.Series) -> list[dict[str, Any]]:
    positions = np.flatnonzero(mask.to_numpy())[:_EXAMPLES]
    # row numbers are 1-based data rows (the header is not counted)
    return [{"row": int(p) + 1, "value": _json_safe(column.iloc[p])} for p in positions]


def _type_check(df: pd.DataFrame, name: str, kind: str) -> Check:
    column = df[name]
    present = column.notna()
    if kind == "category":
        return Check("type", "error", True, f"{name}: category", column=name)
    if kind == "boolean" and not pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        text = column.astype("string").str.strip().str.lower()
        bad = present & ~text.isin(BOOLEAN_TRUE | BOOLEAN_FALSE).fillna(False)
    else:
        numeric = pd.to_numeric(column, errors="coerce") if not pd.api.types.is_bool_dtype(column) else column
        bad = present & pd.Series(numeric, index=column.index).isna()
        if kind == "boolean" and not bool(bad.any()):
            bad = present & ~pd.Series(numeric, index=column.index).isin([0, 1])
        if kind == "integer" and not bool(bad.any()):
            values = pd.Series(numeric, index=column.index).astype("float64")
            bad = present & (values != np.floor(values))
    count = int(bad.sum())
    if count:
        examples = _row_examples(bad, column)
        shown = ", ".join(f"row {e['row']}: {e['value']!r}" for e in examples)
        return Check(
            "type",
            "error",
            False,
            f"{name}: {count} value(s) are not {kind} ({shown})",
            column=name,
            details={"count": count, "examples": examples, "expected": kind},
        )
    return Check("type", "error", True, f"{name}: all values are {kind}", column=name)


def validate_frame(df: pd.DataFrame, spec: ModelSpec, *, source: str) -> ValidationReport:
    """Check a frame against the spec; returns a report, never raises on bad data."""
    columns = [str(c) for c in df.columns]
    checks: list[Check] = []
    if len(df) == 0:
        checks.append(Check("not_empty", "error", False, f"{source} has no data rows"))
        return _report(checks, 0, columns, source)
    checks.append(Check("not_empty", "error", True, f"{len(df)} rows"))
    required = [*spec.features, spec.target.column]
    missing = [name for name in required if name not in df.columns]
    checks.append(
        Check(
            "required_columns",
            "error",
            not missing,
            f"missing required column(s): {', '.join(missing)}" if missing else "all required columns present",
            details={"missing": missing},
        )
    )
    known = {*required, *spec.identifiers, *spec.sensitive, *([spec.time_column] if spec.time_column else [])}
    extra = [c for c in columns if c not in known]
    checks.append(
        Check(
            "unexpected_columns",
            "info",
            not extra,
            f"columns not in the spec (ignored): {', '.join(extra)}" if extra else "no unexpected columns",
            details={"columns": extra},
        )
    )
    for name, feature in spec.features.items():
        if name not in df.columns:
            continue
        checks.append(_type_check(df, name, feature.type))
        nulls = df[name].isna()
        if not feature.nullable and bool(nulls.any()):
            count = int(nulls.sum())
            checks.append(
                Check(
                    "not_null",
                    "error",
                    False,
                    f"{name}: {count} null value(s) in a non-nullable feature",
                    column=name,
                    details={"count": count, "examples": [e["row"] for e in _row_examples(nulls, df[name])]},
                )
            )
    if spec.target.column in df.columns:
        checks.append(_target_check(df, spec))
    return _report(checks, len(df), columns, source)


def _target_check(df: pd.DataFrame, spec: ModelSpec) -> Check:
    name = spec.target.column
    try:
        y = target_vector(df, spec)
    except DataError as exc:
        return Check("target", "error", False, exc.message, column=name, details=dict(exc.details))
    if spec.task == "classification":
        classes, counts = np.unique(y, return_counts=True)
        distribution = {str(c): int(n) for c, n in zip(classes.tolist(), counts.tolist(), strict=True)}
        if len(classes) < 2:
            return Check(
                "target",
                "error",
                False,
                f"target {name!r} has a single class {classes.tolist()}; need at least two",
                column=name,
                details={"classes": distribution},
            )
        return Check(
            "target",
            "error",
            True,
            f"target {name!r}: {len(classes)} classes",
            column=name,
            details={"classes": distribution},
        )
    return Check("target", "error", True, f"target {name!r}: numeric", column=name)


def validate_bytes(data: bytes, filename: str, spec: ModelSpec) -> ValidationReport:
    """Read and validate a CSV/Parquet object; an unreadable file gives a rejected report."""
    try:
        df = read_table(data, filename)
    except DataError as exc:
        check = Check("readable", "error", False, exc.message, details=dict(exc.details))
        return _report([check], 0, [], filename)
    report = validate_frame(df, spec, source=filename)
    report.checks.insert(0, Check("readable", "error", True, f"{filename} parsed"))
    return report
