"""All the checks of a file's rows, measured chunk by chunk (``FrameTally.add``) and judged once
(``FrameTally.checks``): a file read whole is one chunk, a streamed file many; the checks are the
same either way (``tests/unit/test_validation_chunked.py`` holds the corpus to that).

What is kept between chunks is bounded by the row count, never by the file's bytes: counts, the
first rows each check cites, positions of faulty rows (only when rows may be set aside), one
64-bit hash per row for duplicates (and per value of a column that could be an identifier), and a
reservoir of at most ``LEAKAGE_MAX_ROWS`` rows for the leakage statistics.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from conveyor.spec import ModelSpec
from conveyor.validation.context import ValidationContext
from conveyor.validation.leakage import LeakageSample, leakage_checks
from conveyor.validation.report import EXAMPLES, Check, Rows
from conveyor.validation.schema import ID_NAME, Parsed, column_checks, parse_feature, row_checks
from conveyor.validation.target import TargetTally
from conveyor.validation.values import FeatureTally

_MIX = np.uint64(0x9E3779B97F4A7C15)


def _hash_columns(frame: pd.DataFrame) -> np.ndarray:
    """One 64-bit hash per row of ``frame``; numbers hash by value whatever their dtype in a chunk
    (an int column with nulls in one chunk is float in that chunk only)."""
    if frame.shape[1] == 0:
        return np.zeros(len(frame), dtype=np.uint64)
    normalized = {name: _by_value(column) for name, column in frame.items()}
    return pd.util.hash_pandas_object(pd.DataFrame(normalized), index=False).to_numpy(dtype=np.uint64)


def _by_value(column: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        return column.astype("float64")
    if pd.api.types.infer_dtype(column, skipna=True) == "boolean":  # booleans with nulls
        return column.astype("float64")
    return column.astype(object)


class DuplicateTally:
    """``duplicates`` (warn): repeated rows, ignoring identifier columns that are unique per row."""

    def __init__(self, spec: ModelSpec, columns: list[str]) -> None:
        self.spec = spec
        # a row-number column (unique per row) would hide every duplicate: such identifiers are left out
        self.id_like = [c for c in columns if c in spec.identifiers or ID_NAME.search(c)]
        self.rest = [c for c in columns if c not in self.id_like]
        self.rest_hashes: list[np.ndarray] = []
        self.id_hashes: dict[str, list[np.ndarray]] = {c: [] for c in self.id_like}

    def add(self, frame: pd.DataFrame) -> None:
        self.rest_hashes.append(_hash_columns(frame[self.rest]))
        for name in self.id_like:
            self.id_hashes[name].append(_hash_columns(frame[[name]]))

    def checks(self, rows: Rows) -> list[Check]:
        total = sum(len(h) for h in self.rest_hashes)
        ids = {name: np.concatenate(parts) for name, parts in self.id_hashes.items()}
        keys = [name for name, hashes in ids.items() if np.unique(hashes).size < hashes.size]
        if not (self.rest or keys) or total < 2:
            return []
        hashed = np.concatenate(self.rest_hashes)
        with np.errstate(over="ignore"):
            for name in keys:
                hashed = hashed * _MIX + ids[name]
        _, first = np.unique(hashed, return_index=True)
        duplicated = np.ones(total, dtype=bool)
        duplicated[first] = False
        count = int(duplicated.sum())
        share = count / total
        limit = self.spec.validation.max_duplicate_share
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
        cited = rows.of(np.flatnonzero(duplicated)[:EXAMPLES])
        return [
            Check(
                "duplicates",
                "warn",
                False,
                f"{count} duplicate row(s) ({share:.1%}, above max_duplicate_share {limit:g}), e.g. rows "
                f"{', '.join(str(r) for r in cited)}",
                details={"count": count, "share": share, "rows": cited},
                value=share,
                threshold=limit,
            )
        ]


class FloatCategories(Exception):
    """A category feature read as floats holds a fraction in a later chunk: a file read whole
    writes every value of it as a float ("1.0"), so the chunks before must be read again that way."""

    def __init__(self, column: str) -> None:
        super().__init__(column)
        self.column = column


class FrameTally:
    """Every check of a file's rows (schema, values, duplicates, target, leakage), chunk by chunk.

    ``float_categories``: category features whose float values are written as floats ("1.0", not
    "1") because some value of the file is not integral (``FloatCategories``).
    """

    def __init__(
        self,
        spec: ModelSpec,
        context: ValidationContext | None,
        columns: list[str],
        *,
        keep_faults: bool,
        float_categories: frozenset[str] = frozenset(),
    ) -> None:
        self.spec, self.context, self.columns = spec, context, columns
        self.float_categories = set(float_categories)
        self.rows = 0
        self.features = {
            name: FeatureTally(name, feature, context, keep_faults=keep_faults)
            for name, feature in spec.features.items()
            if name in columns
        }
        self.duplicates = DuplicateTally(spec, columns)
        self.target = TargetTally(spec) if spec.target.column in columns else None
        self.leakage = LeakageSample()
        self._usable_target = True

    def add(self, frame: pd.DataFrame, rows: Rows) -> None:
        """Measure one chunk; ``rows`` numbers its rows as the file does."""
        if len(frame) == 0:
            return
        parsed: dict[str, Parsed] = {}
        for name, tally in self.features.items():
            column = self._as_read(name, frame[name])
            parsed[name] = parse_feature(column, tally.feature)
            tally.add(column, parsed[name], rows, self.rows)
        self.duplicates.add(frame)
        if self.target is not None:
            y = self.target.add(frame)
            self._usable_target = self._usable_target and y is not None
            if y is not None and self._usable_target:
                self.leakage.add(parsed, y)
        self.rows += len(frame)

    def _as_read(self, name: str, column: pd.Series) -> pd.Series:
        if self.spec.features[name].type != "category" or not pd.api.types.is_float_dtype(column):
            return column
        if name in self.float_categories:
            return column.astype("string")
        finite = column.dropna()
        if bool(((finite == np.floor(finite)) & (finite.abs() < 2**53)).all()):
            return column
        if self.rows:
            raise FloatCategories(name)
        self.float_categories.add(name)
        return column.astype("string")

    def checks(self, rows: Rows) -> list[Check]:
        """The checks in report order; ``rows`` numbers the file's rows (for the duplicates cited)."""
        checks = row_checks(self.rows, self.spec, self.context)
        if self.rows == 0:
            return checks
        checks.extend(column_checks(self.columns, self.spec))
        for tally in self.features.values():
            checks.extend(tally.checks())
        checks.extend(self.duplicates.checks(rows))
        if self.target is not None:
            found, positive, binary = self.target.checks()
            checks.extend(found)
            if positive is not None:
                checks.extend(leakage_checks(self.spec, self.leakage, positive, binary))
        return checks
