"""Tables in, model inputs out: reading CSV/Parquet and shaping frames for sklearn and ONNX.

Conventions shared by training and serving (one place, so they cannot drift apart):

- number, integer and boolean features become float32 (booleans 1.0/0.0; missing -> NaN,
  which the pipeline's median imputer fills);
- category features become str (pandas' string dtype in the frame, object arrays for ONNX);
  a missing category becomes ``""`` (the serving path sends
  ``""`` for a null too), which the pipeline imputes to a constant; integral numbers are
  written without a decimal point (``3``, not ``3.0``), as the serving path does for ints;
  a feature's ``mapping`` (renamed codes) is applied after that, in ``feature_frame``;
- datetime features become float32 seconds since 1970-01-01 UTC (strings are parsed as
  ISO 8601, naive times taken as UTC; numbers are taken as epoch seconds);
- a feature's declared ``sentinels`` (codes meaning "unknown", e.g. ``-1``) are missing values:
  ``missing_sentinels`` blanks them before anything else (``sentinel_mask`` says which cells),
  so training, the profile and the data gate count them as nulls, and the serving contract
  scores a request carrying one as it scores a null.

CSV is read with pyarrow's multithreaded reader (``parse_csv``), the same reader for the data
gate and for training, so what the gate accepted is what training sees. Column names follow
pandas: an empty header cell becomes ``Unnamed: {i}``, a repeated name ``name.1``.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

import numpy as np
import pandas as pd

from conveyor.errors import DataError
from conveyor.spec import Feature, ModelSpec, category_key

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


CSV_SUFFIXES = frozenset({".csv", ".txt"})
PARQUET_SUFFIXES = frozenset({".parquet", ".pq"})
_EPOCH = pd.Timestamp("1970-01-01", tz="UTC")


@dataclass(frozen=True)
class BadRow:
    """A CSV line whose field count differs from the header's (skipped by ``parse_csv``)."""

    row: int | None  # 1-based data row (the header is not counted), when known
    expected: int
    actual: int
    text: str


@dataclass
class ParsedCsv:
    frame: pd.DataFrame
    header: list[str]  # the names as written in the file
    bad_rows: list[BadRow]


def pandas_names(header: list[str]) -> list[str]:
    """Column names as pandas gives them: an empty name becomes ``Unnamed: {i}``, a repeat ``name.1``."""
    names: list[str] = []
    seen: dict[str, int] = {}
    for position, raw in enumerate(header):
        name = raw if raw != "" else f"Unnamed: {position}"
        if name in seen:
            seen[name] += 1
            name = f"{name}.{seen[name]}"
        seen.setdefault(name, 0)
        names.append(name)
    return names


def _read_arrow_csv(data: bytes, *, use_threads: bool) -> tuple[Any, list[BadRow]]:
    import pyarrow.csv as pacsv

    bad: list[BadRow] = []

    def skip(row: Any) -> str:
        number = None if row.number is None else int(row.number) - 1  # physical line -> data row
        bad.append(BadRow(number, int(row.expected_columns), int(row.actual_columns), str(row.text)[:200]))
        return "skip"

    table = pacsv.read_csv(
        io.BytesIO(data),
        read_options=pacsv.ReadOptions(use_threads=use_threads),
        parse_options=pacsv.ParseOptions(invalid_row_handler=skip),
    )
    return table, bad


def parse_csv(data: bytes) -> ParsedCsv:
    """Parse UTF-8 CSV bytes; rows with a wrong field count are skipped and listed, not fatal.

    Raises
    ------
    DataError
        ``reason`` "empty" (no header) or "parse" (pyarrow cannot read it at all).
    """
    import pyarrow as pa

    try:
        table, bad = _read_arrow_csv(data, use_threads=True)
        if bad and any(b.row is None for b in bad):
            # row numbers are only known to the serial reader; pay for it only when rows are bad
            table, bad = _read_arrow_csv(data, use_threads=False)
    except pa.ArrowInvalid as exc:
        text = str(exc)
        reason = "empty" if "Empty CSV" in text else "parse"
        raise DataError(f"cannot parse CSV: {text.strip()[:200]}", details={"reason": reason}) from None
    header = [str(n) for n in table.schema.names]
    table = table.rename_columns(pandas_names(header))
    return ParsedCsv(frame=table.to_pandas(), header=header, bad_rows=bad)


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
    if suffix in CSV_SUFFIXES:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(
                f"{filename}: not UTF-8 text (byte {exc.start})", details={"file": filename, "reason": "encoding"}
            ) from None
        try:
            parsed = parse_csv(data)
        except DataError as exc:
            raise DataError(f"{filename}: {exc.message}", details={"file": filename, **exc.details}) from None
        if parsed.bad_rows:
            first = parsed.bad_rows[0]
            raise DataError(
                f"{filename}: cannot parse CSV: row {first.row} has {first.actual} fields, expected {first.expected}",
                details={"file": filename, "reason": "parse"},
            )
        return parsed.frame
    if suffix in PARQUET_SUFFIXES:
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


