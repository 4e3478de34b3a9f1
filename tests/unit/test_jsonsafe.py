"""conveyor.jsonsafe.json_safe: every value any report or record holds, as strict JSON."""

from __future__ import annotations

import enum
import json
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from types import MappingProxyType

import numpy as np
import pandas as pd

from conveyor.jsonsafe import json_safe


class Colour(enum.StrEnum):
    RED = "red"


@dataclass
class Opaque:
    x: int

    def __str__(self) -> str:
        return f"opaque {self.x}"


def test_containers_keys_and_numpy_values():
    value = {
        1: (np.int64(3), np.float32(0.5), np.bool_(True)),
        "array": np.array([[1, 2], [3, 4]]),
        "floats": np.array([1.5, np.nan]),
        "set": {np.int32(7)},
        "proxy": MappingProxyType({"a": np.uint8(1)}),
        np.int64(2): [],
    }
    assert json_safe(value) == {
        "1": [3, 0.5, True],
        "array": [[1, 2], [3, 4]],
        "floats": [1.5, None],
        "set": [7],
        "proxy": {"a": 1},
        "2": [],
    }
    converted = json_safe(value)
    assert type(converted["1"][0]) is int and type(converted["1"][2]) is bool


def test_missing_and_non_finite_values_become_null():
    for missing in (None, float("nan"), float("inf"), -float("inf"), np.float64("nan"), pd.NaT, pd.NA):
        assert json_safe(missing) is None, missing


def test_dates_bytes_strings_and_other_objects():
    assert json_safe(datetime(2024, 5, 1, 12, 30, tzinfo=UTC)) == "2024-05-01T12:30:00+00:00"
    assert json_safe(date(2024, 5, 1)) == "2024-05-01"
    assert json_safe(time(7, 5)) == "07:05:00"
    assert json_safe(pd.Timestamp("2024-05-01 12:30")) == "2024-05-01T12:30:00"
    assert json_safe(np.datetime64("2024-05-01T12:30:00")) == "2024-05-01T12:30:00"
    assert json_safe(b"caf\xc3\xa9 \xff") == "café \ufffd"
    assert json_safe(Colour.RED) is Colour.RED and json.dumps(json_safe(Colour.RED)) == '"red"'
    assert json_safe(Opaque(3)) == "opaque 3"
    assert json_safe(True) is True and json_safe(7) == 7 and json_safe("x") == "x" and json_safe(2.5) == 2.5


def test_output_is_strict_json_without_a_default():
    document = {"a": [np.float64("inf"), pd.Timestamp("2024-01-01"), Opaque(1), {np.int16(1): np.arange(3)}]}
    assert json.loads(json.dumps(json_safe(document), allow_nan=False)) == {
        "a": [None, "2024-01-01T00:00:00", "opaque 1", {"1": [0, 1, 2]}]
    }


def test_importing_it_loads_neither_numpy_nor_pandas():
    code = (
        "import sys, conveyor.jsonsafe as j; "
        "assert j.json_safe({'x': float('nan')}) == {'x': None}; "
        "print(sorted(m for m in ('numpy', 'pandas') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
