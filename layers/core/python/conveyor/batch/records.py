"""A chunk's capture records as JSON lines, without a Python object per row: one record per row in
the format of ``docs/capture.md`` (so the labels join each row by its request_id).

Each line is written by pyarrow's CSV writer (C++) from a table whose columns are the record's
fragments in order: constant text (keys and punctuation), values as JSON text, and numbers as they
are (the writer prints them: shortest round trip, valid JSON; a missing or non-finite one is
written ``null``). The writer's delimiter is a tab, which JSON allows between any two tokens, and
it refuses values holding a quote (with no quoting), so a quote is written as ``\\x01`` and put
back in the whole buffer at the end: after JSON escaping no value holds a raw control character.
Values that need escapes, and object columns of mixed types, go through ``json.dumps`` (only those
values).
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from conveyor.contract import MASK

QUOTE = "\x01"  # stands for '"' in the fragments (the CSV writer refuses quotes)
NULL = "null"
_ESCAPE = r'[\x00-\x1f"\\]'  # what a JSON string literal cannot hold as is
_OPTIONS = pacsv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none", null_string=NULL)

Fragment: TypeAlias = "pa.Array | str"  # a column of the record, or the same text on every row


def text(value: str) -> str:
    """Constant JSON text as a fragment."""
    return value.replace('"', QUOTE)


def json_strings(values: pa.Array) -> pa.Array:
    """Each string as a JSON string literal (a fragment); a null stays null."""
    values = values.cast(pa.string())
    needs = pc.fill_null(pc.match_substring_regex(values, _ESCAPE), False)
    if pc.any(needs).as_py():
        escaped = [json.dumps(v)[1:-1] for v in pc.filter(values, needs).to_pylist()]
        values = pc.replace_with_mask(values, needs, pa.array(escaped, pa.string()))
        values = pc.replace_substring(values, '"', QUOTE)
    return pc.binary_join_element_wise(QUOTE, values, QUOTE, "")


def json_numbers(values: np.ndarray) -> pa.Array:
    """Numbers as they are, a missing or non-finite one null (the writer prints both as JSON)."""
    array = pa.array(values, from_pandas=True)
    if pa.types.is_floating(array.type):
        finite = pc.is_finite(array)
        if not pc.all(finite).as_py():
            array = pc.if_else(finite, array, pa.nulls(len(array), array.type))
    return array


def json_column(column: pd.Series, masked: bool) -> Fragment:
    """One input column as capture records hold it (``ServingContract.mask``): ``"***"`` when
    masked, null for a missing or non-finite number, JSON scalars otherwise (anything else masked)."""
    if masked:
        return text(json.dumps(MASK))
    if pd.api.types.is_bool_dtype(column):
        return pa.array(column, from_pandas=True)
    if pd.api.types.is_numeric_dtype(column):
        return json_numbers(column.to_numpy(dtype=np.float64 if pd.api.types.is_float_dtype(column) else None))
    if pd.api.types.is_string_dtype(column) and not pd.api.types.is_object_dtype(column):
        return json_strings(pa.array(column, from_pandas=True))
    try:  # an object column of strings (and nulls) converts as a whole
        strings = pa.array(column, from_pandas=True, type=pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        rendered = [_scalar(v) for v in column.tolist()]
        return pa.array([None if v is None else text(v) for v in rendered], pa.string())
    return json_strings(strings)


def _scalar(value: Any) -> str | None:
    """A value of a mixed object column as JSON (None: null)."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return None
    if isinstance(value, str | bool | int | float):
        return json.dumps(value)
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return json.dumps(MASK)


def object_fragments(names: Sequence[str], values: Sequence[Fragment]) -> list[Fragment]:
    """The fragments of ``{"name": value, ...}``."""
    if not names:
        return [text("{}")]
    fragments: list[Fragment] = []
    for i, (name, value) in enumerate(zip(names, values, strict=True)):
        fragments += [text(("{" if i == 0 else ", ") + json.dumps(str(name)) + ":"), value]
    return [*fragments, "}"]


def repeated(value: str, rows: int) -> pa.Array:
    """``value`` on every row, built from its buffers (``pa.repeat`` copies string by string)."""
    data = value.encode()
    large = len(data) * rows >= 2**31
    offsets = np.arange(0, len(data) * (rows + 1), len(data) or 1, dtype=np.int64 if large else np.int32)[: rows + 1]
    if not data:
        offsets = np.zeros(rows + 1, dtype=np.int32)
    kind = pa.large_string() if large else pa.string()
    return pa.Array.from_buffers(kind, rows, [None, pa.py_buffer(offsets), pa.py_buffer(data * rows)])


@dataclass(frozen=True)
class CaptureLines:
    """A chunk's capture lines, unwritten: the records' fragments in order, a row per line."""

    fragments: list[Fragment]
    rows: int

    def __len__(self) -> int:
        return self.rows

    def filter(self, keep: np.ndarray) -> CaptureLines:
        """The lines of the rows ``keep`` marks."""
        mask = pa.array(keep)
        kept = [f if isinstance(f, str) else f.filter(mask) for f in self.fragments]
        return CaptureLines(kept, int(np.count_nonzero(keep)))


def lines_bytes(lines: CaptureLines, batch_rows: int = 65536) -> bytes:
    """The lines as one buffer, each ending in a newline; written ``batch_rows`` at a time, so the
    constant text is repeated for one batch only, and a chunk's lines are held about twice."""
    parts = []
    for start in range(0, lines.rows, batch_rows):
        size = min(batch_rows, lines.rows - start)
        columns = [repeated(f, size) if isinstance(f, str) else f.slice(start, size) for f in lines.fragments]
        buffer = io.BytesIO()
        pacsv.write_csv(pa.table(columns, names=[f"f{i}" for i in range(len(columns))]), buffer, _OPTIONS)
        parts.append(buffer.getvalue().replace(QUOTE.encode(), b'"'))
    return b"".join(parts)