def parse_datetime(column: pd.Series) -> pd.Series:
    """A column as UTC timestamps; values that do not parse become NaT.

    Strings are tried as ISO 8601 first (fast), then with pandas' format inference; numbers are
    epoch seconds.
    """
    if pd.api.types.is_datetime64_any_dtype(column):
        parsed = pd.to_datetime(column, utc=True)
    elif pd.api.types.is_bool_dtype(column):
        parsed = pd.Series(pd.NaT, index=column.index, dtype="datetime64[ns, UTC]")
    elif pd.api.types.is_numeric_dtype(column):
        parsed = pd.to_datetime(column, unit="s", utc=True, errors="coerce")
    else:
        text = column.astype("string").str.strip()
        parsed = pd.to_datetime(text, errors="coerce", utc=True, format="ISO8601")
        if bool((parsed.isna() & text.notna()).any()):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "could not infer format": the fallback is per element
                parsed = pd.to_datetime(text, errors="coerce", utc=True)
    return pd.Series(parsed, index=column.index)


def _as_datetime(column: pd.Series, name: str) -> pd.Series:
    parsed = parse_datetime(column)
    bad = parsed.isna() & column.notna()
    if bool(bad.any()):
        examples = column[bad].head(5).tolist()
        raise DataError(
            f"column {name!r}: not a date/time, e.g. {examples}", details={"column": name, "examples": examples}
        )
    return (parsed - _EPOCH) / pd.Timedelta(seconds=1)


def boolean_numbers(column: pd.Series) -> np.ndarray:
    """A column as float64 1.0/0.0 by the boolean spellings (any case, spaces ignored), NaN for a null
    or any other value."""
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
        numbers = column.to_numpy(dtype=np.float64, na_value=np.nan)
        return np.where((numbers == 0.0) | (numbers == 1.0), numbers, np.nan)
    text = column.astype("string").str.strip().str.lower()
    numbers = np.full(len(column), np.nan)
    numbers[text.isin(BOOLEAN_TRUE).to_numpy(dtype=bool, na_value=False)] = 1.0
    numbers[text.isin(BOOLEAN_FALSE).to_numpy(dtype=bool, na_value=False)] = 0.0
    return numbers


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
        # Integral values print without ".0"; beyond 2**53 a float is no longer an exact integer.
        if bool(((finite == np.floor(finite)) & (finite.abs() < 2**53)).all()):
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
        elif kind == "datetime":
            columns[name] = _as_datetime(column, name).astype(np.float32)
        else:
            columns[name] = _as_number(column, name).astype(np.float32)
    return pd.DataFrame(columns, index=df.index)


def map_categories(column: pd.Series, mapping: Mapping[str, str]) -> pd.Series:
    """Category strings with renamed codes replaced (``mapping`` old -> new, applied once)."""
    if not mapping:
        return column
    mapped = column.replace(dict(mapping))
    return pd.Series(mapped.to_numpy(dtype=object), index=column.index, name=column.name)


def with_category_mappings(df: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """``df`` with each category feature's renamed codes replaced (other columns untouched)."""
    mapped = {
        name: map_categories(category_strings(df[name]), feature.category_mapping())
        for name, feature in spec.features.items()
        if feature.type == "category" and feature.mapping and name in df.columns
    }
    return df.assign(**mapped) if mapped else df


def sentinel_mask(column: pd.Series, feature: Feature) -> np.ndarray:
    """Cells of ``column`` holding one of the feature's declared sentinels, as written in the file.

    Numbers compare as numbers (``-1`` matches ``-1``, ``-1.0`` and the text ``"-1"``); other
    sentinels compare as category strings (``"unknown"``, ``"?"``; surrounding spaces ignored).
    """
    if not feature.sentinels or len(column) == 0:
        return np.zeros(len(column), dtype=bool)
    numbers = [float(v) for v in feature.sentinels if isinstance(v, int | float) and not isinstance(v, bool)]
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        return np.isin(values, numbers) if numbers else np.zeros(len(column), dtype=bool)
    text = pd.Series(category_strings(column).to_numpy(dtype=str), index=column.index).str.strip()
    mask = text.isin({category_key(v) for v in feature.sentinels}).to_numpy(dtype=bool, copy=True)
    if numbers:
        mask |= pd.to_numeric(text, errors="coerce").isin(numbers).to_numpy(dtype=bool)
    return mask & column.notna().to_numpy(dtype=bool)


def missing_sentinels(df: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """``df`` with every declared sentinel of a feature replaced by a missing value (other cells untouched)."""
    blanked: dict[str, pd.Series] = {}
    for name, feature in spec.features.items():
        if not feature.sentinels or name not in df.columns:
            continue
        mask = sentinel_mask(df[name], feature)
        if bool(mask.any()):
            column = df[name]
            if pd.api.types.is_bool_dtype(column):
                column = column.astype("object")
            blanked[name] = column.where(~mask)
    return df.assign(**blanked) if blanked else df


def feature_frame(df: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """Exactly the spec's features, in spec order, cast as described in the module docstring.

    Declared sentinels become missing values. A category feature's ``mapping`` (renamed codes)
    is applied, so training and serving see the new codes whichever the file used.
    """
    frame = typed_frame(missing_sentinels(df, spec), spec.feature_types())
    for name, feature in spec.features.items():
        if feature.mapping:
            frame[name] = map_categories(frame[name], feature.category_mapping())
    return frame


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
