"""The reference profile of a training frame: what drift checks compare new data with.

``build_profile(df, spec)`` runs once at training time and is stored as ``profile.json``
beside each model version. Drift checks (``conveyor.drift``) read only the profile, never the
training data again, so the profile must be enough for every test they run:

numeric features (spec types ``number`` and ``integer``)
    * PSI bins: the deciles of the non-null values, deduplicated (a discrete feature gets
      fewer bins), with ``-inf``/``+inf`` ends; bins are right-closed, ``(e[i-1], e[i]]``, and
      the reference count per bin;
    * mean, std, min, max and the null share;
    * a CDF sketch for the Kolmogorov-Smirnov test: knots ``values`` with the exact counts of
      reference values ``<= v`` (``le``) and ``< v`` (``lt``) at each knot. When the feature
      has at most ``EXACT_DISTINCT`` (1,000) distinct values the knots are all of them and the
      empirical CDF is stored exactly. Otherwise the knots are the 1,001 quantiles at
      probabilities 0, 0.001, ..., 1 (so min and max are knots); between two knots the CDF is
      modelled as linear from ``lt[k+1]`` back to ``le[k]``. Because the stored counts are exact
      at every knot and the true CDF is monotone in between, the modelled CDF is off by at
      most the reference mass strictly between two consecutive knots, about 1/1,000: the
      KS statistic computed from the sketch is within ~0.001 of the exact two-sample
      statistic (the tests check 0.002 on the bundled data). Atoms (ties, e.g. many zeros)
      are kept exactly because ``le - lt`` at a knot is the atom's mass.

categorical features (``category``, and ``boolean`` as two categories ``"false"``/``"true"``)
    * frequencies of the ``TOP_CATEGORIES`` (100) most frequent values, the rest summed as
      ``"__other__"``, and the null count (``""`` after ``feature_frame``, or NaN).

A feature's declared ``sentinels`` are missing values: they count among its nulls.

Datetime features (not a spec type yet) are skipped: a time column moves forward by
construction, so every new batch would "drift".
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import pandas as pd

from conveyor.errors import DataError
from conveyor.spec import ModelSpec, spec_hash
from conveyor.tabular import MISSING_CATEGORY, category_strings, missing_sentinels, typed_frame, with_category_mappings

PROFILE_FORMAT = 1
EXACT_DISTINCT = 1000
SKETCH_QUANTILES = 1000  # knots at probabilities k / SKETCH_QUANTILES, k = 0..SKETCH_QUANTILES
PSI_BINS = 10
TOP_CATEGORIES = 100
OTHER = "__other__"
NUMERIC_TYPES = frozenset({"number", "integer"})
CATEGORICAL_TYPES = frozenset({"category", "boolean"})

Kind = Literal["numeric", "categorical", "skipped"]


def feature_kind(spec_type: str) -> Kind:
    """How drift treats a spec feature type: numeric, categorical, or skipped (datetime, unknown)."""
    if spec_type in NUMERIC_TYPES:
        return "numeric"
    if spec_type in CATEGORICAL_TYPES:
        return "categorical"
    return "skipped"


@dataclass
class NumericProfile:
    """Reference statistics of one numeric feature (see the module docstring)."""

    count: int  # non-null values
    nulls: int
    mean: float | None
    std: float | None
    min: float | None
    max: float | None
    edges: list[float]  # inner PSI bin edges; bins are (-inf, e0], (e0, e1], ..., (e_last, +inf)
    bin_counts: list[int]  # len(edges) + 1
    values: list[float]  # CDF sketch knots, strictly increasing
    le: list[int]  # reference values <= knot
    lt: list[int]  # reference values < knot
    exact: bool  # True when the knots are every distinct value (the CDF is exact)

    @property
    def null_share(self) -> float:
        total = self.count + self.nulls
        return self.nulls / total if total else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "numeric",
            "count": self.count,
            "nulls": self.nulls,
            "null_share": self.null_share,
            "mean": self.mean,
            "std": self.std,
            "min": self.min,
            "max": self.max,
            "edges": self.edges,
            "bin_counts": self.bin_counts,
            "sketch": {"exact": self.exact, "values": self.values, "le": self.le, "lt": self.lt},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NumericProfile:
        sketch = data["sketch"]
        return cls(
            count=int(data["count"]),
            nulls=int(data["nulls"]),
            mean=_opt_float(data.get("mean")),
            std=_opt_float(data.get("std")),
            min=_opt_float(data.get("min")),
            max=_opt_float(data.get("max")),
            edges=[float(v) for v in data["edges"]],
            bin_counts=[int(v) for v in data["bin_counts"]],
            values=[float(v) for v in sketch["values"]],
            le=[int(v) for v in sketch["le"]],
            lt=[int(v) for v in sketch["lt"]],
            exact=bool(sketch["exact"]),
        )

    def cdf_points(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Knots and the reference CDF at them: (values, F(v), F(v-)) as float64 arrays."""
        n = max(self.count, 1)
        return (
            np.asarray(self.values, dtype=np.float64),
            np.asarray(self.le, dtype=np.float64) / n,
            np.asarray(self.lt, dtype=np.float64) / n,
        )

    def cdf(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The modelled reference CDF at ``x``: (F(x), F(x-)), right limit and left limit."""
        values, right, left = self.cdf_points()
        x = np.asarray(x, dtype=np.float64)
        if values.size == 0:
            zeros = np.zeros_like(x)
            return zeros, zeros
        k = np.searchsorted(values, x, side="right") - 1  # last knot <= x, -1 if none
        kc = np.clip(k, 0, values.size - 1)
        at_knot = (k >= 0) & (values[kc] == x)
        nxt = np.clip(kc + 1, 0, values.size - 1)
        span = values[nxt] - values[kc]
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = np.where(span > 0, (x - values[kc]) / np.where(span > 0, span, 1.0), 0.0)
        linear = right[kc] + (left[nxt] - right[kc]) * frac
        linear = np.where(k < 0, 0.0, np.where(k >= values.size - 1, 1.0, linear))
        return np.where(at_knot, right[kc], linear), np.where(at_knot, left[kc], linear)

    def inverse_cdf(self, u: np.ndarray) -> np.ndarray:
        """Values with the modelled CDF at probabilities ``u`` (for sampling reference rows)."""
        values, right, left = self.cdf_points()
        if values.size == 0:
            return np.full(np.shape(u), np.nan)
        # The CDF as a monotone polyline through (v_k, F(v_k-)) and (v_k, F(v_k)): a jump at an atom
        # is a vertical segment (every u in it maps to v_k), a gap between knots a sloped one.
        xs = np.repeat(values, 2)
        fs = np.empty(values.size * 2)
        fs[0::2] = left
        fs[1::2] = right
        return np.interp(u, fs, xs)


@dataclass
class CategoricalProfile:
    """Reference frequencies of one categorical feature: top values, ``__other__`` and nulls."""

    count: int  # non-null values
    nulls: int
    frequencies: dict[str, int]  # top values (most frequent first), then OTHER if any
    distinct: int

    @property
    def null_share(self) -> float:
        total = self.count + self.nulls
        return self.nulls / total if total else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "categorical",
            "count": self.count,
            "nulls": self.nulls,
            "null_share": self.null_share,
            "distinct": self.distinct,
            "frequencies": self.frequencies,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CategoricalProfile:
        return cls(
            count=int(data["count"]),
            nulls=int(data["nulls"]),
            frequencies={str(k): int(v) for k, v in data["frequencies"].items()},
            distinct=int(data.get("distinct", len(data["frequencies"]))),
        )


FeatureProfile = NumericProfile | CategoricalProfile


@dataclass
class Profile:
    """The reference statistics of a training frame, stored as ``profile.json``."""

    rows: int
    spec_hash: str
    created_at: str
    features: dict[str, FeatureProfile]
    types: dict[str, str]  # feature -> spec type at profiling time
    skipped: dict[str, str] = field(default_factory=dict)  # feature -> reason
    # The holdout's score distribution (conveyor.monitoring.scores), added at training; None in
    # profiles stored before it existed: the live monitor then does not measure a score shift.
    scores: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "format": PROFILE_FORMAT,
            "rows": self.rows,
            "spec_hash": self.spec_hash,
            "created_at": self.created_at,
            "types": self.types,
            "skipped": self.skipped,
            "features": {name: feature.to_dict() for name, feature in self.features.items()},
        }
        if self.scores is not None:
            document["scores"] = self.scores
        return document

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_dict(cls, data: Any) -> Profile:
        """Rebuild a profile from ``to_dict()`` output.

        Raises
        ------
        DataError
            If ``data`` is not a profile (missing keys, wrong format version).
        """
        if not isinstance(data, dict) or "features" not in data or "rows" not in data:
            raise DataError("not a Conveyor profile: expected keys 'rows' and 'features'", details={"reason": "format"})
        if data.get("format") != PROFILE_FORMAT:
            raise DataError(
                f"profile format {data.get('format')!r} is not supported (expected {PROFILE_FORMAT})",
                details={"reason": "format"},
            )
        try:
            features: dict[str, FeatureProfile] = {}
            for name, item in data["features"].items():
                if item.get("kind") == "numeric":
                    features[name] = NumericProfile.from_dict(item)
                elif item.get("kind") == "categorical":
                    features[name] = CategoricalProfile.from_dict(item)
                else:
                    raise DataError(f"profile feature {name!r}: unknown kind {item.get('kind')!r}")
            return cls(
                rows=int(data["rows"]),
                spec_hash=str(data.get("spec_hash", "")),
                created_at=str(data.get("created_at", "")),
                features=features,
                types={str(k): str(v) for k, v in data.get("types", {}).items()},
                skipped={str(k): str(v) for k, v in data.get("skipped", {}).items()},
                scores=data["scores"] if isinstance(data.get("scores"), dict) else None,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DataError(f"profile is malformed: {exc!r}", details={"reason": "format"}) from None

    @classmethod
    def from_json(cls, text: str | bytes) -> Profile:
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DataError(f"profile is not valid JSON: {exc}", details={"reason": "format"}) from None
        return cls.from_dict(data)


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def numeric_values(column: pd.Series) -> np.ndarray:
    """A typed numeric column as float64 (NaN for nulls)."""
    return np.asarray(column.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)


def categorical_values(column: pd.Series, spec_type: str) -> np.ndarray:
    """A typed categorical column as an object array of str, ``None`` for nulls.

    Booleans (float 1.0/0.0/NaN after ``feature_frame``) become ``"true"``/``"false"``.
    """
    if spec_type == "boolean":
        values = numeric_values(column)
        out = np.full(values.shape, None, dtype=object)
        out[values == 1.0] = "true"
        out[values == 0.0] = "false"
        return out
    raw = column.to_numpy(dtype=object)
    out = raw.copy()
    nulls = pd.isna(raw) | (raw == MISSING_CATEGORY)
    out[nulls] = None
    return out


def typed_features(df: pd.DataFrame, spec_types: dict[str, str]) -> pd.DataFrame:
    """The profiled features of ``df`` cast by ``conveyor.tabular.typed_frame`` (skipped types left out)."""
    kept = {name: kind for name, kind in spec_types.items() if feature_kind(kind) != "skipped"}
    return typed_frame(df, kept)


@dataclass
class FeatureData:
    """What the profile and the drift tests need of a frame's features, computed without
    materialising every category as a Python string: numeric (and boolean) columns as float64
    arrays, category columns as counts per label."""

    numeric: dict[str, np.ndarray]  # number, integer, boolean -> float64 (NaN = null)
    counts: dict[str, tuple[dict[str, int], int]]  # categorical -> (count per label, nulls)


def _category_label_counts(column: pd.Series) -> tuple[dict[str, int], int]:
    """Counts per label of a raw category column, labelled as ``tabular.category_strings`` does.

    Counting first and converting only the distinct values gives the same labels (the
    integral-float rule holds for all values exactly when it holds for the distinct ones)
    at a fraction of the cost on big frames.
    """
    counts = column.value_counts(dropna=False, sort=False)
    distinct = pd.Series(counts.index, dtype=column.dtype) if len(counts) else column.iloc[:0]
    labels = category_strings(distinct).to_numpy(dtype=object)
    merged: dict[str, int] = {}
    nulls = 0
    for label, count in zip(labels, counts.to_numpy(), strict=True):
        if label == MISSING_CATEGORY:
            nulls += int(count)
        else:
            merged[str(label)] = merged.get(str(label), 0) + int(count)
    return merged, nulls


def _boolean_counts(values: np.ndarray) -> tuple[dict[str, int], int]:
    trues = int(np.count_nonzero(values == 1.0))
    falses = int(np.count_nonzero(values == 0.0))
    counts = {label: n for label, n in (("false", falses), ("true", trues)) if n}
    return counts, int(values.size - trues - falses)


def feature_data(df: pd.DataFrame, spec_types: dict[str, str]) -> FeatureData:
    """Cast and summarise the non-skipped features of ``df`` (see ``FeatureData``).

    Raises
    ------
    DataError
        If a feature column is missing or a value does not parse as its type.
    """
    missing = [name for name, kind in spec_types.items() if feature_kind(kind) != "skipped" and name not in df.columns]
    if missing:
        raise DataError(f"missing feature column(s): {', '.join(missing)}", details={"columns": missing})
    numeric_types = {name: kind for name, kind in spec_types.items() if kind in NUMERIC_TYPES or kind == "boolean"}
    typed = typed_frame(df, numeric_types)
    numeric = {name: numeric_values(typed[name]) for name in numeric_types}
    counts: dict[str, tuple[dict[str, int], int]] = {}
    for name, kind in spec_types.items():
        if kind == "boolean":
            counts[name] = _boolean_counts(numeric.pop(name))
        elif kind == "category":
            counts[name] = _category_label_counts(df[name])
    return FeatureData(numeric=numeric, counts=counts)


def _numeric_profile(values: np.ndarray) -> NumericProfile:
    finite = values[~np.isnan(values)]
    nulls = int(values.size - finite.size)
    n = int(finite.size)
    if n == 0:
        return NumericProfile(0, nulls, None, None, None, None, [], [0], [], [], [], True)
    ordered = np.sort(finite)
    distinct_mask = np.empty(n, dtype=bool)
    distinct_mask[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=distinct_mask[1:])
    distinct = int(distinct_mask.sum())
    if distinct <= EXACT_DISTINCT:
        knots = ordered[distinct_mask]
        exact = True
    else:
        positions = np.linspace(0, n - 1, SKETCH_QUANTILES + 1)
        knots = np.unique(ordered[np.round(positions).astype(np.int64)])  # order statistics, no interpolation
        exact = False
    le = np.searchsorted(ordered, knots, side="right")
    lt = np.searchsorted(ordered, knots, side="left")
    deciles = ordered[np.round(np.linspace(0, n - 1, PSI_BINS + 1)[1:-1]).astype(np.int64)]
    edges = np.unique(deciles)
    bin_counts = np.diff(np.concatenate([[0], np.searchsorted(ordered, edges, side="right"), [n]]))
    mean = float(finite.mean(dtype=np.float64))
    std = float(finite.std(dtype=np.float64, ddof=1)) if n > 1 else 0.0
    return NumericProfile(
        count=n,
        nulls=nulls,
        mean=_finite_or_none(mean),
        std=_finite_or_none(std),
        min=float(ordered[0]),
        max=float(ordered[-1]),
        edges=[float(e) for e in edges],
        bin_counts=[int(c) for c in bin_counts],
        values=[float(v) for v in knots],
        le=[int(v) for v in le],
        lt=[int(v) for v in lt],
        exact=exact,
    )


def _categorical_profile(counts: dict[str, int], nulls: int) -> CategoricalProfile:
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    frequencies = dict(ordered[:TOP_CATEGORIES])
    rest = sum(n for _, n in ordered[TOP_CATEGORIES:])
    if rest:
        frequencies[OTHER] = frequencies.get(OTHER, 0) + rest
    return CategoricalProfile(count=sum(counts.values()), nulls=nulls, frequencies=frequencies, distinct=len(counts))


def build_profile(df: pd.DataFrame, spec: ModelSpec, *, created_at: str | None = None) -> Profile:
    """Profile the spec's features of a training frame (see the module docstring).

    Raises
    ------
    DataError
        If a feature column is missing or does not parse as its spec type.
    """
    spec_types: dict[str, str] = {name: str(feature.type) for name, feature in spec.features.items()}
    data = feature_data(with_category_mappings(missing_sentinels(df, spec), spec), spec_types)
    features: dict[str, FeatureProfile] = {}
    skipped: dict[str, str] = {}
    for name, spec_type in spec_types.items():
        kind = feature_kind(spec_type)
        if kind == "numeric":
            features[name] = _numeric_profile(data.numeric[name])
        elif kind == "categorical":
            features[name] = _categorical_profile(*data.counts[name])
        else:
            skipped[name] = f"type {spec_type}: not checked for drift (a time value moves forward by construction)"
    return Profile(
        rows=len(df),
        spec_hash=spec_hash(spec),
        created_at=created_at or datetime.now(UTC).isoformat(timespec="seconds"),
        features=features,
        types=spec_types,
        skipped=skipped,
    )
