"""A batch chunk's capture lines (conveyor.batch.records): JSON whatever the values hold (quotes,
tabs, newlines, control characters, non-finite numbers, mixed object columns), masked as capture
masks, one line per row."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa

from conveyor.batch.records import CaptureLines, json_column, lines_bytes, object_fragments, repeated, text


def test_lines_are_json_whatever_the_values_hold() -> None:
    columns = {
        "note": pd.Series(['a"b\tc\n', None, "é", "x\\y", "plain\x01"]),
        "mixed": pd.Series([1, "two", None, 3.5, {"a": 1}], dtype=object),
        "flag": pd.Series([True, False, True, False, True]),
        "f": pd.Series([1.5, np.nan, np.inf, 2.5e-5, 1e20]),
        "n": pd.Series([1, 2, 3, 4, 5]),
        "s": pd.Series(["a", None, "b", "c", "d"], dtype="string"),
        "ssn": pd.Series(["1", "2", "3", "4", "5"]),
    }
    values = [json_column(column, masked=name == "ssn") for name, column in columns.items()]
    fragments = [text('{"id": "r", "inputs": ['), *object_fragments(list(columns), values), text("]}")]
    lines = lines_bytes(CaptureLines(fragments, 5), batch_rows=2).decode().splitlines()
    inputs = [json.loads(line)["inputs"][0] for line in lines]
    assert [row["note"] for row in inputs] == ['a"b\tc\n', None, "é", "x\\y", "plain\x01"]
    assert [row["mixed"] for row in inputs] == [1, "two", None, 3.5, "***"]
    assert [row["flag"] for row in inputs] == [True, False, True, False, True]
    assert [row["f"] for row in inputs] == [1.5, None, None, 2.5e-5, 1e20]
    assert [row["n"] for row in inputs] == [1, 2, 3, 4, 5] and [row["s"] for row in inputs][:2] == ["a", None]
    assert {row["ssn"] for row in inputs} == {"***"} and all(json.loads(line)["id"] == "r" for line in lines)


def test_sampled_lines_keep_their_rows() -> None:
    lines = CaptureLines([text("["), pa.array([1, 2, 3]), text("]")], 3).filter(np.array([True, False, True]))
    assert len(lines) == 2 and [json.loads(line) for line in lines_bytes(lines).splitlines()] == [[1], [3]]


def test_repeated_text_and_no_rows() -> None:
    assert repeated("ab", 3).to_pylist() == ["ab", "ab", "ab"] and repeated("", 2).to_pylist() == ["", ""]
    assert lines_bytes(CaptureLines([text("{}")], 0)) == b""
