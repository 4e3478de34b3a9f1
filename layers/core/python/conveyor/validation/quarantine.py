"""Setting bad rows aside: ``validation.max_bad_row_share``.

A file whose only errors are row-level faults (a value that does not parse, an undeclared
sentinel, a category not in ``allowed``, out-of-range values failing the file: the checks that
carry ``fault_rows``) is split when the share of rows at fault is at or below the tolerance:
those rows go to quarantine with a reason each, the rest is accepted. Any other error (file
level, a missing column, the target, leakage, a null share) rejects the whole file, as does a
share above the tolerance.
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import pandas as pd

from conveyor.jsonsafe import json_safe
from conveyor.tabular import PARQUET_SUFFIXES
from conveyor.validation.report import Check, Rows

ROW_COLUMN = "quarantine_row"  # the row's 1-based number in the uploaded file
REASON_COLUMN = "quarantine_reason"  # why it was set aside: "column: fault (value); ..."
_FAULTS = {
    "type": "does not parse as its type",
    "sentinel": "undeclared sentinel",
    "range": "outside the range",
    "allowed": "not an allowed value",
}


@dataclass
class RowSplit:
    """A file split by its row-level faults: the rows accepted and the rows set aside."""

    accepted: pd.DataFrame
    quarantined: pd.DataFrame  # the file's columns, then ROW_COLUMN and REASON_COLUMN


def faulty_rows(checks: list[Check], rows: int, tolerance: float) -> np.ndarray | None:
    """The rows to set aside, or None when the file is judged whole (no errors, an error that is
    not row-level, or more rows at fault than ``tolerance`` allows)."""
    failed = [c for c in checks if c.severity == "error" and not c.passed]
    if tolerance <= 0 or not failed or any(c.fault_rows is None for c in failed):
        return None
    mask = np.zeros(rows, dtype=bool)
    for check in failed:
        assert check.fault_rows is not None
        mask |= check.fault_rows
    count = int(mask.sum())
    if count in (0, rows) or count / rows > tolerance:
        return None
    return mask


def quarantined_rows(checks: list[Check], frame: pd.DataFrame, mask: np.ndarray, rows: Rows) -> pd.DataFrame:
    """The rows of ``mask`` with their file row number and the reason each was set aside."""
    positions = np.flatnonzero(mask)
    reasons: list[list[str]] = [[] for _ in positions]
    for check in _faulted(checks):
        assert check.fault_rows is not None
        column = frame[check.column] if check.column in frame.columns else None
        for i in np.flatnonzero(check.fault_rows[positions]):
            shown = "" if column is None else f" ({json_safe(column.iloc[positions[i]])!r})"
            reasons[i].append(f"{check.column}: {_FAULTS.get(check.name, check.name)}{shown}")
    part = frame.iloc[positions].reset_index(drop=True)
    return part.assign(**{ROW_COLUMN: rows.of(positions), REASON_COLUMN: ["; ".join(r) for r in reasons]})


def mark_quarantined(checks: list[Check], mask: np.ndarray, tolerance: float) -> dict[str, int]:
    """Turn the row-level errors into warnings that say their rows were set aside; append the
    ``quarantine`` check; return the rows set aside per check name."""
    counts: Counter[str] = Counter()
    for check in _faulted(checks):
        assert check.fault_rows is not None
        hit = int(check.fault_rows.sum())
        counts[check.name] += hit
        check.severity = "warn"
        check.details = {**check.details, "quarantined": hit}
        check.message = f"{check.message}; {hit} row(s) set aside in quarantine"
    count, total = int(mask.sum()), len(mask)
    share = count / total
    checks.append(
        Check(
            "quarantine",
            "warn",
            False,
            f"{count} of {total} rows ({share:.2%}) set aside in quarantine "
            f"(at or below validation.max_bad_row_share {tolerance:g}): "
            + ", ".join(f"{name} {n}" for name, n in sorted(counts.items())),
            details={
                "rows": count,
                "share": share,
                "max_bad_row_share": tolerance,
                "checks": dict(sorted(counts.items())),
            },
            value=count,  # rows set aside, held to none: a warning whenever rows were set aside
            threshold=0,
        )
    )
    return dict(sorted(counts.items()))


def still_failing(checks: list[Check], count: int) -> Check:
    """``quarantine`` (error): the rows left after setting ``count`` aside fail on their own."""
    failed = [c for c in checks if c.severity == "error" and not c.passed]
    shown = "; ".join(c.message for c in failed[:3])
    return Check(
        "quarantine",
        "error",
        False,
        f"setting {count} row(s) aside would leave rows that still fail: {shown}",
        details={"rows": count, "failures": [c.name for c in failed]},
        value=count,
        threshold=0,
    )


def part_bytes(frame: pd.DataFrame, filename: str) -> bytes:
    """A part of a split file, in the format of the file (CSV or Parquet)."""
    if PurePath(filename).suffix.lower() in PARQUET_SUFFIXES:
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        return buffer.getvalue()
    return csv_text(frame).encode("utf-8")


def csv_text(frame: pd.DataFrame, *, header: bool = True) -> str:
    """Rows as CSV; integral float columns (integers with nulls, as read) are written as integers:
    "3", not "3.0"."""
    written = frame.copy()
    for name in written.columns:
        column = written[name]
        if pd.api.types.is_float_dtype(column):
            finite = column.dropna()
            if bool(((finite == np.floor(finite)) & (finite.abs() < 2**53)).all()):
                written[name] = column.astype("Int64")
    return written.to_csv(index=False, header=header, lineterminator="\n")


class PartWriter:
    """One part of a split file written chunk by chunk: CSV text, or Parquet in the file's schema
    (``schema``: the source's Arrow schema) with ``extra`` columns after it."""

    def __init__(self, path: Path, filename: str, schema: Any = None) -> None:
        self.path, self.rows = path, 0
        self._parquet = PurePath(filename).suffix.lower() in PARQUET_SUFFIXES
        self._schema, self._started = schema, False
        self._writer: Any = None
        self._handle: Any = None
        if not self._parquet:
            self._handle = path.open("w", encoding="utf-8", newline="")

    def write(self, frame: pd.DataFrame, batch: Any = None) -> None:
        """Append rows: ``frame``, or for Parquet ``batch`` (Arrow) with the frame's other columns."""
        self.rows += len(frame)
        if self._handle is not None:
            self._handle.write(csv_text(frame, header=not self._started))
            self._started = True
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        if batch is None:
            table = pa.Table.from_pandas(frame, preserve_index=False)
        else:
            table = pa.Table.from_batches([batch])
            for name in frame.columns[len(table.column_names) :]:
                table = table.append_column(name, pa.array(frame[name].tolist()))
        if self._writer is None:
            self._writer = pq.ParquetWriter(str(self.path), table.schema)
        self._writer.write_table(table)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
        if self._writer is not None:
            self._writer.close()


def _faulted(checks: list[Check]) -> list[Check]:
    return [c for c in checks if c.severity == "error" and not c.passed and c.fault_rows is not None]
