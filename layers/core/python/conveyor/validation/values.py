"""The values of each feature: nulls, sentinels, ranges, allowed and unseen categories, constant
and identifier-like features.

Each feature is measured chunk by chunk (``FeatureTally.add``: counts, the first rows cited,
the positions at fault, the first distinct value, a 64-bit hash per value of a column that could
be an identifier) and judged once (``FeatureTally.checks``), so a file read whole (one chunk) and
a file streamed in chunks get the same checks.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from conveyor.jsonsafe import json_safe
from conveyor.spec import Feature, category_key
from conveyor.tabular import category_strings
from conveyor.validation.context import ValidationContext
from conveyor.validation.report import EXAMPLES, Check, Rows, Severity, cite, row_examples
from conveyor.validation.schema import ID_NAME, Parsed, type_check

OUT_OF_RANGE_ERROR_SHARE = 0.01  # more out-of-range values than this share of a column -> error
COMMON_SENTINELS = (-1.0, -99.0, -999.0, -9999.0, 999.0, 9999.0, 99999.0, 999999.0)
IDENTIFIER_MIN_ROWS = 50
_DECLARED_SHOWN = 1000  # declared sentinel spellings listed: those of the first cells holding one


@dataclass
class Faults:
    """Rows at fault for one check, over every chunk: count, the first rows cited, and (when rows
    may be set aside) their positions in the file."""

    keep_positions: bool
    count: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)
    positions: list[np.ndarray] = field(default_factory=list)

    def add(self, mask: np.ndarray, column: pd.Series, rows: Rows, offset: int) -> None:
        hits = int(mask.sum())
        if not hits:
            return
        self.count += hits
        if len(self.examples) < EXAMPLES:
            self.examples.extend(row_examples(mask, column, rows)[: EXAMPLES - len(self.examples)])
        if self.keep_positions:
            self.positions.append(np.flatnonzero(mask) + offset)

    def mask(self, rows: int) -> np.ndarray | None:
        """The faulty rows as a mask over the file (None when positions were not kept)."""
        if not self.keep_positions:
            return None
        mask = np.zeros(rows, dtype=bool)
        for part in self.positions:
            mask[part] = True
        return mask


@dataclass
class _Code:
    """One common "unknown" code found in a number feature, before knowing whether it is a sentinel."""

    faults: Faults
    first: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # (file position, example)


@dataclass
class _Distinct:
    """What the constant and identifier checks need of the non-null values."""

    count: int = 0
    first: Any = None
    constant: bool = True
    integral: bool = True
    low: float = np.inf
    high: float = -np.inf
    hashes: list[np.ndarray] | None = field(default_factory=list)  # None: a repeat was seen, or not needed


class FeatureTally:
    """Every check of one feature present in the file, measured chunk by chunk."""

    def __init__(self, name: str, feature: Feature, context: ValidationContext | None, *, keep_faults: bool) -> None:
        self.name, self.feature = name, feature
        self.rows = 0
        self.bad = Faults(keep_faults)
        self.nulls, self.null_rows = 0, list[int]()
        self.declared, self.declared_values = Faults(False), set[str]()
        self.declared_seen = 0
        self.codes = {v: _Code(Faults(keep_faults)) for v in self._candidates()}
        self.others = [0, np.inf, -np.inf]  # count, min, max of the values that are not candidate codes
        self.range_faults, self.range_present = Faults(keep_faults), 0
        self.range_low, self.range_high = np.inf, -np.inf  # of the values outside the range
        self.unseen, self.unseen_values = Faults(keep_faults), Counter[str]()
        self.categorical = False
        self.distinct = _Distinct(hashes=[] if self._may_be_identifier() else None)
        allowed = feature.allowed_categories()
        reference = (context.reference_categories or {}).get(name) if context is not None else None
        self.known: tuple[set[str], str, Severity, str] | None = None
        if allowed is not None:
            self.known = (set(allowed), "allowed", "error", "allowed values")
        elif reference is not None:
            self.known = (set(reference), "unseen_categories", "warn", "reference data")

    def _candidates(self) -> list[float]:
        if self.feature.type not in ("number", "integer"):
            return []
        declared = [float(v) for v in self.feature.sentinels if isinstance(v, int | float) and not isinstance(v, bool)]
        return [v for v in COMMON_SENTINELS if v not in declared]

    def _may_be_identifier(self) -> bool:
        kind = self.feature.type
        return kind != "boolean" and (bool(ID_NAME.search(self.name)) or kind in ("category", "integer", "number"))

    def add(self, column: pd.Series, parsed: Parsed, rows: Rows, offset: int) -> None:
        """Measure one chunk: ``column`` as read, ``parsed`` its values, ``offset`` its first row's position."""
        self.rows += len(column)
        self.bad.add(parsed.bad, column, rows, offset)
        self._add_declared(column, parsed, rows, offset)
        self.nulls += int(parsed.nulls.sum())
        if len(self.null_rows) < EXAMPLES:
            self.null_rows.extend(rows.of(np.flatnonzero(parsed.nulls)[: EXAMPLES - len(self.null_rows)]))
        if parsed.numbers is not None and self.feature.type in ("number", "integer"):
            self._add_numbers(column, parsed.numbers, rows, offset)
        self._add_categories(column, parsed, rows, offset)
        self._add_distinct(parsed)

    def _add_declared(self, column: pd.Series, parsed: Parsed, rows: Rows, offset: int) -> None:
        if not bool(parsed.sentinels.any()):
            return
        if self.declared_seen < _DECLARED_SHOWN:
            shown = column[parsed.sentinels].head(_DECLARED_SHOWN - self.declared_seen).tolist()
            self.declared_values |= {category_key(v) for v in shown}
            self.declared_seen += len(shown)
        self.declared.add(parsed.sentinels, column, rows, offset)

    def _add_numbers(self, column: pd.Series, numbers: np.ndarray, rows: Rows, offset: int) -> None:
        finite = np.isfinite(numbers)
        coded = np.zeros(len(numbers), dtype=bool)
        for value, code in self.codes.items():
            hit = finite & (numbers == value)
            if not bool(hit.any()):
                continue
            coded |= hit
            before = code.faults.count
            code.faults.add(hit, column, rows, offset)
            if before < EXAMPLES:
                positions = np.flatnonzero(hit)[: EXAMPLES - before]
                code.first.extend(zip((positions + offset).tolist(), row_examples(hit, column, rows), strict=False))
        others = numbers[finite & ~coded]
        if others.size:
            self.others = [
                self.others[0] + others.size,
                min(self.others[1], others.min()),
                max(self.others[2], others.max()),
            ]
        if self.feature.range is not None:
            low, high = self.feature.range
            sentinel = finite & np.isin(numbers, self._inferred_codes())
            present = finite & ~sentinel
            with np.errstate(invalid="ignore"):
                outside = present & ((numbers < low) | (numbers > high))
            self.range_present += int(present.sum())
            if bool(outside.any()):
                self.range_low = min(self.range_low, float(np.min(numbers[outside])))
                self.range_high = max(self.range_high, float(np.max(numbers[outside])))
            self.range_faults.add(outside, column, rows, offset)

    def _inferred_codes(self) -> list[float]:
        """The candidate codes that are sentinels: outside the range, or (no range) further from the
        other values than their own span (known only once every chunk was seen)."""
        if self.feature.range is not None:
            low, high = self.feature.range
            return [v for v in self.codes if v < low or v > high]
        count, low, high = self.others
        if count < 10:
            return []
        span = max(high - low, 1.0)
        return [v for v in self.codes if v < low - span or v > high + span]

    def _add_categories(self, column: pd.Series, parsed: Parsed, rows: Rows, offset: int) -> None:
        categories = parsed.categories
        numbers = parsed.numbers
        feature = self.feature
        if categories is None and feature.type == "integer" and feature.allowed is not None and numbers is not None:
            categories = category_strings(pd.Series(numbers))  # NaN -> ""
        if categories is None or self.known is None:
            return
        self.categorical = True
        present = ~parsed.nulls & (categories != "").to_numpy(dtype=bool)  # declared sentinels are nulls by now
        unseen = present & ~categories.isin(self.known[0]).to_numpy(dtype=bool)
        if bool(unseen.any()):
            self.unseen_values.update(categories[unseen].tolist())
        self.unseen.add(unseen, column, rows, offset)

    def _add_distinct(self, parsed: Parsed) -> None:
        if parsed.categories is not None:
            values: Any = parsed.categories[~parsed.nulls].to_numpy(dtype=object)
        else:
            assert parsed.numbers is not None
            values = parsed.numbers[~np.isnan(parsed.numbers)]
        tally = self.distinct
        if not len(values):
            return
        if tally.count == 0:
            tally.first = values[0]
        tally.count += len(values)
        tally.constant = tally.constant and bool((values == tally.first).all())
        if parsed.categories is None:
            tally.integral = tally.integral and bool(np.all(values == np.floor(values)))
            tally.low, tally.high = min(tally.low, float(values.min())), max(tally.high, float(values.max()))
            if not tally.integral and not ID_NAME.search(self.name):
                tally.hashes = None  # not an identifier whatever the rest holds
        if tally.hashes is not None:
            hashed = pd.util.hash_array(np.asarray(values))
            if np.unique(hashed).size < hashed.size:
                tally.hashes = None
            else:
                tally.hashes.append(hashed)

    def checks(self) -> list[Check]:
        """Every check of the feature, in report order."""
        name, feature = self.name, self.feature
        checks = [type_check(name, feature.type, self.bad.count, self.bad.examples, self.bad.mask(self.rows))]
        if self.declared.count:
            values = sorted(self.declared_values)
            checks.append(
                Check(
                    "declared_sentinels",
                    "info",
                    True,
                    f"{name}: {self.declared.count} declared sentinel value(s) {', '.join(values[:5])} counted as "
                    f"missing ({cite(self.declared.examples)})",
                    column=name,
                    details={"count": self.declared.count, "values": values[:20], "examples": self.declared.examples},
                )
            )
        null_check = self._null_check()
        if null_check is not None:
            checks.append(null_check)
        if feature.type in ("number", "integer") and self.codes:
            checks.extend(self._numeric_checks())
        elif feature.type in ("number", "integer") and feature.range is not None:
            checks.append(self._range_check())
        if self.categorical:
            checks.append(self._known_categories_check())
        distinct = self.distinct
        if self.rows > 1 and distinct.count and distinct.constant:
            checks.append(
                Check(
                    "constant",
                    "warn",
                    False,
                    f"{name}: constant (every value is {json_safe(distinct.first)!r})",
                    column=name,
                    value=1,  # distinct values, held to at least 2
                    threshold=2,
                )
            )
        reason = self._identifier_reason()
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

    def _null_check(self) -> Check | None:
        """``not_null``: the null share (declared sentinels included) against ``nullable``/``max_null_share``."""
        name, feature, count = self.name, self.feature, self.nulls
        share = count / self.rows if self.rows else 0.0
        limit = feature.null_share_limit
        sentinels = self.declared.count
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
                "examples": self.null_rows,
            },
            value=share,
            threshold=limit,
        )

    def _numeric_checks(self) -> list[Check]:
        """``sentinel`` and ``range`` of a number or integer feature (sentinels are not held to the range)."""
        name, feature = self.name, self.feature
        checks: list[Check] = []
        inferred = [v for v in self._inferred_codes() if self.codes[v].faults.count]
        if inferred:
            count = sum(self.codes[v].faults.count for v in inferred)
            examples = [e for _, e in sorted((p, e) for v in inferred for p, e in self.codes[v].first)][:EXAMPLES]
            codes = ", ".join(f"{v:g}" for v in sorted(inferred))
            declare = ", ".join(
                [*(f"{json_safe(v)}" for v in feature.sentinels), *(f"{v:g}" for v in sorted(inferred))]
            )
            masks = [self.codes[v].faults.mask(self.rows) for v in inferred]
            checks.append(
                Check(
                    "sentinel",
                    "error",
                    False,
                    f"{name}: {count} value(s) {codes} look like a code for 'unknown' ({cite(examples)}); "
                    f"if so, declare it with `sentinels: [{declare}]` under features.{name} to count it as missing",
                    column=name,
                    details={"count": count, "values": sorted(inferred), "examples": examples, "declare": declare},
                    value=count,
                    threshold=0,
                    fault_rows=None if masks[0] is None else np.logical_or.reduce([m for m in masks if m is not None]),
                )
            )
        if feature.range is not None:
            checks.append(self._range_check())
        return checks

    def _range_check(self) -> Check:
        name = self.name
        assert self.feature.range is not None
        low, high = self.feature.range
        faults = self.range_faults
        if not faults.count:
            return Check(
                "range",
                "error",
                True,
                f"{name}: within [{low:g}, {high:g}]",
                column=name,
                value=0.0,
                threshold=OUT_OF_RANGE_ERROR_SHARE,
            )
        share = faults.count / max(self.range_present, 1)
        severity: Severity = "error" if share > OUT_OF_RANGE_ERROR_SHARE else "warn"
        # an error is held to the allowed share; a warning to none at all
        return Check(
            "range",
            severity,
            False,
            f"{name}: {faults.count} value(s) ({share:.1%}) outside [{low:g}, {high:g}] ({cite(faults.examples)})",
            column=name,
            details={
                "count": faults.count,
                "share": share,
                "range": [low, high],
                "min": self.range_low,
                "max": self.range_high,
                "examples": faults.examples,
            },
            value=share,
            threshold=OUT_OF_RANGE_ERROR_SHARE if severity == "error" else 0.0,
            fault_rows=faults.mask(self.rows) if severity == "error" else None,
        )

    def _known_categories_check(self) -> Check:
        """Against the spec's ``allowed`` list (error), else the reference data's categories (warn)."""
        assert self.known is not None
        known, check_name, severity, against = self.known
        name, faults = self.name, self.unseen
        if not faults.count:
            return Check(check_name, severity, True, f"{name}: every value is known", column=name, value=0, threshold=0)
        values = dict(self.unseen_values.most_common(10))
        return Check(
            check_name,
            severity,
            False,
            f"{name}: {faults.count} value(s) not in the {against}: {', '.join(repr(v) for v in values)} "
            f"({cite(faults.examples)})",
            column=name,
            details={"count": faults.count, "values": values, "known": sorted(known), "examples": faults.examples},
            value=faults.count,
            threshold=0,
            fault_rows=faults.mask(self.rows) if severity == "error" else None,
        )

    def _identifier_reason(self) -> str | None:
        distinct, feature = self.distinct, self.feature
        if distinct.count < IDENTIFIER_MIN_ROWS or feature.type == "boolean" or distinct.hashes is None:
            return None
        hashes = np.concatenate(distinct.hashes)
        if np.unique(hashes).size < hashes.size:
            return None
        if ID_NAME.search(self.name):
            return "an id-like name and a distinct value on every row"
        if feature.type in ("category", "datetime"):
            return None if feature.type == "datetime" else "a distinct value on every row"
        if distinct.integral and distinct.high - distinct.low + 1 <= 2 * distinct.count:
            return "distinct consecutive integers on every row (a row number?)"
        return None
