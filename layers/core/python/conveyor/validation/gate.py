"""The gate's entry points: ``validate_bytes`` (an object as dropped) and ``validate_frame`` (a frame
already read), and the order the layers of checks run in: file, schema, values, target, leakage."""

from __future__ import annotations

import hashlib
import logging

import pandas as pd

from conveyor.spec import ModelSpec
from conveyor.validation.context import ValidationContext
from conveyor.validation.files import read_object
from conveyor.validation.frame import FrameTally
from conveyor.validation.quarantine import RowSplit, faulty_rows, mark_quarantined, quarantined_rows, still_failing
from conveyor.validation.report import Check, Rows, ValidationReport, build_report, internal_error

logger = logging.getLogger(__name__)


def validate_bytes(
    data: bytes, filename: str, spec: ModelSpec, *, context: ValidationContext | None = None
) -> ValidationReport:
    """Read and validate a CSV/Parquet object; never raises: an unusable file gives a rejected report.

    Parameters
    ----------
    data, filename
        The object's bytes and its name (the suffix chooses CSV or Parquet).
    spec
        The model spec: required columns, types, ranges and the ``validation`` thresholds.
    context
        Earlier arrivals and the reference profile, for the arrival checks (optional).
    """
    return validate_and_split(data, filename, spec, context=context)[0]


def validate_and_split(
    data: bytes, filename: str, spec: ModelSpec, *, context: ValidationContext | None = None
) -> tuple[ValidationReport, RowSplit | None]:
    """``validate_bytes``, and the file split into accepted and quarantined rows when rows were set
    aside (``validation.max_bad_row_share``; see ``conveyor.validation.quarantine``)."""
    digest = hashlib.sha256(data).hexdigest()
    checks: list[Check] = []
    try:
        frame, rows = read_object(data, filename, spec, context, digest, checks)
        if frame is None:
            return build_report(checks, 0, [], filename, digest), None
        checks.extend(_frame_checks(frame, spec, context, rows))
        return _verdict(frame, rows, checks, spec, context, filename, digest)
    except Exception as exc:  # the gate answers on any input: a bug must quarantine, not crash the pipeline
        logger.exception("validation failed", extra={"file": filename})
        checks.append(internal_error(filename, exc))
        return build_report(checks, 0, [], filename, digest), None


def _verdict(
    frame: pd.DataFrame,
    rows: Rows,
    checks: list[Check],
    spec: ModelSpec,
    context: ValidationContext | None,
    filename: str,
    digest: str,
) -> tuple[ValidationReport, RowSplit | None]:
    """The report of a file read; with rows set aside, the split too (only when the rest passes on its own)."""
    columns = [str(c) for c in frame.columns]
    tolerance = spec.validation.max_bad_row_share
    mask = faulty_rows(checks, len(frame), tolerance)
    if mask is None:
        return build_report(checks, len(frame), columns, filename, digest), None
    kept = ~mask
    accepted = frame[kept].reset_index(drop=True)
    rest = _frame_checks(accepted, spec, context, rows.subset(kept))
    if any(c.severity == "error" and not c.passed for c in rest):
        checks.append(still_failing(rest, int(mask.sum())))
        return build_report(checks, len(frame), columns, filename, digest), None
    split = RowSplit(accepted=accepted, quarantined=quarantined_rows(checks, frame, mask, rows))
    counts = mark_quarantined(checks, mask, tolerance)
    report = build_report(
        checks, len(frame), columns, filename, digest, quarantined=counts, rows_quarantined=int(mask.sum())
    )
    return report, split


def validate_frame(
    df: pd.DataFrame, spec: ModelSpec, *, source: str, context: ValidationContext | None = None
) -> ValidationReport:
    """Check a frame against the spec; returns a report, never raises on bad data."""
    return build_report(_frame_checks(df, spec, context, Rows()), len(df), [str(c) for c in df.columns], source)


def _frame_checks(df: pd.DataFrame, spec: ModelSpec, context: ValidationContext | None, rows: Rows) -> list[Check]:
    """Every check of a frame read whole: one chunk of ``conveyor.validation.frame.FrameTally``."""
    tally = FrameTally(spec, context, [str(c) for c in df.columns], keep_faults=True)
    tally.add(df, rows)
    return tally.checks(rows)
