"""Reading a dropped file on disk in bounded memory: one scan of its bytes (size, sha256, encoding,
header, line count), then its rows in chunks (pyarrow's streaming CSV reader, Parquet record
batches), whatever the file's size.

CSV column types are inferred the way pyarrow's whole-file reader infers them, so a chunk sees
the same types as the whole file would: the streaming reader infers from its first block, and a
later value that does not convert moves that column to the next type of pyarrow's inference order
(null, int64, bool, date, time, timestamp, float64, string) that holds it; the file is then read
again from the start (rare: it takes a column whose first block looked like another type).
"""

from __future__ import annotations

import codecs
import hashlib
import io
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import pandas as pd

from conveyor.errors import DataError
from conveyor.tabular import CSV_SUFFIXES, BadRow, pandas_names
from conveyor.validation.files import (
    PARQUET_ERRORS,
    bad_row_checks,
    delimiter_check,
    encoding_check,
    first_line,
    header_checks,
    parquet_magic_check,
    unreadable_csv,
    unreadable_parquet,
)
from conveyor.validation.report import Check, Rows

logger = logging.getLogger(__name__)

SCAN_BLOCK = 8 * 1024 * 1024
CSV_BLOCK = 16 * 1024 * 1024  # pyarrow's block: a chunk of rows is about this many bytes of CSV
PARQUET_BATCH_ROWS = 131_072
_HEADER_LIMIT = 1024 * 1024
_CONVERSION = re.compile(
    r"In CSV column #(\d+): (?:Row #\d+: )?CSV conversion error to [^:]+: invalid value '(.*)'", re.DOTALL
)


@dataclass
class FileScan:
    """What one pass over the bytes tells, before any row is parsed."""

    size: int = 0
    sha256: str = ""
    head: bytes = b""
    tail: bytes = b""
    blank: bool = True
    newlines: int = 0
    header: str = ""  # the first line (text files), BOM and line end removed
    bad_utf8: tuple[int, int, int] | None = None  # byte, offset, line of the first byte that is not UTF-8


def scan_file(path: Path, *, text: bool) -> FileScan:
    """Size, sha256, first and last bytes, blankness, newlines and (``text``) the first invalid UTF-8 byte."""
    scan = FileScan()
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")() if text else None
    first = bytearray()
    with path.open("rb") as handle:
        while block := handle.read(SCAN_BLOCK):
            if not scan.head:
                scan.head = block[:8]
            digest.update(block)
            scan.blank = scan.blank and not block.strip()
            if text and len(first) < _HEADER_LIMIT and b"\n" not in first:
                first.extend(block[: _HEADER_LIMIT - len(first)])
            if decoder is not None and scan.bad_utf8 is None:
                _decode(decoder, block, scan, final=False)
            scan.newlines += block.count(b"\n")
            scan.tail = (scan.tail + block)[-8:]
            scan.size += len(block)
    if decoder is not None and scan.bad_utf8 is None:
        _decode(decoder, b"", scan, final=True)
    scan.sha256 = digest.hexdigest()
    if text:
        scan.header = first_line(bytes(first).decode("utf-8", errors="replace").removeprefix("\ufeff"))
    return scan


def _decode(decoder: Any, block: bytes, scan: FileScan, *, final: bool) -> None:
    pending: bytes = decoder.getstate()[0]
    try:
        decoder.decode(block, final)
    except UnicodeDecodeError as exc:
        data = pending + block
        offset = scan.size - len(pending) + exc.start
        before = max(0, exc.start - len(pending))
        scan.bad_utf8 = (data[exc.start], offset, scan.newlines + block.count(b"\n", 0, before) + 1)


class Escalate(Exception):
    """A CSV column's first block looked like one type and a later value needs another."""

    def __init__(self, column: str, to: Any) -> None:
        super().__init__(column)
        self.column, self.to = column, to


def _inference_order() -> list[Any]:
    import pyarrow as pa

    return [
        pa.null(),
        pa.int64(),
        pa.bool_(),
        pa.date32(),
        pa.time32("s"),
        pa.timestamp("s"),
        pa.timestamp("ns"),
        pa.timestamp("s", tz="UTC"),
        pa.timestamp("ns", tz="UTC"),
        pa.float64(),
        pa.string(),
    ]


