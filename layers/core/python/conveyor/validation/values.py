"""The values of each feature: nulls, sentinels, ranges, allowed and unseen categories, constant
and identifier-like features; and duplicate rows across the frame."""

from __future__ import annotations

import numpy as np
import pandas as pd

from conveyor.jsonsafe import json_safe
from conveyor.spec import Feature, ModelSpec, category_key
from conveyor.tabular import category_strings
from conveyor.validation.context import ValidationContext
from conveyor.validation.report import EXAMPLES, Check, Rows, Severity, cite, row_examples
from conveyor.validation.schema import ID_NAME, Parsed, type_check

OUT_OF_RANGE_ERROR_SHARE = 0.01  # more out-of-range values than this share of a column -> error
COMMON_SENTINELS = (-1.0, -99.0, -999.0, -9999.0, 999.0, 9999.0, 99999.0, 999999.0)
IDENTIFIER_MIN_ROWS = 50


def feature_checks(
    name: str, feature: Feature, column: pd.Series, parsed: Parsed, rows: Rows, context: ValidationContext | None
) -> list[Check]:
    """Every check of one feature present in the frame, in report order."""
    checks = [type_check(name, feature.type, column, parsed, rows)]
    declared = _declared_sentinel_check(name, column, parsed, rows)
    if declared is not None:
        checks.append(declared)
    null_check = _null_check(name, feature, column, parsed, rows)
    if null_check is not None:
        checks.append(null_check)
    if parsed.numbers is not None and feature.type in ("number", "integer"):
        checks.extend(_numeric_checks(name, feature, column, parsed.numbers, rows))
    checks.extend(_category_checks(name, feature, column, parsed, rows, context))
    distinct = _distinct_non_null(parsed)
    if len(column) > 1 and len(distinct) and bool((distinct == distinct.iloc[0]).all()):
        checks.append(
            Check(
                "constant",
                "warn",
                False,
                f"{name}: constant (every value is {json_safe(distinct.iloc[0])!r})",
                column=name,
                value=1,  # distinct values, held to at least 2
                threshold=2,
            )
        )
    reason = _identifier_reason(name, feature, distinct)
    if reason is not None:
        checks.append(
            Check(
                "identifier_feature",
                "error",
                False,
                f"{name}: looks like an identifier ({reason}); a model would memorize it",
                column=name,
                value=1.0,  # share of rows with a distinct value: an identifier has one on every row
                threshold=1.0,
            )
        )
    return checks


def _declared_sentinel_check(name: str, column: pd.Series, parsed: Parsed, rows: Rows) -> Check | None:
    """``declared_sentinels`` (info): the declared sentinels found, counted as missing values."""
    count = int(parsed.sentinels.sum())
    if not count:
        return None
    values = sorted({category_key(v) for v in column[parsed.sentinels].head(1000).tolist()})
    examples = row_examples(parsed.sentinels, column, rows)
    return Check(
        "declared_sentinels",
        "info",
        True,
        f"{name}: {count} declared sentinel value(s) {', '.join(values[:5])} counted as missing ({cite(examples)})",
        column=name,
        details={"count": count, "values": values[:20], "examples": examples},
    )


def _null_check(name: str, feature: Feature, column: pd.Series, parsed: Parsed, rows: Rows) -> Check | None:
    """``not_null``: the null share (declared sentinels included) against ``nullable``/``max_null_share``."""
    count = int(parsed.nulls.sum())
    share = count / len(column) if len(column) else 0.0
    limit = feature.null_share_limit
    sentinels = int(parsed.sentinels.sum())
    among = f", {sentinels} of them declared sentinels" if sentinels else ""
    if share <= limit:
        if not count:
            return None
        return Check(
            "not_null",
            "error",
            True,
            f"{name}: {share:.1%} nulls{among}",
            column=name,
            details={"count": count, "sentinels": sentinels},
            value=share,
            threshold=limit,
        )
    where = "in a non-nullable feature" if not feature.nullable else f"above max_null_share {limit:g}"
    return Check(
        "not_null",
        "error",
        False,
        f"{name}: {count} null value(s) ({share:.1%}{among}) {where}",
        column=name,
        details={
            "count": count,
            "share": share,
            "sentinels": sentinels,
            "max_share": limit,
            "examples": rows.of(np.flatnonzero(parsed.nulls)[:EXAMPLES]),
        },
        value=share,
        threshold=limit,
    )


