"""Reading the bytes of a dropped object: arrival, size, compression, file type, encoding,
delimiter, and CSV or Parquet parsing (truncated and ragged lines, repeated column names).

``read_object`` appends its checks and returns the frame, or None when the file cannot be read.
"""

from __future__ import annotations

import io
import re
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


def compression(data: bytes) -> str | None:
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    return None


def first_line(text: str) -> str:
    end = text.find("\n")
    return (text if end < 0 else text[:end]).rstrip("\r")


def bad_row_checks(bad_rows: list[BadRow], ending: bytes, lines: int, header_fields: int) -> list[Check]:
    """``truncated`` (the last line cut off) and ``ragged_rows``; ``ending`` is the file's last byte(s),
    ``lines`` its count of newlines."""
    checks: list[Check] = []
    ragged = list(bad_rows)
    last = ragged[-1]
    total_lines = lines + (0 if ending.endswith(b"\n") else 1)
    cut_off = not ending.endswith((b"\n", b"\r")) and last.actual < last.expected
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


def encoding_check(filename: str, byte: int, offset: int, line: int) -> Check:
    return Check(
        "encoding",
        "error",
        False,
        f"{filename} is not UTF-8: byte 0x{byte:02x} on line {line} (latin-1 or cp1252? re-save the file as UTF-8)",
        details={"byte_offset": offset, "line": line},
    )


def delimiter_check(filename: str, header: str) -> Check | None:
    """``delimiter``: a header with no comma but another separator."""
    if "," in header:
        return None
    for delimiter, label in _OTHER_DELIMITERS.items():
        if delimiter in header:
            return Check(
                "delimiter",
                "error",
                False,
                f"{filename} looks like {label}-separated (header {short(header, 60)!r}); "
                "Conveyor reads comma-separated CSV",
                details={"delimiter": delimiter, "header": header[:200]},
            )
    return None


def header_checks(filename: str, header: list[str], ending: bytes, bad_rows: list[BadRow]) -> list[Check]:
    """``duplicate_columns`` and ``final_newline``."""
    checks: list[Check] = []
    repeated = sorted({n for n in header if header.count(n) > 1})
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
    if not ending.endswith((b"\n", b"\r")) and not bad_rows:
        checks.append(Check("final_newline", "info", False, f"{filename} does not end with a newline"))
    return checks


def _read_csv(data: bytes, filename: str, checks: list[Check]) -> tuple[pd.DataFrame | None, Rows]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        checks.append(encoding_check(filename, data[exc.start], exc.start, line))
        return None, Rows()
    delimiter = delimiter_check(filename, first_line(text.removeprefix("\ufeff")))
    if delimiter is not None:
        checks.append(delimiter)
        return None, Rows()
    try:
        parsed = parse_csv(data)
    except DataError as exc:
        checks.append(unreadable_csv(filename, exc))
        return None, Rows()
    ending = data[-2:]
    if parsed.bad_rows:
        checks.extend(bad_row_checks(parsed.bad_rows, ending, data.count(b"\n"), len(parsed.header)))
    checks.extend(header_checks(filename, parsed.header, ending, parsed.bad_rows))
    return parsed.frame, _row_numbers(len(parsed.frame), parsed.bad_rows)


def unreadable_csv(filename: str, exc: DataError) -> Check:
    name = "empty_file" if exc.details.get("reason") == "empty" else "readable"
    return Check(name, "error", False, f"{filename}: {exc.message}", details=dict(exc.details))


def parquet_magic_check(filename: str, head: bytes, tail: bytes, size: int) -> Check | None:
    """``readable``: a Parquet file starts and ends with ``PAR1``."""
    if size >= 12 and head.startswith(b"PAR1") and tail.endswith(b"PAR1"):
        return None
    where = "start" if not head.startswith(b"PAR1") else "end (truncated?)"
    return Check(
        "readable",
        "error",
        False,
        f"{filename} is not a readable Parquet file: bad magic bytes at the {where}",
        details={"reason": "magic"},
    )


def unreadable_parquet(filename: str, exc: Exception) -> Check:
    # pyarrow names its input source (a buffer or a path): the reason is what follows
    reason = re.sub(r"^Could not open Parquet input source '[^']*': ", "", str(exc).strip())
    return Check(
        "readable",
        "error",
        False,
        f"{filename} is not a readable Parquet file: {short(reason, 160)}",
        details={"reason": "parse"},
    )


PARQUET_ERRORS: tuple[type[Exception], ...] = (OSError, ValueError, TypeError, IndexError, KeyError)


def _read_parquet(data: bytes, filename: str, checks: list[Check]) -> pd.DataFrame | None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    magic = parquet_magic_check(filename, data[:4], data[-4:], len(data))
    if magic is not None:
        checks.append(magic)
        return None
    try:
        return pq.read_table(io.BytesIO(data)).to_pandas()
    except (pa.ArrowException, *PARQUET_ERRORS) as exc:
        checks.append(unreadable_parquet(filename, exc))
        return None


def arrival_checks(
    filename: str,
    digest: str,
    size: int,
    head: bytes,
    blank: bool,
    spec: ModelSpec,
    context: ValidationContext | None,
    checks: list[Check],
) -> str | None:
    """The checks made before reading a row: a repeat, the size, emptiness, compression and the file
    type; appends them to ``checks`` and returns "csv" or "parquet", or None when the file cannot be read.

    ``digest`` is the object's sha256 (hex), ``head`` its first bytes, ``blank`` whether it holds only
    whitespace.
    """
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
    size_mb = size / (1024 * 1024)
    if size_mb > limit:
        checks.append(
            Check(
                "file_size",
                "error",
                False,
                f"{filename} is {size_mb:.1f} MB, above validation.max_file_mb {limit:g}; split it",
                details={"bytes": size, "max_file_mb": limit},
                value=size_mb,
                threshold=limit,
            )
        )
        return None
    if blank:
        checks.append(Check("empty_file", "error", False, f"{filename} is empty ({size} bytes)"))
        return None
    compressed = compression(head)
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
        return None
    suffix = PurePath(filename).suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    if suffix in CSV_SUFFIXES:
        return "csv"
    checks.append(
        Check(
            "file_type",
            "error",
            False,
            f"{filename}: unsupported file type {suffix or '(none)'}; use .csv or .parquet",
            details={"suffix": suffix},
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
    kind = arrival_checks(filename, digest, len(data), data[:8], not data.strip(), spec, context, checks)
    if kind == "parquet":
        return _read_parquet(data, filename, checks), Rows()
    if kind == "csv":
        return _read_csv(data, filename, checks)
    return None, Rows()
