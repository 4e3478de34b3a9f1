"""Reading the bytes of a dropped object: arrival, size, compression, file type, encoding,
delimiter, and CSV or Parquet parsing (truncated and ragged lines, repeated column names).

``read_object`` appends its checks and returns the frame, or None when the file cannot be read.
"""

from __future__ import annotations

import io
from pathlib import PurePath

import numpy as np
import pandas as pd

from conveyor.errors import DataError
from conveyor.spec import ModelSpec
from conveyor.tabular import CSV_SUFFIXES, PARQUET_SUFFIXES, BadRow, parse_csv
from conveyor.validation.context import ValidationContext
from conveyor.validation.report import EXAMPLES, Check, Rows, short

_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)
_OTHER_DELIMITERS = {";": "';'", "\t": "tab", "|": "'|'"}


def _compression(data: bytes) -> str | None:
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    return None


def _first_line(text: str) -> str:
    end = text.find("\n")
    return (text if end < 0 else text[:end]).rstrip("\r")


def _bad_row_checks(bad_rows: list[BadRow], data: bytes, header_fields: int) -> list[Check]:
    checks: list[Check] = []
    ragged = list(bad_rows)
    last = ragged[-1]
    total_lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    cut_off = not data.endswith((b"\n", b"\r")) and last.actual < last.expected
    if cut_off and (last.row is None or last.row == total_lines - 1):
        ragged.pop()
        checks.append(
            Check(
                "truncated",
                "error",
                False,
                f"the last line (row {last.row}) is cut off: {last.actual} of {last.expected} fields and no final "
                "newline; was the upload interrupted?",
                details={"row": last.row, "fields": last.actual, "expected": last.expected, "text": last.text[:100]},
                value=last.actual,  # fields on the last line, held to the header's count
                threshold=last.expected,
            )
        )
    if ragged:
        examples = [{"row": b.row, "fields": b.actual, "text": b.text[:100]} for b in ragged[:EXAMPLES]]
        shown = ", ".join(f"row {b.row}: {b.actual} fields" for b in ragged[:EXAMPLES])
        checks.append(
            Check(
                "ragged_rows",
                "error",
                False,
                f"{len(ragged)} row(s) do not have the header's {header_fields} fields ({shown})",
                details={"count": len(ragged), "expected": header_fields, "examples": examples},
                value=len(ragged),
                threshold=0,
            )
        )
    return checks


def _row_numbers(total: int, bad_rows: list[BadRow]) -> Rows:
    skipped = sorted({b.row for b in bad_rows if b.row is not None})
    if not skipped:
        return Rows()
    numbers = np.arange(1, total + len(skipped) + 1)
    numbers = numbers[~np.isin(numbers, skipped)]
    return Rows(numbers[:total])


def _read_csv(data: bytes, filename: str, checks: list[Check]) -> tuple[pd.DataFrame | None, Rows]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        checks.append(
            Check(
                "encoding",
                "error",
                False,
                f"{filename} is not UTF-8: byte 0x{data[exc.start]:02x} on line {line} "
                "(latin-1 or cp1252? re-save the file as UTF-8)",
                details={"byte_offset": exc.start, "line": line},
            )
        )
        return None, Rows()
    header = _first_line(text.removeprefix("\ufeff"))
    if "," not in header:
        for delimiter, label in _OTHER_DELIMITERS.items():
            if delimiter in header:
                checks.append(
                    Check(
                        "delimiter",
                        "error",
                        False,
                        f"{filename} looks like {label}-separated (header {short(header, 60)!r}); "
                        "Conveyor reads comma-separated CSV",
                        details={"delimiter": delimiter, "header": header[:200]},
                    )
                )
                return None, Rows()
    try:
        parsed = parse_csv(data)
    except DataError as exc:
        name = "empty_file" if exc.details.get("reason") == "empty" else "readable"
        checks.append(Check(name, "error", False, f"{filename}: {exc.message}", details=dict(exc.details)))
        return None, Rows()
    if parsed.bad_rows:
        checks.extend(_bad_row_checks(parsed.bad_rows, data, len(parsed.header)))
    repeated = sorted({n for n in parsed.header if parsed.header.count(n) > 1})
    if repeated:
        checks.append(
            Check(
                "duplicate_columns",
                "error",
                False,
                f"column name(s) repeated in the header: {', '.join(repr(n) for n in repeated)}",
                column=repeated[0],
                details={"columns": repeated},
                value=len(repeated),
                threshold=0,
            )
        )
    if not data.endswith((b"\n", b"\r")) and not parsed.bad_rows:
        checks.append(Check("final_newline", "info", False, f"{filename} does not end with a newline"))
    return parsed.frame, _row_numbers(len(parsed.frame), parsed.bad_rows)


def _read_parquet(data: bytes, filename: str, checks: list[Check]) -> pd.DataFrame | None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if len(data) < 12 or not data.startswith(b"PAR1") or not data.endswith(b"PAR1"):
        where = "start" if not data.startswith(b"PAR1") else "end (truncated?)"
        checks.append(
            Check(
                "readable",
                "error",
                False,
                f"{filename} is not a readable Parquet file: bad magic bytes at the {where}",
                details={"reason": "magic"},
            )
        )
        return None
    try:
        return pq.read_table(io.BytesIO(data)).to_pandas()
    except (pa.ArrowException, OSError, ValueError, TypeError, IndexError, KeyError) as exc:
        checks.append(
            Check(
                "readable",
                "error",
                False,
                f"{filename} is not a readable Parquet file: {short(str(exc).strip(), 160)}",
                details={"reason": "parse"},
            )
        )
        return None


def read_object(
    data: bytes,
    filename: str,
    spec: ModelSpec,
    context: ValidationContext | None,
    digest: str,
    checks: list[Check],
) -> tuple[pd.DataFrame | None, Rows]:
    """The object as a frame and its row numbers, or None when it cannot be read; appends the
    file-level checks to ``checks``. ``digest`` is the object's sha256 (hex)."""
    if context is not None and digest in context.accepted_hashes:
        checks.append(
            Check(
                "repeated_arrival",
                "error",
                False,
                f"{filename} repeats data already accepted (sha256 {digest[:12]}...)",
                details={"sha256": digest},
            )
        )
    limit = spec.validation.max_file_mb
    size_mb = len(data) / (1024 * 1024)
    if size_mb > limit:
        checks.append(
            Check(
                "file_size",
                "error",
                False,
                f"{filename} is {size_mb:.1f} MB, above validation.max_file_mb {limit:g}; split it",
                details={"bytes": len(data), "max_file_mb": limit},
                value=size_mb,
                threshold=limit,
            )
        )
        return None, Rows()
    if not data.strip():
        checks.append(Check("empty_file", "error", False, f"{filename} is empty ({len(data)} bytes)"))
        return None, Rows()
    compressed = _compression(data)
    if compressed is not None:
        checks.append(
            Check(
                "compressed",
                "error",
                False,
                f"{filename} is {compressed}-compressed; decompress it and drop the .csv or .parquet",
                details={"compression": compressed},
            )
        )
        return None, Rows()
    suffix = PurePath(filename).suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        return _read_parquet(data, filename, checks), Rows()
    if suffix in CSV_SUFFIXES:
        return _read_csv(data, filename, checks)
    checks.append(
        Check(
            "file_type",
            "error",
            False,
            f"{filename}: unsupported file type {suffix or '(none)'}; use .csv or .parquet",
            details={"suffix": suffix},
        )
    )
    return None, Rows()