def _sentinel_mask(feature: Feature, numbers: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """Undeclared codes that look like "unknown": common codes that cannot be real values (declared
    sentinels are already missing values here)."""
    declared = [float(v) for v in feature.sentinels if isinstance(v, int | float) and not isinstance(v, bool)]
    finite = np.isfinite(numbers)
    mask = np.zeros(len(numbers), dtype=bool)
    candidates = [v for v in COMMON_SENTINELS if v not in declared]
    if feature.range is not None:
        low, high = feature.range
        inferred = [v for v in candidates if v < low or v > high]
    else:
        # no range: a code is a sentinel when it sits further from the other values than their own span
        others = numbers[finite & ~np.isin(numbers, candidates)]
        inferred = []
        if others.size >= 10:
            low, high = float(others.min()), float(others.max())
            span = max(high - low, 1.0)
            inferred = [v for v in candidates if v < low - span or v > high + span]
    if inferred:
        mask |= finite & np.isin(numbers, inferred)
    found = sorted({float(v) for v in numbers[mask]})
    return mask, found


def _numeric_checks(name: str, feature: Feature, column: pd.Series, numbers: np.ndarray, rows: Rows) -> list[Check]:
    """``sentinel`` and ``range`` of a number or integer feature (sentinels are not held to the range)."""
    checks: list[Check] = []
    sentinel, found = _sentinel_mask(feature, numbers)
    if found:
        examples = row_examples(sentinel, column, rows)
        codes = ", ".join(f"{v:g}" for v in found)
        declare = ", ".join([*(f"{json_safe(v)}" for v in feature.sentinels), *(f"{v:g}" for v in found)])
        checks.append(
            Check(
                "sentinel",
                "error",
                False,
                f"{name}: {int(sentinel.sum())} value(s) {codes} look like a code for 'unknown' ({cite(examples)}); "
                f"if so, declare it with `sentinels: [{declare}]` under features.{name} to count it as missing",
                column=name,
                details={"count": int(sentinel.sum()), "values": found, "examples": examples, "declare": declare},
                value=int(sentinel.sum()),
                threshold=0,
                fault_rows=sentinel,
            )
        )
    if feature.range is not None:
        checks.append(_range_check(name, feature.range, column, numbers, np.isfinite(numbers) & ~sentinel, rows))
    return checks


def _range_check(
    name: str, bounds: tuple[float, float], column: pd.Series, numbers: np.ndarray, present: np.ndarray, rows: Rows
) -> Check:
    low, high = bounds
    with np.errstate(invalid="ignore"):
        outside = present & ((numbers < low) | (numbers > high))
    count = int(outside.sum())
    if not count:
        return Check(
            "range",
            "error",
            True,
            f"{name}: within [{low:g}, {high:g}]",
            column=name,
            value=0.0,
            threshold=OUT_OF_RANGE_ERROR_SHARE,
        )
    share = count / max(int(present.sum()), 1)
    severity: Severity = "error" if share > OUT_OF_RANGE_ERROR_SHARE else "warn"
    # an error is held to the allowed share; a warning to none at all
    examples = row_examples(outside, column, rows)
    return Check(
        "range",
        severity,
        False,
        f"{name}: {count} value(s) ({share:.1%}) outside [{low:g}, {high:g}] ({cite(examples)})",
        column=name,
        details={
            "count": count,
            "share": share,
            "range": [low, high],
            "min": float(np.min(numbers[outside])),
            "max": float(np.max(numbers[outside])),
            "examples": examples,
        },
        value=share,
        threshold=OUT_OF_RANGE_ERROR_SHARE if severity == "error" else 0.0,
        fault_rows=outside if severity == "error" else None,
    )


def _category_checks(
    name: str, feature: Feature, column: pd.Series, parsed: Parsed, rows: Rows, context: ValidationContext | None
) -> list[Check]:
    """``allowed`` (error) or ``unseen_categories`` (warn)."""
    categories = parsed.categories
    numbers = parsed.numbers
    if categories is None and feature.type == "integer" and feature.allowed is not None and numbers is not None:
        categories = category_strings(pd.Series(numbers))  # NaN -> ""
    if categories is None:
        return []
    checks: list[Check] = []
    present = ~parsed.nulls & (categories != "").to_numpy(dtype=bool)  # declared sentinels are nulls by now
    known_check = _known_categories_check(name, feature, column, categories, present, rows, context)
    if known_check is not None:
        checks.append(known_check)
    return checks


def _known_categories_check(
    name: str,
    feature: Feature,
    column: pd.Series,
    categories: pd.Series,
    present: np.ndarray,
    rows: Rows,
    context: ValidationContext | None,
) -> Check | None:
    """Against the spec's ``allowed`` list (error), else the reference data's categories (warn)."""
    allowed = feature.allowed_categories()
    reference = (context.reference_categories or {}).get(name) if context is not None else None
    severity: Severity
    if allowed is not None:
        known, check_name, severity, against = allowed, "allowed", "error", "allowed values"
    elif reference is not None:
        known, check_name, severity, against = set(reference), "unseen_categories", "warn", "reference data"
    else:
        return None
    unseen = present & ~categories.isin(known).to_numpy(dtype=bool)
    count = int(unseen.sum())
    if not count:
        return Check(check_name, severity, True, f"{name}: every value is known", column=name, value=0, threshold=0)
    counts = categories[unseen].value_counts().head(10)
    values = {str(k): int(v) for k, v in counts.items()}
    examples = row_examples(unseen, column, rows)
    return Check(
        check_name,
        severity,
        False,
        f"{name}: {count} value(s) not in the {against}: {', '.join(repr(v) for v in values)} ({cite(examples)})",
        column=name,
        details={"count": count, "values": values, "known": sorted(known), "examples": examples},
        value=count,
        threshold=0,
        fault_rows=unseen if severity == "error" else None,
    )


def _distinct_non_null(parsed: Parsed) -> pd.Series:
    if parsed.categories is not None:
        return parsed.categories[~parsed.nulls]
    assert parsed.numbers is not None
    values = parsed.numbers
    return pd.Series(values[~np.isnan(values)])


def _identifier_reason(name: str, feature: Feature, values: pd.Series) -> str | None:
    if len(values) < IDENTIFIER_MIN_ROWS or feature.type == "boolean":
        return None
    if not values.head(1000).is_unique or not values.is_unique:  # the head settles most columns cheaply
        return None
    if ID_NAME.search(name):
        return "an id-like name and a distinct value on every row"
    if feature.type in ("category", "datetime"):
        return None if feature.type == "datetime" else "a distinct value on every row"
    numbers = values.to_numpy(dtype=np.float64)
    if bool(np.all(numbers == np.floor(numbers))) and numbers.max() - numbers.min() + 1 <= 2 * len(numbers):
        return "distinct consecutive integers on every row (a row number?)"
    return None


def duplicate_check(df: pd.DataFrame, spec: ModelSpec, rows: Rows) -> list[Check]:
    """``duplicates`` (warn): repeated rows, ignoring identifier columns that are unique per row."""
    # a row-number column (unique per row) would hide every duplicate: leave such identifiers out
    keys = [c for c in df.columns if not (c in spec.identifiers or ID_NAME.search(str(c))) or not df[c].is_unique]
    if not keys or len(df) < 2:
        return []
    hashed = pd.util.hash_pandas_object(df[keys], index=False)
    duplicated = hashed.duplicated().to_numpy(dtype=bool)
    count = int(duplicated.sum())
    share = count / len(df)
    limit = spec.validation.max_duplicate_share
    if share <= limit:
        return [
            Check(
                "duplicates",
                "warn",
                True,
                f"{count} duplicate row(s) ({share:.1%})",
                details={"count": count},
                value=share,
                threshold=limit,
            )
        ]
    return [
        Check(
            "duplicates",
            "warn",
            False,
            f"{count} duplicate row(s) ({share:.1%}, above max_duplicate_share {limit:g}), e.g. rows "
            f"{', '.join(str(r) for r in rows.of(np.flatnonzero(duplicated)[:EXAMPLES]))}",
            details={"count": count, "share": share, "rows": rows.of(np.flatnonzero(duplicated)[:EXAMPLES])},
            value=share,
            threshold=limit,
        )
    ]
