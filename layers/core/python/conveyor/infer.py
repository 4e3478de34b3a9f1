"""``conveyor init``: infer a model spec from a sample, for a person to review.

``infer_from_file(data, filename, name, target)`` is what the command runs: it never raises but
``DataError`` (exit 2 with a message), and refuses a sample the data gate would reject with the
spec it inferred (file-level faults, an unusable target), so every spec it returns accepts its
own sample. ``infer_spec(df, name, target)`` returns the spec as a mapping and the findings: one per
column that was excluded (identifier, duplicated encoding, time column, constant, empty,
free text, leakage) or that deserves a look. ``spec_yaml`` writes both as YAML, the findings
as comments, and the result loads with ``conveyor.spec.load_spec``.

Inference rules (a sample can only suggest them):

* booleans: only 0/1 or true/false-like values;
* categories: strings with at most ``MAX_CATEGORIES`` values, or small integer codes (at most
  ``MAX_CODE_VALUES`` distinct integers within 0..``MAX_CODE``), with their ``allowed`` values;
* numbers: ``integer`` when every value is integral, else ``number``; the range is the observed
  0.5% / 99.5% quantiles widened by ``RANGE_MARGIN`` of their span and rounded outwards (a
  non-negative column keeps a lower bound of 0 at most); common "unknown" codes (``-1``,
  ``9999``...) outside the range of the other values are declared ``sentinels`` (missing values);
* datetimes: strings that parse as ISO 8601 dates or times;
* identifiers: id-like names (``id``, ``uuid``, ``*_id``, pandas' ``Unnamed: 0``) or a distinct
  integer / string on every row;
* duplicated encodings: a 0/1 column equal to ``column == value`` of another column (one-hot),
  or an exact copy of an earlier column.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import yaml

from conveyor.errors import DataError
from conveyor.spec import parse_spec
from conveyor.stats import leakage_strength
from conveyor.tabular import BOOLEAN_FALSE, BOOLEAN_TRUE, boolean_numbers, category_strings, parse_datetime, read_table
from conveyor.validation import COMMON_SENTINELS, ID_NAME, LEAKAGE_CORRELATION, validate_bytes

MAX_CATEGORIES = 50
MAX_CODE_VALUES = 10
MAX_CODE = 20
RANGE_MARGIN = 0.1
LEAKAGE_AUC = 0.98
_TIME_NAME = re.compile(r"^(year|date|time|timestamp|datetime|month|period)$|(_date|_time|_at|_ts)$", re.IGNORECASE)
_SENSITIVE_NAME = re.compile(
    r"^(female|male|sex|gender|race|ethnicity|religion|nationality|disability)$", re.IGNORECASE
)
_OPS = ("gt", "ge", "lt", "le", "eq", "ne")


def parse_condition(text: str) -> dict[str, Any]:
    """``"gt:0"`` -> ``{"op": "gt", "value": 0.0}`` (a ``target.positive_when``).

    Raises
    ------
    DataError
        If the text is not ``op:number`` with op one of gt, ge, lt, le, eq, ne.
    """
    op, _, value = text.partition(":")
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if op not in _OPS or not math.isfinite(number):
        raise DataError(f"positive_when {text!r}: expected op:number with op one of {', '.join(_OPS)}, e.g. gt:0")
    return {"op": op, "value": int(number) if number.is_integer() else number}


def _nice_bounds(low: float, high: float, *, integral: bool) -> tuple[float, float]:
    span = high - low
    margin = RANGE_MARGIN * span if span > 0 else max(abs(low) * RANGE_MARGIN, 1.0)
    lower, upper = low - margin, high + margin
    if low >= 0 > lower:
        lower = 0.0
    step = 10 ** math.floor(math.log10(max(upper - lower, 1e-12))) / 10
    if integral:
        step = max(step, 1.0)
    lower = math.floor(lower / step) * step
    upper = math.ceil(upper / step) * step
    digits = max(0, -math.floor(math.log10(step)))
    return round(lower, digits), round(upper, digits)


def _plain(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


def _is_boolean(column: pd.Series, values: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(column):
        return True
    if pd.api.types.is_numeric_dtype(column):
        return bool(values.isin([0, 1]).all())
    text = values.astype("string").str.strip().str.lower()
    return bool(text.isin(BOOLEAN_TRUE | BOOLEAN_FALSE).all()) and text.nunique() <= 2


def _looks_like_datetime(values: pd.Series) -> bool:
    if pd.api.types.is_datetime64_any_dtype(values):
        return True
    if pd.api.types.is_numeric_dtype(values):
        return False
    sample = values.astype("string").head(500)
    if not bool(sample.str.match(r"^\s*\d{4}-\d{2}-\d{2}").all()):
        return False
    return bool(parse_datetime(sample).notna().all())


def _identifier_reason(name: str, column: pd.Series, values: pd.Series) -> str | None:
    if re.match(r"^Unnamed: \d+$", name):
        return "an unnamed index column (a row number written by pandas)"
    if ID_NAME.search(name):
        return "an id-like name"
    if len(values) >= 20 and values.is_unique and len(values) == len(column):
        if not pd.api.types.is_numeric_dtype(values):
            return "a distinct value on every row"
        numbers = values.to_numpy(dtype=np.float64)
        if bool(np.all(numbers == np.floor(numbers))):
            return "a distinct integer on every row"
    return None


def _one_hot_of(binary: pd.Series, candidates: dict[str, pd.Series]) -> tuple[str, str] | None:
    """(column, value) when ``binary`` is the one-hot ``candidates[column] == value``."""
    flags = boolean_numbers(binary)  # 0/1, true/false, yes/no, Y/N... in any case
    for other, codes in candidates.items():
        if codes.name == binary.name:
            continue
        for value in pd.unique(codes):
            if value == "":
                continue
            if np.array_equal(flags == 1.0, (codes == value).to_numpy(dtype=bool)):
                return other, str(value)
    return None


def _finding(column: str, kind: str, reason: str, *, excluded: bool = True) -> dict[str, Any]:
    return {"column": column, "kind": kind, "reason": reason, "excluded": excluded}


@dataclass
class _Draft:
    """The spec being inferred, column by column, and the findings that explain it."""

    findings: list[dict[str, Any]]
    features: dict[str, dict[str, Any]] = field(default_factory=dict)
    identifiers: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    time_column: str | None = None
    category_views: dict[str, pd.Series] = field(default_factory=dict)  # for spotting one-hot copies
    binaries: list[str] = field(default_factory=list)
    seen_hashes: dict[int, str] = field(default_factory=dict)  # for spotting exact copies

    def exclude(self, column: str, kind: str, reason: str) -> None:
        self.ignored.append(column)
        self.findings.append(_finding(column, kind, reason))


def infer_from_file(
    data: bytes, filename: str, name: str, target: str, *, positive_when: str | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``infer_spec`` on a sample file, held to the data gate: the spec and findings, or DataError.

    Raises
    ------
    DataError
        If the file cannot be read, no spec can be inferred from it, or the data gate would reject
        the file with the inferred spec (the message is the gate's summary).
    """
    frame = read_table(data, filename)
    try:
        spec, findings = infer_spec(frame, name, target, positive_when=positive_when)
    except DataError:
        raise
    except Exception as error:  # a sample nobody foresaw: say so rather than show a traceback
        raise DataError(
            f"could not infer a spec from {filename} ({type(error).__name__}: {str(error)[:200]}); "
            "please report this sample",
            details={"reason": "internal"},
        ) from error
    report = validate_bytes(data, filename, parse_spec(spec))
    if not report.accepted:
        failed = [c.name for c in report.failures()]
        raise DataError(
            f"the data gate would reject {filename}: {report.summary}", details={"reason": "rejected", "checks": failed}
        )
    return spec, findings


