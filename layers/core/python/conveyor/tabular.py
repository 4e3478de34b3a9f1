"""Tables in, model inputs out: reading CSV/Parquet and shaping frames for sklearn and ONNX.

Conventions shared by training and serving (one place, so they cannot drift apart):

- number, integer and boolean features become float32 (booleans 1.0/0.0; missing -> NaN,
  which the pipeline's median imputer fills);
- category features become str (pandas' string dtype in the frame, object arrays for ONNX);
  a missing category becomes ``""`` (the serving path sends
  ``""`` for a null too), which the pipeline imputes to a constant; integral numbers are
  written without a decimal point (``3``, not ``3.0``), as the serving path does for ints.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

import numpy as np
import pandas as pd

from conveyor.errors import DataError
from conveyor.spec import ModelSpec

MISSING_CATEGORY = ""
BOOLEAN_TRUE = frozenset({"true", "t", "yes", "y", "1", "1.0"})
BOOLEAN_FALSE = frozenset({"false", "f", "no", "n", "0", "0.0"})
_OPS = {
    "gt": np.greater,
    "ge": np.greater_equal,
    "lt": np.less,
    "le": np.less_equal,
    "eq": np.equal,
    "ne": np.not_equal,
}


def read_table(data: bytes, filename: str) -> pd.DataFrame:
    """Read CSV or Parquet bytes into a DataFrame (format chosen by the file suffix).

    Raises
    ------
    DataError
        Naming the file and the reason (unknown suffix, empty, not UTF-8, unparseable).
    """
    suffix = PurePath(filename).suffix.lower()
    if not data:
        raise DataError(f"{filename}: file is empty", details={"file": filename, "reason": "empty"})
    if suffix == ".csv":
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(
                f"{filename}: not UTF-8 text (byte {exc.start})", details={"file": filename, "reason": "encoding"}
            ) from None
        try:
            return pd.read_csv(io.BytesIO(data), encoding="utf-8")
        except pd.errors.EmptyDataError:
            raise DataError(f"{filename}: no columns to read", details={"file": filename, "reason": "empty"}) from None
        except (pd.errors.ParserError, ValueError) as exc:
            raise DataError(
                f"{filename}: cannot parse CSV: {str(exc).strip()[:200]}", details={"file": filename, "reason": "parse"}
            ) from None
    if suffix in (".parquet", ".pq"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            return pq.read_table(io.BytesIO(data)).to_pandas()
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise DataError(
                f"{filename}: cannot parse Parquet: {str(exc).strip()[:200]}",
                details={"file": filename, "reason": "parse"},
            ) from None
    raise DataError(
        f"{filename}: unsupported file type {suffix or '(none)'}; use .csv or .parquet",
        details={"file": filename, "reason": "format"},
    )


def _as_boolean(column: pd.Series, name: str) -> pd.Series:
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
        return column.astype("float64")
    text = column.astype("string").str.strip().str.lower()
    known = text.isin(BOOLEAN_TRUE | BOOLEAN_FALSE) | text.isna()
    if not bool(known.all()):
        bad = column[~known].head(5).tolist()
        raise DataError(f"column {name!r}: not boolean, e.g. {bad}", details={"column": name, "examples": bad})
    return text.map(lambda v: 1.0 if v in BOOLEAN_TRUE else (0.0 if v in BOOLEAN_FALSE else np.nan)).astype("float64")


def _as_number(column: pd.Series, name: str) -> pd.Series:
    if pd.api.types.is_bool_dtype(column):
        return column.astype("float64")
    converted = pd.to_numeric(column, errors="coerce")
    bad = converted.isna() & column.notna()
    if bool(bad.any()):
        examples = column[bad].head(5).tolist()
        raise DataError(
            f"column {name!r}: not numeric, e.g. {examples}", details={"column": name, "examples": examples}
        )
    return converted.astype("float64")


def category_strings(column: pd.Series) -> pd.Series:
    """A column as str categories: nulls -> ``""``, integral floats without ``.0``."""
    if pd.api.types.is_float_dtype(column):
        finite = column.dropna()
        if bool((finite == np.floor(finite)).all()):
            column = column.astype("Int64")
    if pd.api.types.is_bool_dtype(column):
        column = column.astype("Int64")
    as_text = column.astype("string").fillna(MISSING_CATEGORY)
    return pd.Series(as_text.to_numpy(dtype=object), index=column.index, name=column.name)


def typed_frame(df: pd.DataFrame, feature_types: Mapping[str, str]) -> pd.DataFrame:
    """Columns ``feature_types`` (name -> spec type) of ``df``, in that order, cast for the model.

    Raises
    ------
    DataError
        If a column is missing or a value does not parse as its type.
    """
    missing = [name for name in feature_types if name not in df.columns]
    if missing:
        raise DataError(f"missing feature column(s): {', '.join(missing)}", details={"columns": missing})
    columns: dict[str, Any] = {}
    for name, kind in feature_types.items():
        column = df[name]
        if kind == "category":
            columns[name] = category_strings(column)
        elif kind == "boolean":
            columns[name] = _as_boolean(column, name).astype(np.float32)
        else:
            columns[name] = _as_number(column, name).astype(np.float32)
    return pd.DataFrame(columns, index=df.index)


def feature_frame(df: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """Exactly the spec's features, in spec order, cast as described in the module docstring."""
    return typed_frame(df, spec.feature_types())


