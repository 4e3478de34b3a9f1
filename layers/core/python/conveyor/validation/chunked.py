"""``validate_file``: the data gate on a file on disk, in bounded memory whatever its size.

The same checks and verdicts as ``validate_and_split`` on the file's bytes (``FrameTally``
measures chunks; a file read whole is one chunk). The size is checked before any row is read; a
split file's parts are written chunk by chunk, in a second pass over the rows that also checks
that the rows left pass on their own.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePath

import numpy as np

from conveyor.spec import ModelSpec
from conveyor.tabular import CSV_SUFFIXES
from conveyor.validation.context import ValidationContext
from conveyor.validation.files import arrival_checks
from conveyor.validation.frame import FloatCategories, FrameTally
from conveyor.validation.quarantine import (
    ROW_COLUMN,
    PartWriter,
    faulty_rows,
    mark_quarantined,
    quarantined_rows,
    still_failing,
)
from conveyor.validation.report import Check, Rows, ValidationReport, build_report, internal_error
from conveyor.validation.stream import (
    CSV_BLOCK,
    PARQUET_BATCH_ROWS,
    SCAN_BLOCK,
    CsvSource,
    Escalate,
    FileScan,
    Source,
    open_source,
    read_failure,
    scan_file,
    source_checks,
)

logger = logging.getLogger(__name__)


@dataclass
class FileSplit:
    """A file split by its row-level faults, as two files written beside each other."""

    accepted: Path
    quarantined: Path
    accepted_rows: int
    quarantined_rows: int


def file_sha256(path: Path) -> str:
    """The sha256 (hex) of a file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(SCAN_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def validate_file(
    path: Path,
    filename: str,
    spec: ModelSpec,
    *,
    context: ValidationContext | None = None,
    parts_dir: Path | None = None,
    block_size: int = CSV_BLOCK,
    batch_rows: int = PARQUET_BATCH_ROWS,
) -> tuple[ValidationReport, FileSplit | None]:
    """Validate the file at ``path`` (named ``filename`` when dropped); never raises.

    Parameters
    ----------
    parts_dir
        Where a split file's parts go (a new temporary folder when None).
    block_size, batch_rows
        The chunk: bytes of CSV, rows of Parquet.
    """
    checks: list[Check] = []
    scan = FileScan()
    try:
        scan = scan_file(path, text=PurePath(filename).suffix.lower() in CSV_SUFFIXES)
        kind = arrival_checks(filename, scan.sha256, scan.size, scan.head, scan.blank, spec, context, checks)
        source = None
        if kind is not None:
            source = open_source(path, filename, scan, checks, block_size=block_size, batch_rows=batch_rows)
        tally = None if source is None else _tally(source, filename, spec, context, checks)
        if source is None or tally is None:
            return build_report(checks, 0, [], filename, scan.sha256), None
        checks.extend(source_checks(source, filename, scan))
        checks.extend(tally.checks(Rows.skipping(source.skipped())))
        return _verdict(source, tally, checks, spec, context, filename, scan.sha256, parts_dir)
    except Exception as exc:  # the gate answers on any input: a bug must quarantine, not crash the pipeline
        logger.exception("validation failed", extra={"file": filename})
        checks.append(internal_error(filename, exc))
        return build_report(checks, 0, [], filename, scan.sha256), None


def _tally(
    source: Source, filename: str, spec: ModelSpec, context: ValidationContext | None, checks: list[Check]
) -> FrameTally | None:
    """Every row measured; None (with the check that says why) when the file cannot be read."""
    keep_faults = spec.validation.max_bad_row_share > 0
    floats: set[str] = set()
    while True:
        tally: FrameTally | None = None
        try:
            for chunk in source.chunks():
                if tally is None:
                    columns = [str(c) for c in chunk.frame.columns]
                    tally = FrameTally(
                        spec, context, columns, keep_faults=keep_faults, float_categories=frozenset(floats)
                    )
                tally.add(chunk.frame, chunk.rows)
            if tally is None:  # a header and no rows
                tally = FrameTally(spec, context, list(source.header), keep_faults=keep_faults)
            return tally
        except FloatCategories as fractions:
            floats.add(fractions.column)
        except Escalate as wider:
            if not isinstance(source, CsvSource):  # only CSV infers types
                raise
            source.widen(wider)
        except Exception as exc:
            failure = read_failure(source, filename, exc)
            if failure is None:
                raise
            checks.append(failure)
            return None


def _verdict(
    source: Source,
    tally: FrameTally,
    checks: list[Check],
    spec: ModelSpec,
    context: ValidationContext | None,
    filename: str,
    digest: str,
    parts_dir: Path | None,
) -> tuple[ValidationReport, FileSplit | None]:
    """The report; with rows set aside, the parts too (only when the rest passes on its own)."""
    columns, total = tally.columns, tally.rows
    tolerance = spec.validation.max_bad_row_share
    mask = faulty_rows(checks, total, tolerance)
    if mask is None:
        return build_report(checks, total, columns, filename, digest), None
    folder = parts_dir or Path(tempfile.mkdtemp(prefix="conveyor-split-"))
    folder.mkdir(parents=True, exist_ok=True)
    split, rest = _write_parts(
        source,
        checks,
        mask,
        spec,
        context,
        frozenset(tally.float_categories),
        folder / f"accepted-{filename}",
        folder / filename,
    )
    if any(c.severity == "error" and not c.passed for c in rest):
        split.accepted.unlink(missing_ok=True)
        split.quarantined.unlink(missing_ok=True)
        checks.append(still_failing(rest, int(mask.sum())))
        return build_report(checks, total, columns, filename, digest), None
    counts = mark_quarantined(checks, mask, tolerance)
    report = build_report(
        checks, total, columns, filename, digest, quarantined=counts, rows_quarantined=split.quarantined_rows
    )
    return report, split


def _write_parts(
    source: Source,
    checks: list[Check],
    mask: np.ndarray,
    spec: ModelSpec,
    context: ValidationContext | None,
    floats: frozenset[str],
    accepted_path: Path,
    quarantined_path: Path,
) -> tuple[FileSplit, list[Check]]:
    """Second pass: the accepted and quarantined rows written chunk by chunk, and the checks of the
    accepted rows on their own."""
    schema = getattr(source, "schema", None)
    accepted, quarantined = (
        PartWriter(accepted_path, accepted_path.name, schema),
        PartWriter(quarantined_path, quarantined_path.name, schema),
    )
    rest: FrameTally | None = None
    set_aside: list[np.ndarray] = []
    offset = 0
    try:
        for chunk in source.chunks():
            frame, n = chunk.frame, len(chunk.frame)
            faulty = mask[offset : offset + n]
            kept = ~faulty
            part = frame[kept].reset_index(drop=True)
            if rest is None:
                columns = [str(c) for c in frame.columns]
                rest = FrameTally(spec, context, columns, keep_faults=False, float_categories=floats)
            rest.add(part, chunk.rows.subset(kept))
            accepted.write(part, None if chunk.batch is None else chunk.batch.filter(kept))
            if bool(faulty.any()):
                sliced = [_slice(c, offset, n) for c in checks]
                aside = quarantined_rows(sliced, frame, faulty, chunk.rows)
                set_aside.append(aside[ROW_COLUMN].to_numpy(dtype=np.int64))
                quarantined.write(aside, None if chunk.batch is None else chunk.batch.filter(faulty))
            offset += n
    finally:
        accepted.close()
        quarantined.close()
    assert rest is not None
    skipped = np.concatenate([source.skipped(), *set_aside])
    split = FileSplit(accepted_path, quarantined_path, accepted.rows, quarantined.rows)
    return split, rest.checks(Rows.skipping(skipped))


def _slice(check: Check, offset: int, rows: int) -> Check:
    if check.fault_rows is None:
        return check
    return dataclasses.replace(check, fault_rows=check.fault_rows[offset : offset + rows])