def infer_spec(
    df: pd.DataFrame, name: str, target: str, *, positive_when: str | dict[str, Any] | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Infer a spec mapping from a sample frame.

    Parameters
    ----------
    df
        The sample (as read by ``conveyor.tabular.read_table``).
    name
        The model name (lowercase letters, digits and dashes).
    target
        The target column.
    positive_when
        ``"gt:0"`` (or the mapping) to binarize a numeric target for classification.

    Returns
    -------
    spec, findings
        The spec (loads with ``parse_spec``) and one finding per excluded or notable column:
        ``{"column", "kind", "reason", "excluded"}``.

    Raises
    ------
    DataError
        If the target is missing or the sample has no usable feature.
    """
    if target not in df.columns:
        raise DataError(f"target column {target!r} is not in the sample", details={"column": target})
    if len(df) == 0:
        raise DataError("the sample has no rows")
    condition = parse_condition(positive_when) if isinstance(positive_when, str) else positive_when
    y_column = df[target]
    if condition is not None or not pd.api.types.is_numeric_dtype(y_column) or y_column.nunique() <= MAX_CODE_VALUES:
        task = "classification"
    else:
        task = "regression"
    draft = _Draft(findings=[_finding(target, "target", "the target")])
    for raw_name in df.columns:
        if str(raw_name) != target:
            _add_column(draft, df, raw_name)
    _drop_one_hot_copies(draft, df)
    _drop_leaks(df, target, condition, task, draft.features, draft.ignored, draft.findings)
    _flag_sensitive(draft)
    if not draft.features:
        raise DataError("no usable feature in the sample", details={"findings": draft.findings})
    spec: dict[str, Any] = {
        "name": name,
        "task": task,
        "target": {"column": target, **({"positive_when": condition} if condition is not None else {})},
        "features": draft.features,
        "identifiers": draft.identifiers,
        "time_column": draft.time_column,
        "ignored": draft.ignored,
        "estimator": {"type": "hist_gradient_boosting", "params": {}},
    }
    parse_spec(spec)  # what init writes must load
    return spec, draft.findings


def _add_column(draft: _Draft, df: pd.DataFrame, raw_name: Any) -> None:
    """One column: left out (copy, empty, time, identifier, constant, free text) or a typed feature."""
    column_name = str(raw_name)
    column = df[raw_name]
    values = column.dropna()
    fingerprint = int(pd.util.hash_pandas_object(column, index=False).sum())
    seen = draft.seen_hashes
    if fingerprint in seen and column.equals(df[seen[fingerprint]]):
        draft.exclude(column_name, "duplicated_encoding", f"an exact copy of {seen[fingerprint]}")
        return
    seen.setdefault(fingerprint, column_name)
    if values.empty:
        draft.exclude(column_name, "empty", "no values in the sample")
        return
    reason = _identifier_reason(column_name, column, values)
    is_time = _TIME_NAME.search(column_name) is not None or _looks_like_datetime(values)
    if draft.time_column is None and is_time and not ID_NAME.search(column_name):
        draft.time_column = column_name
        draft.findings.append(_finding(column_name, "time", "the time column (a time moves forward: not a feature)"))
        return
    if reason is not None and not is_time:
        draft.identifiers.append(column_name)
        draft.findings.append(_finding(column_name, "identifier", f"identifier: {reason}"))
        return
    if values.nunique() == 1:
        draft.exclude(column_name, "constant", f"constant ({values.iloc[0]!r}) in the sample")
        return
    spec_feature = _typed_feature(draft, column_name, column, values)
    if spec_feature is None:
        return
    if column.isna().any():
        spec_feature["nullable"] = True
    draft.features[column_name] = spec_feature


def _typed_feature(draft: _Draft, column_name: str, column: pd.Series, values: pd.Series) -> dict[str, Any] | None:
    """The feature's type (and range or allowed values); None for free text, which is left out."""
    if _is_boolean(column, values):
        draft.binaries.append(column_name)
        return {"type": "boolean"}
    if _looks_like_datetime(values):
        return {"type": "datetime"}
    if pd.api.types.is_numeric_dtype(values):
        numbers = values.to_numpy(dtype=np.float64)
        integral = bool(np.all(numbers == np.floor(numbers)))
        distinct = np.unique(numbers)
        if integral and distinct.size <= MAX_CODE_VALUES and distinct.min() >= 0 and distinct.max() <= MAX_CODE:
            draft.category_views[column_name] = category_strings(column)
            return {"type": "category", "allowed": [str(int(v)) for v in distinct]}
        numbers, sentinels = _split_codes(numbers, integral=integral)
        low, high = np.quantile(numbers, [0.005, 0.995])
        lower, upper = _nice_bounds(float(low), float(high), integral=integral)
        feature: dict[str, Any] = {"type": "integer" if integral else "number", "range": [_plain(lower), _plain(upper)]}
        if sentinels:
            draft.findings.append(
                _finding(column_name, "review", f"codes {sentinels} read as sentinels (unknown)", excluded=False)
            )
            feature.update(nullable=True, sentinels=sentinels)
        return feature
    strings = category_strings(column)
    distinct_count = values.nunique()
    if distinct_count <= MAX_CATEGORIES and distinct_count <= max(2, len(values) // 2):
        draft.category_views[column_name] = strings
        return {"type": "category", "allowed": sorted(str(v) for v in pd.unique(strings[column.notna()]))}
    draft.exclude(column_name, "free_text", f"{distinct_count} distinct strings: free text or a code")
    return None


def _split_codes(numbers: np.ndarray, *, integral: bool) -> tuple[np.ndarray, list[int | float]]:
    """The values without the common "unknown" codes (-1, 9999...) that sit outside the range of the
    others, and those codes: the data gate would flag them, so the spec declares them as sentinels."""
    codes = [v for v in COMMON_SENTINELS if bool(np.any(numbers == v))]
    rest = numbers[~np.isin(numbers, codes)] if codes else numbers
    if not codes or rest.size == 0:
        return numbers, []
    low, high = np.quantile(rest, [0.005, 0.995])
    lower, upper = _nice_bounds(float(low), float(high), integral=integral)
    outside = [_plain(v) for v in codes if v < lower or v > upper]
    if not outside:
        return numbers, []
    return numbers[~np.isin(numbers, outside)], outside


def _drop_one_hot_copies(draft: _Draft, df: pd.DataFrame) -> None:
    """A 0/1 column equal to (another column == value) is a one-hot copy: keep the coded column."""
    for binary_name in draft.binaries:
        candidates = {k: v for k, v in draft.category_views.items() if k in draft.features}
        source = _one_hot_of(df[binary_name], candidates)
        if source is not None:
            other, value = source
            del draft.features[binary_name]
            draft.exclude(binary_name, "duplicated_encoding", f"duplicated encoding: one-hot of {other} == {value}")


def _flag_sensitive(draft: _Draft) -> None:
    for column_name in draft.features:
        if _SENSITIVE_NAME.search(column_name):
            draft.findings.append(
                _finding(
                    column_name,
                    "review",
                    "may be a sensitive attribute: move it to sensitive: if it must not drive predictions",
                    excluded=False,
                )
            )


def _drop_leaks(
    df: pd.DataFrame,
    target: str,
    condition: dict[str, Any] | None,
    task: str,
    features: dict[str, dict[str, Any]],
    ignored: list[str],
    findings: list[dict[str, Any]],
) -> None:
    y_raw = df[target]
    known = y_raw.notna().to_numpy(dtype=bool)
    if condition is not None:
        if not pd.api.types.is_numeric_dtype(y_raw):
            return
        ops = {"gt": np.greater, "ge": np.greater_equal, "lt": np.less, "le": np.less_equal, "eq": np.equal}
        op = ops.get(condition["op"], np.not_equal)
        y = op(y_raw.to_numpy(dtype=np.float64, na_value=np.nan), float(condition["value"])).astype(np.float64)
        binary = True
    elif task == "classification":
        labels = category_strings(y_raw)
        classes = sorted(set(labels[known]))
        if len(classes) != 2:
            return
        y = (labels == classes[1]).to_numpy(dtype=np.float64)
        binary = True
    else:
        y = y_raw.to_numpy(dtype=np.float64, na_value=np.nan)
        binary = False
    for column_name, feature in list(features.items()):
        column = df[column_name]
        categorical = feature["type"] == "category"
        if categorical:
            values: np.ndarray = category_strings(column).to_numpy(dtype=object)
            keep = known
        else:
            if feature["type"] == "datetime":
                continue
            values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            keep = known & np.isfinite(values)
        measured = leakage_strength(values[keep], y[keep], categorical=categorical, binary=binary)
        threshold = LEAKAGE_AUC if binary else LEAKAGE_CORRELATION
        if measured is not None and measured[1] >= threshold:
            del features[column_name]
            ignored.append(column_name)
            label = "AUC" if measured[0] == "auc" else "|correlation|"
            findings.append(
                _finding(column_name, "leakage", f"leakage: predicts {target} alone ({label} {measured[1]:.3f})")
            )


def spec_yaml(spec: dict[str, Any], findings: list[dict[str, Any]], *, source: str = "") -> str:
    """The spec as YAML, headed by comments saying why each excluded column was left out."""
    lines = [
        f"# Model spec inferred by `conveyor init` from {source or 'a sample'}: review before use.",
        "# Types, ranges and allowed values come from the sample; widen them where the sample was narrow.",
    ]
    excluded = [f for f in findings if f["excluded"] and f["kind"] != "target"]
    if excluded:
        lines.append("# Columns left out of the features:")
        lines.extend(f"#   {f['column']}: {f['reason']}" for f in excluded)
    notes = [f for f in findings if not f["excluded"]]
    if notes:
        lines.append("# To review:")
        lines.extend(f"#   {f['column']}: {f['reason']}" for f in notes)

    def dump(part: dict[str, Any]) -> str:
        return yaml.safe_dump(part, sort_keys=False, default_flow_style=None, width=120, allow_unicode=True)

    head = {k: v for k, v in spec.items() if k in ("name", "task", "target")}
    tail = {k: v for k, v in spec.items() if k not in head and k != "features"}
    # one feature per line reads best in review
    feature_lines = ["features:"]
    for feature_name, feature in spec.get("features", {}).items():
        key = yaml.safe_dump(feature_name, default_style=None).removesuffix("\n...\n").strip()
        value = yaml.safe_dump(feature, sort_keys=False, default_flow_style=True, width=1000).strip()
        feature_lines.append(f"  {key}: {value}")
    return "\n".join([*lines, dump(head).rstrip(), *feature_lines, dump(tail).rstrip()]) + "\n"