def _next_type(current: Any, value: str) -> Any:
    """The first type after ``current`` in pyarrow's inference order that converts ``value``."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    order = _inference_order()
    start = next((i for i, t in enumerate(order) if t == current), len(order) - 2)
    quoted = '"' + value.replace('"', '""') + '"'
    for candidate in order[start + 1 :]:
        try:
            pacsv.read_csv(
                io.BytesIO(f"c\n{quoted}\n".encode()),
                convert_options=pacsv.ConvertOptions(column_types={"c": candidate}),
            )
        except pa.ArrowInvalid:
            continue
        return candidate
    return pa.string()


@dataclass
class Chunk:
    frame: pd.DataFrame
    rows: Rows  # the file's row numbers of the frame's rows
    batch: Any = None  # the rows as an Arrow record batch (Parquet: written back in the file's schema)


@dataclass
class CsvSource:
    """A CSV file's rows, chunk by chunk; ``types`` grows when a later block needs a wider type."""

    path: Path
    block_size: int = CSV_BLOCK
    types: dict[str, Any] = field(default_factory=dict)
    header: list[str] = field(default_factory=list)
    bad_rows: list[BadRow] = field(default_factory=list)

    def chunks(self) -> Iterator[Chunk]:
        import pyarrow as pa
        import pyarrow.csv as pacsv

        self.bad_rows = []

        def skip(row: Any) -> str:
            number = None if row.number is None else int(row.number) - 1  # physical line -> data row
            self.bad_rows.append(
                BadRow(number, int(row.expected_columns), int(row.actual_columns), str(row.text)[:200])
            )
            return "skip"

        try:
            reader = pacsv.open_csv(
                str(self.path),
                read_options=pacsv.ReadOptions(block_size=self.block_size, use_threads=False),
                parse_options=pacsv.ParseOptions(invalid_row_handler=skip),
                convert_options=pacsv.ConvertOptions(column_types=self.types),
            )
        except pa.ArrowInvalid as exc:
            text = str(exc)
            reason = "empty" if "Empty CSV" in text else "parse"
            raise DataError(f"cannot parse CSV: {text.strip()[:200]}", details={"reason": reason}) from None
        self.header = [str(n) for n in reader.schema.names]
        names = pandas_names(self.header)
        next_row = 1
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except pa.ArrowInvalid as exc:
                found = _CONVERSION.search(str(exc))
                if found is None:
                    raise DataError(
                        f"cannot parse CSV: {str(exc).strip()[:200]}", details={"reason": "parse"}
                    ) from None
                index = int(found.group(1))
                raise Escalate(
                    self.header[index], _next_type(reader.schema.field(index).type, found.group(2))
                ) from None
            frame = pa.Table.from_batches([batch]).rename_columns(names).to_pandas()
            numbers = self._numbers(next_row, len(frame))
            if len(numbers):
                next_row = int(numbers[-1]) + 1
            yield Chunk(frame, Rows(numbers))

    def widen(self, wider: Escalate) -> None:
        """Read ``wider.column`` as ``wider.to`` from now on (the caller reads the file again)."""
        self.types[wider.column] = wider.to
        logger.info("CSV column read again with a wider type", extra={"column": wider.column, "type": str(wider.to)})

    def _numbers(self, start: int, count: int) -> np.ndarray:
        """The file's row numbers of ``count`` rows read from row ``start`` on, bad lines skipped."""
        skipped = np.array([b.row for b in self.bad_rows if b.row is not None and b.row >= start], dtype=np.int64)
        numbers = np.arange(start, start + count + len(skipped), dtype=np.int64)
        return numbers[~np.isin(numbers, skipped)][:count]

    def skipped(self) -> np.ndarray:
        return np.array(sorted(b.row for b in self.bad_rows if b.row is not None), dtype=np.int64)


@dataclass
class ParquetSource:
    """A Parquet file's rows, record batch by record batch."""

    path: Path
    batch_rows: int = PARQUET_BATCH_ROWS
    header: list[str] = field(default_factory=list)
    schema: Any = None

    def chunks(self) -> Iterator[Chunk]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(str(self.path))
        self.schema = parquet.schema_arrow
        self.header = [str(n) for n in self.schema.names]
        offset = 0
        for batch in parquet.iter_batches(batch_size=self.batch_rows):
            frame = pa.Table.from_batches([batch], schema=self.schema).to_pandas()
            yield Chunk(frame, Rows(np.arange(offset + 1, offset + len(frame) + 1)), batch)
            offset += len(frame)

    def skipped(self) -> np.ndarray:
        return np.zeros(0, dtype=np.int64)


Source = CsvSource | ParquetSource


def open_source(
    path: Path, filename: str, scan: FileScan, checks: list[Check], *, block_size: int, batch_rows: int
) -> Source | None:
    """The source of the file's rows, or None (with the check that says why) when it cannot be read."""
    if PurePath(filename).suffix.lower() in CSV_SUFFIXES:
        if scan.bad_utf8 is not None:
            checks.append(encoding_check(filename, *scan.bad_utf8))
            return None
        delimiter = delimiter_check(filename, scan.header)
        if delimiter is not None:
            checks.append(delimiter)
            return None
        return CsvSource(path, block_size)
    magic = parquet_magic_check(filename, scan.head, scan.tail, scan.size)
    if magic is not None:
        checks.append(magic)
        return None
    return ParquetSource(path, batch_rows)


def read_failure(source: Source, filename: str, exc: Exception) -> Check | None:
    """The check for a file that fails mid-read, or None when ``exc`` is not a read failure."""
    import pyarrow as pa

    if isinstance(source, CsvSource):
        return unreadable_csv(filename, exc) if isinstance(exc, DataError) else None
    if isinstance(exc, (pa.ArrowException, *PARQUET_ERRORS)):
        return unreadable_parquet(filename, exc)
    return None


def source_checks(source: Source, filename: str, scan: FileScan) -> list[Check]:
    """The file-level checks known once every row was read (CSV: bad lines, the header, the last newline)."""
    if not isinstance(source, CsvSource):
        return []
    ending = scan.tail[-2:]
    checks: list[Check] = []
    if source.bad_rows:
        checks.extend(bad_row_checks(source.bad_rows, ending, scan.newlines, len(source.header)))
    checks.extend(header_checks(filename, source.header, ending, source.bad_rows))
    return checks