def inputs_from_frame(frame: pd.DataFrame, feature_types: Mapping[str, str]) -> dict[str, np.ndarray]:
    """ONNX input arrays (n, 1) from a typed frame: float32, or object (str) for categories."""
    inputs: dict[str, np.ndarray] = {}
    for name, kind in feature_types.items():
        values = frame[name].to_numpy()
        if kind == "category":
            inputs[name] = np.asarray(values, dtype=object).reshape(-1, 1)
        else:
            inputs[name] = np.asarray(values, dtype=np.float32).reshape(-1, 1)
    return inputs


def onnx_inputs(frame: pd.DataFrame, spec: ModelSpec) -> dict[str, np.ndarray]:
    """Per-feature arrays shaped (n, 1), the same format the serving path feeds onnxruntime."""
    return inputs_from_frame(frame, spec.feature_types())


def target_vector(df: pd.DataFrame, spec: ModelSpec) -> np.ndarray:
    """The target as a numpy array; ``positive_when`` turns it into int64 0/1.

    Raises
    ------
    DataError
        If the target column is missing, has nulls, or is not numeric when it must be.
    """
    name = spec.target.column
    if name not in df.columns:
        raise DataError(f"target column {name!r} is missing", details={"column": name})
    column = df[name]
    if bool(column.isna().any()):
        count = int(column.isna().sum())
        raise DataError(f"target column {name!r} has {count} null value(s)", details={"column": name, "nulls": count})
    condition = spec.target.positive_when
    if condition is not None:
        if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            raise DataError(
                f"target column {name!r} must be numeric for positive_when, got {column.dtype}",
                details={"column": name, "dtype": str(column.dtype)},
            )
        values = column.to_numpy(dtype=np.float64)
        return np.asarray(_OPS[condition.op](values, condition.value), dtype=np.int64)
    if spec.task == "regression":
        if not pd.api.types.is_numeric_dtype(column):
            raise DataError(f"target column {name!r} must be numeric for regression", details={"column": name})
        return column.to_numpy(dtype=np.float64)
    if pd.api.types.is_bool_dtype(column):
        return column.to_numpy(dtype=np.int64)
    if pd.api.types.is_integer_dtype(column):
        return column.to_numpy(dtype=np.int64)
    if pd.api.types.is_float_dtype(column):
        values = column.to_numpy(dtype=np.float64)
        if bool(np.all(values == np.floor(values))):
            return values.astype(np.int64)
        raise DataError(
            f"target column {name!r} has fractional values; add target.positive_when to binarize it",
            details={"column": name},
        )
    return column.astype("string").to_numpy(dtype=object).astype(str)
