"""Data drift: compare new data with a model's reference profile (``conveyor.profile``).

``drift_report(reference_profile, current_frame, spec)`` reads only the profile, never the
training data. Per feature:

numeric (``number``, ``integer``)
    PSI over the profile's decile bins (plus a null bin when either side has nulls), with
    proportions floored at ``PSI_EPSILON`` so an empty bin does not give an infinite term;
    the two-sample Kolmogorov-Smirnov statistic between the reference CDF sketch and the
    exact empirical CDF of the current values; its p-value from the asymptotic two-sample
    distribution, ``kstwo.sf(D, round(n*m/(n+m)))`` (what ``scipy.stats.ks_2samp`` does in
    ``method="asymp"``). Two-sample rather than one-sample against the reference CDF because
    the reference is itself a sample: a one-sample test would treat a 200-row training set's
    CDF as the truth and over-flag. The binned chi-square test of homogeneity on the PSI bins
    (catches null-share changes that KS, which ignores nulls, cannot see). The feature's
    p-value is ``min(1, 2 * min(p_ks, p_chi2))`` (Bonferroni over its two tests).
categorical (``category``; ``boolean`` as two categories)
    Current values are mapped onto the profile's categories (values outside its top 100 go to
    ``__other__``); the Jensen-Shannon distance (base 2, in [0, 1]), PSI, and the chi-square
    test of homogeneity on the 2 x K table of reference and current counts (two-sample, like
    ``scipy.stats.chi2_contingency(correction=False)``: the reference counts are a sample too).

The decision rule
    A feature drifts when BOTH
      * its effect size exceeds a threshold: ``PSI > psi_threshold`` or
        ``KS > ks_threshold`` (numeric), ``JS > js_threshold`` (categorical); and
      * the difference is statistically significant: its p-value, adjusted by Holm-Bonferroni
        over every feature tested in the report, is below ``alpha``.
    Why both: effect sizes estimate how different the distributions are and do not grow with
    the number of rows, but their noise does shrink with it; at 100 rows, the PSI of two
    samples of the SAME distribution is about (bins - 1) / n_eff ~ 0.1 on average and exceeds
    0.2 a few percent of the time per feature, so an effect-size rule alone flags noise on
    small batches. P-values measure only whether a difference is detectable: at a million
    rows a KS of 0.003 is "significant" at p < 1e-6, so a p-value rule alone flags every
    batch of a big, harmlessly different data set. Requiring both makes the rule quiet on
    noise at 100 rows and on trivial differences at millions of rows, with no cut-over at a
    magic row count. Holm (not Benjamini-Hochberg) because a drift verdict triggers alarms
    and retraining: it controls the family-wise error rate, the chance of even one false
    alarm among the features, at ``alpha``.

Domain classifier
    A ``HistGradientBoostingClassifier`` is told to separate reference rows from current
    rows; its 3-fold cross-validated ROC AUC is compared with ``auc_threshold``, with the
    same "effect and significance" rule (the out-of-fold AUC is the Mann-Whitney statistic of
    the out-of-fold scores; its one-sided p-value must be below ``alpha``). The features that
    separate the two sides most are ranked by permutation importance (the AUC lost on the
    first held-out fold when the feature is shuffled). The profile holds no rows, so reference rows
    are drawn from it: each feature independently, numeric by inverse CDF of the sketch, nulls
    and categories by their frequencies. These independent marginals carry no correlation, so
    the current rows are decorrelated the same way (each column shuffled on its own) before
    the classifier sees them; otherwise it would learn "real rows have correlations" and
    flag every batch. With a profile reference the classifier is therefore sensitive to
    marginal shifts, including many small ones that add up, but NOT to a change in the
    correlation between features alone. When the caller has reference rows
    (``reference_frame``, e.g. ``conveyor drift REF.csv CUR.csv``) real rows are used on both
    sides and a change of correlation is detectable too. Each side is capped at ``max_rows``.

Verdict: ``"drift"`` when the share of drifted features exceeds ``max_drifted_share``
(0 means any one) or the domain classifier drifted; otherwise ``"no_drift"``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial.distance import jensenshannon

from conveyor.errors import DataError
from conveyor.profile import (
    OTHER,
    CategoricalProfile,
    NumericProfile,
    Profile,
    categorical_values,
    feature_data,
    feature_kind,
    numeric_values,
    typed_features,
)
from conveyor.spec import ModelSpec, spec_hash
from conveyor.tabular import with_category_mappings

PSI_EPSILON = 1e-4
NULL_BIN = "__null__"
TOP_IMPORTANT = 5
CV_FOLDS = 3
MIN_ROWS_PER_SIDE = 2 * CV_FOLDS
KSTWO_MAX_N = 10_000


def _setting(section: Any, key: str, default: Any) -> Any:
    if section is None:
        return default
    value = section.get(key, default) if isinstance(section, dict) else getattr(section, key, default)
    return default if value is None else value


@dataclass(frozen=True)
class DriftSettings:
    """Thresholds of the drift checks (the spec's ``drift:`` section, or these defaults)."""

    psi_threshold: float = 0.2
    ks_threshold: float = 0.1
    js_threshold: float = 0.1
    alpha: float = 0.01
    domain_classifier: bool = True
    auc_threshold: float = 0.6
    max_rows: int = 20000
    max_drifted_share: float = 0.0

    @classmethod
    def from_spec(cls, spec: Any) -> DriftSettings:
        """Settings from ``spec.drift`` (an object or a mapping); defaults for what is absent."""
        section = getattr(spec, "drift", None)
        default = cls()
        if section is None:
            return default
        classifier = _setting(section, "domain_classifier", None)
        return cls(
            psi_threshold=float(_setting(section, "psi_threshold", default.psi_threshold)),
            ks_threshold=float(_setting(section, "ks_threshold", default.ks_threshold)),
            js_threshold=float(_setting(section, "js_threshold", default.js_threshold)),
            alpha=float(_setting(section, "alpha", default.alpha)),
            domain_classifier=bool(_setting(classifier, "enabled", default.domain_classifier)),
            auc_threshold=float(_setting(classifier, "auc_threshold", default.auc_threshold)),
            max_rows=int(_setting(classifier, "max_rows", default.max_rows)),
            max_drifted_share=float(_setting(section, "max_drifted_share", default.max_drifted_share)),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "psi_threshold": self.psi_threshold,
            "ks_threshold": self.ks_threshold,
            "js_threshold": self.js_threshold,
            "alpha": self.alpha,
            "domain_classifier": {
                "enabled": self.domain_classifier,
                "auc_threshold": self.auc_threshold,
                "max_rows": self.max_rows,
            },
            "max_drifted_share": self.max_drifted_share,
        }


# --------------------------------------------------------------------------- statistics


def psi(reference: np.ndarray, current: np.ndarray, epsilon: float = PSI_EPSILON) -> float:
    """Population stability index of two count (or proportion) vectors over the same bins.

    ``sum((c - r) * ln(c / r))`` over proportions floored at ``epsilon``.
    """
    ref = np.asarray(reference, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    if ref.sum() <= 0 or cur.sum() <= 0:
        return 0.0
    r = np.maximum(ref / ref.sum(), epsilon)
    c = np.maximum(cur / cur.sum(), epsilon)
    return float(np.sum((c - r) * np.log(c / r)))


def chi2_homogeneity(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """Chi-square test that two count vectors come from one distribution: (statistic, p-value).

    The same as ``scipy.stats.chi2_contingency([reference, current], correction=False)`` after
    dropping categories empty on both sides; p = 1 when fewer than two categories remain.
    """
    table = np.vstack([np.asarray(reference, dtype=np.float64), np.asarray(current, dtype=np.float64)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or np.any(table.sum(axis=1) == 0):
        return 0.0, 1.0
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    return statistic, float(stats.chi2.sf(statistic, table.shape[1] - 1))


def ks_pvalue(statistic: float, n_reference: int, n_current: int) -> float:
    """Asymptotic two-sample KS p-value: ``kstwo.sf(D, round(n*m/(n+m)))``, as
    ``scipy.stats.ks_2samp(method="asymp")`` computes it, up to an effective size of
    ``KSTWO_MAX_N``; beyond it the limiting Kolmogorov distribution ``kstwobign.sf(D * sqrt(n))``
    (``kstwo`` costs ~0.1 s per call there and the two agree to within 1 % relative)."""
    if n_reference <= 0 or n_current <= 0:
        return 1.0
    m, n = float(n_reference), float(n_current)
    en = max(1.0, round(m * n / (m + n)))
    p = stats.kstwo.sf(statistic, en) if en <= KSTWO_MAX_N else stats.kstwobign.sf(statistic * math.sqrt(en))
    return float(np.clip(p, 0.0, 1.0))


def ks_statistic(reference: NumericProfile, current_sorted: np.ndarray) -> float:
    """sup |F_ref - F_cur| between the profile's CDF sketch and the current values (sorted, no NaN).

    Between consecutive candidate points (knots and distinct current values) the current ECDF
    is constant and the modelled reference CDF linear, so the supremum is at a candidate point
    or its left limit: evaluating both limits at every candidate point gives the exact sup for
    the model.
    """
    n = current_sorted.size
    if n == 0 or reference.count == 0:
        return 0.0
    first = np.empty(n, dtype=bool)
    first[0] = True
    np.not_equal(current_sorted[1:], current_sorted[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    distinct = current_sorted[starts]
    cur_left = starts / n  # share of current values < each distinct value
    cur_right = np.append(starts[1:], n) / n  # share <= it
    knots = np.asarray(reference.values, dtype=np.float64)
    points = np.concatenate([distinct, knots])
    ref_right, ref_left = reference.cdf(points)
    knot_left = np.searchsorted(current_sorted, knots, side="left") / n
    knot_right = np.searchsorted(current_sorted, knots, side="right") / n
    return float(
        max(
            np.max(np.abs(ref_right[: distinct.size] - cur_right)),
            np.max(np.abs(ref_left[: distinct.size] - cur_left)),
            np.max(np.abs(ref_right[distinct.size :] - knot_right)),
            np.max(np.abs(ref_left[distinct.size :] - knot_left)),
        )
    )


def holm_adjust(pvalues: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (same order as given)."""
    k = len(pvalues)
    if k == 0:
        return []
    order = np.argsort(pvalues, kind="stable")
    adjusted = np.empty(k)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (k - rank) * pvalues[index]))
        adjusted[index] = running
    return [float(v) for v in adjusted]


# --------------------------------------------------------------------------- report types


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


@dataclass
class FeatureDrift:
    """The drift of one feature: effect sizes, tests, thresholds and the decision."""

    name: str
    type: str
    kind: str  # numeric | categorical | skipped
    method: str
    psi: float | None = None
    ks: float | None = None
    ks_pvalue: float | None = None
    js: float | None = None
    chi2_pvalue: float | None = None
    pvalue: float | None = None  # the feature's raw p-value
    pvalue_adjusted: float | None = None  # Holm-adjusted over the report's features
    thresholds: dict[str, float] = field(default_factory=dict)
    reference: dict[str, Any] = field(default_factory=dict)
    current: dict[str, Any] = field(default_factory=dict)
    effect_exceeded: bool = False
    significant: bool = False
    drifted: bool = False
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "kind": self.kind,
            "method": self.method,
            "values": {"psi": self.psi, "ks": self.ks, "js": self.js},
            "thresholds": self.thresholds,
            "pvalues": {"ks": self.ks_pvalue, "chi2": self.chi2_pvalue},
            "pvalue": self.pvalue,
            "pvalue_adjusted": self.pvalue_adjusted,
            "reference": self.reference,
            "current": self.current,
            "effect_exceeded": self.effect_exceeded,
            "significant": self.significant,
            "drifted": self.drifted,
            "message": self.message,
        }


@dataclass
class DomainClassifierResult:
    """Whether a classifier can tell reference rows from current rows."""

    enabled: bool
    auc: float | None = None
    threshold: float = 0.6
    pvalue: float | None = None
    drifted: bool = False
    top_features: list[dict[str, float | str]] = field(default_factory=list)
    reference_source: str = "profile_sample"  # or "rows"
    rows_reference: int = 0
    rows_current: int = 0
    seconds: float = 0.0
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "auc": self.auc,
            "threshold": self.threshold,
            "pvalue": self.pvalue,
            "drifted": self.drifted,
            "top_features": self.top_features,
            "reference_source": self.reference_source,
            "rows_reference": self.rows_reference,
            "rows_current": self.rows_current,
            "seconds": round(self.seconds, 3),
            "message": self.message,
        }


@dataclass
class DriftReport:
    """Per-feature drift, the domain classifier and the verdict."""

    features: list[FeatureDrift]
    domain_classifier: DomainClassifierResult
    rows_reference: int
    rows_current: int
    settings: DriftSettings
    warnings: list[str] = field(default_factory=list)

    @property
    def drifted_features(self) -> list[str]:
        return [f.name for f in self.features if f.drifted]

    @property
    def checked_features(self) -> list[str]:
        return [f.name for f in self.features if f.kind != "skipped"]

    @property
    def drifted_share(self) -> float:
        checked = len(self.checked_features)
        return len(self.drifted_features) / checked if checked else 0.0

    @property
    def drifted(self) -> bool:
        by_features = bool(self.drifted_features) and self.drifted_share > self.settings.max_drifted_share
        return by_features or self.domain_classifier.drifted

    @property
    def verdict(self) -> str:
        return "drift" if self.drifted else "no_drift"

    @property
    def summary(self) -> str:
        names = self.drifted_features
        checked = len(self.checked_features)
        head = f"{self.verdict}: {len(names)} of {checked} features drifted"
        if names:
            head += f" ({', '.join(names)})"
        dc = self.domain_classifier
        if dc.enabled and dc.auc is not None:
            op = ">" if dc.auc > dc.threshold else "<="
            head += f"; domain classifier AUC {dc.auc:.3f} {op} {dc.threshold:.2f}"
            if dc.drifted and dc.top_features:
                head += f" (top: {', '.join(str(t['name']) for t in dc.top_features[:3])})"
        return head + f"; {self.rows_current} rows vs reference of {self.rows_reference}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able (non-finite numbers become ``None``)."""
        return _json_safe(
            {
                "verdict": self.verdict,
                "summary": self.summary,
                "drifted_features": self.drifted_features,
                "drifted_share": self.drifted_share,
                "rows_reference": self.rows_reference,
                "rows_current": self.rows_current,
                "features": [f.to_dict() for f in self.features],
                "domain_classifier": self.domain_classifier.to_dict(),
                "settings": self.settings.to_dict(),
                "warnings": self.warnings,
            }
        )

    def metrics(self, model: str) -> list[tuple[str, dict[str, str], float]]:
        """CloudWatch-style datapoints ``(metric_name, dimensions, value)`` for this report."""
        points: list[tuple[str, dict[str, str], float]] = []
        for feature in self.features:
            dims = {"Model": model, "Feature": feature.name}
            if feature.psi is not None:
                points.append(("FeaturePSI", dims, feature.psi))
            if feature.ks is not None:
                points.append(("FeatureKS", dims, feature.ks))
            if feature.js is not None:
                points.append(("FeatureJS", dims, feature.js))
            if feature.kind != "skipped":
                points.append(("FeatureDrifted", dims, 1.0 if feature.drifted else 0.0))
        model_dims = {"Model": model}
        points.append(("DriftedFeatures", model_dims, float(len(self.drifted_features))))
        points.append(("DriftedFeatureShare", model_dims, self.drifted_share))
        if self.domain_classifier.auc is not None:
            points.append(("DomainClassifierAUC", model_dims, self.domain_classifier.auc))
        points.append(("DriftDetected", model_dims, 1.0 if self.drifted else 0.0))
        points.append(("DriftRowsChecked", model_dims, float(self.rows_current)))
        return points


# --------------------------------------------------------------------------- per feature


def _fmt_p(p: float | None) -> str:
    if p is None:
        return "n/a"
    return f"{p:.2g}" if p >= 1e-3 else f"{p:.0e}"


def _cmp(value: float, threshold: float) -> str:
    return f"{value:.2f} {'>' if value > threshold else '<='} {threshold:.2f}"


def _numeric_drift(
    name: str, spec_type: str, ref: NumericProfile, values: np.ndarray, s: DriftSettings
) -> FeatureDrift:
    nan = np.isnan(values)
    finite = np.sort(values[~nan])
    nulls = int(nan.sum())
    n = int(finite.size)
    edges = np.asarray(ref.edges, dtype=np.float64)
    cur_bins = np.diff(np.concatenate([[0], np.searchsorted(finite, edges, side="right"), [n]]))
    ref_bins = np.asarray(ref.bin_counts, dtype=np.float64)
    if ref.nulls or nulls:
        ref_bins = np.append(ref_bins, ref.nulls)
        cur_bins = np.append(cur_bins, nulls)
    value_psi = psi(ref_bins, cur_bins)
    _, p_chi2 = chi2_homogeneity(ref_bins, cur_bins)
    ks = ks_statistic(ref, finite)
    p_ks = ks_pvalue(ks, ref.count, n)
    mean = float(finite.mean()) if n else None
    std = float(finite.std(ddof=1)) if n > 1 else None
    total = n + nulls
    return FeatureDrift(
        name=name,
        type=spec_type,
        kind="numeric",
        method="psi+ks+chi2_binned",
        psi=value_psi,
        ks=ks,
        ks_pvalue=p_ks,
        chi2_pvalue=p_chi2,
        pvalue=min(1.0, 2.0 * min(p_ks, p_chi2)),
        thresholds={"psi": s.psi_threshold, "ks": s.ks_threshold},
        reference={"mean": ref.mean, "std": ref.std, "null_share": ref.null_share, "count": ref.count},
        current={
            "mean": mean if mean is None or math.isfinite(mean) else None,
            "std": std if std is None or math.isfinite(std) else None,
            "null_share": nulls / total if total else 0.0,
            "count": n,
        },
        effect_exceeded=value_psi > s.psi_threshold or ks > s.ks_threshold,
    )


def _current_category_counts(ref: CategoricalProfile, counts: dict[str, int]) -> tuple[np.ndarray, int]:
    """Current counts per reference category, then one slot for values the reference never saw
    (unless it has an ``__other__`` bucket, which takes them), and how many such values."""
    labels = list(ref.frequencies)
    index = {label: i for i, label in enumerate(labels) if label != OTHER}
    other = labels.index(OTHER) if OTHER in ref.frequencies else len(labels)
    out = np.zeros(len(labels) + 1, dtype=np.float64)
    unseen = 0
    for label, count in counts.items():
        if label in index:
            out[index[label]] += count
        else:
            out[other] += count
            unseen += count
    return out, unseen


def _shares(labels: list[str], counts: np.ndarray, top: int = 10) -> dict[str, float]:
    total = counts.sum()
    if total <= 0:
        return {}
    order = np.argsort(-counts, kind="stable")[:top]
    return {labels[i]: float(counts[i] / total) for i in order}


def _categorical_drift(
    name: str, spec_type: str, ref: CategoricalProfile, counts: dict[str, int], nulls: int, s: DriftSettings
) -> FeatureDrift:
    cur_counts, unseen = _current_category_counts(ref, counts)
    labels = [*ref.frequencies, f"{OTHER} (new)"]  # the last slot: values the reference never saw
    ref_counts = np.asarray([*ref.frequencies.values(), 0], dtype=np.float64)
    if ref.nulls or nulls:
        labels.append(NULL_BIN)
        ref_counts = np.append(ref_counts, ref.nulls)
        cur_counts = np.append(cur_counts, nulls)
    value_psi = psi(ref_counts, cur_counts)
    _, p_chi2 = chi2_homogeneity(ref_counts, cur_counts)
    if ref_counts.sum() > 0 and cur_counts.sum() > 0:
        js = float(jensenshannon(ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum(), base=2))
        js = 0.0 if not math.isfinite(js) else js
    else:
        js = 0.0
    total = int(cur_counts.sum())
    return FeatureDrift(
        name=name,
        type=spec_type,
        kind="categorical",
        method="js+chi2",
        psi=value_psi,
        js=js,
        chi2_pvalue=p_chi2,
        pvalue=p_chi2,
        thresholds={"js": s.js_threshold},
        reference={"shares": _shares(labels, ref_counts), "null_share": ref.null_share, "count": ref.count},
        current={
            "shares": _shares(labels, cur_counts),
            "null_share": nulls / total if total else 0.0,
            "count": total - nulls,
            "unseen": unseen,
        },
        effect_exceeded=js > s.js_threshold,
    )


def _message(f: FeatureDrift, alpha: float) -> str:
    if f.kind == "skipped":
        return f.message
    if f.kind == "numeric":
        assert f.psi is not None and f.ks is not None
        effect = f"PSI {_cmp(f.psi, f.thresholds['psi'])}, KS {_cmp(f.ks, f.thresholds['ks'])}"
    else:
        assert f.js is not None
        effect = f"JS {_cmp(f.js, f.thresholds['js'])}"
    text = f"{f.name}: {effect} (p={_fmt_p(f.pvalue_adjusted)})"
    if f.drifted:
        return text
    if f.effect_exceeded:
        return text + f"; not significant at alpha {alpha:g}, no drift"
    if f.significant:
        return text + "; significant but below the effect thresholds, no drift"
    return text + "; no drift"


# --------------------------------------------------------------------------- domain classifier


def _encode_categorical(values: np.ndarray, vocabulary: dict[str, int]) -> np.ndarray:
    series = pd.Series(values, dtype=object)
    mapped = series.map(vocabulary)
    other = float(vocabulary.get(OTHER, len(vocabulary)))
    result = np.array(mapped.astype("float64").to_numpy(), dtype=np.float64, copy=True)
    unknown = np.isnan(result) & series.notna().to_numpy()
    result[unknown] = other
    return result


def _sample_reference(profile: Profile, names: list[str], rows: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Rows drawn from the profile: each feature independently (inverse CDF / category frequencies)."""
    columns: dict[str, np.ndarray] = {}
    for name in names:
        feature = profile.features[name]
        if isinstance(feature, NumericProfile):
            column = feature.inverse_cdf(rng.random(rows))
            column[rng.random(rows) < feature.null_share] = np.nan
        else:
            labels = [*feature.frequencies, None]
            weights = np.asarray([*feature.frequencies.values(), feature.nulls], dtype=np.float64)
            picks = rng.choice(len(labels), size=rows, p=weights / weights.sum())
            column = np.asarray(labels, dtype=object)[picks]
        columns[name] = column
    return columns


def _rows(
    frame: pd.DataFrame, rows: np.ndarray, names: list[str], kinds: dict[str, str], types: dict[str, str]
) -> dict[str, np.ndarray]:
    """Typed columns of the given rows only (cheap: the classifier sees at most ``max_rows``)."""
    typed = typed_features(frame.iloc[np.sort(rows)], {name: types[name] for name in names})
    return {
        name: numeric_values(typed[name]) if kinds[name] == "numeric" else categorical_values(typed[name], types[name])
        for name in names
    }


def _domain_classifier(
    profile: Profile,
    current: pd.DataFrame,
    reference_frame: pd.DataFrame | None,
    names: list[str],
    kinds: dict[str, str],
    types: dict[str, str],
    s: DriftSettings,
    seed: int,
) -> DomainClassifierResult:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold
    from threadpoolctl import threadpool_limits

    started = time.perf_counter()
    result = DomainClassifierResult(enabled=True, threshold=s.auc_threshold)
    rng = np.random.default_rng(seed)
    cur_idx = rng.permutation(len(current))[: s.max_rows]
    if reference_frame is not None:
        result.reference_source = "rows"
        ref_cols = _rows(reference_frame, rng.permutation(len(reference_frame))[: s.max_rows], names, kinds, types)
        cur_cols = _rows(current, cur_idx, names, kinds, types)
    else:
        ref_cols = _sample_reference(profile, names, min(s.max_rows, profile.rows), rng)
        # decorrelate the current rows as the sampled reference rows are (see the module docstring)
        cur_cols = {
            name: rng.permutation(column) for name, column in _rows(current, cur_idx, names, kinds, types).items()
        }
    n_ref = len(next(iter(ref_cols.values()))) if names else 0
    n_cur = int(cur_idx.size)
    result.rows_reference, result.rows_current = int(n_ref), int(n_cur)
    if not names or min(n_ref, n_cur) < MIN_ROWS_PER_SIDE:
        result.message = f"skipped: needs at least {MIN_ROWS_PER_SIDE} rows per side and one feature"
        result.seconds = time.perf_counter() - started
        return result

    matrix = np.empty((n_ref + n_cur, len(names)), dtype=np.float64)
    categorical = np.zeros(len(names), dtype=bool)
    for j, name in enumerate(names):
        feature = profile.features[name]
        if isinstance(feature, NumericProfile):
            matrix[:n_ref, j] = ref_cols[name]
            matrix[n_ref:, j] = cur_cols[name]
        else:
            vocabulary = {label: i for i, label in enumerate(feature.frequencies)}
            matrix[:n_ref, j] = _encode_categorical(ref_cols[name], vocabulary)
            matrix[n_ref:, j] = _encode_categorical(cur_cols[name], vocabulary)
            categorical[j] = True
    y = np.concatenate([np.zeros(n_ref, dtype=np.int64), np.ones(n_cur, dtype=np.int64)])

    # One OpenMP thread: on a busy host (parallel test workers, a shared Lambda vCPU) the default
    # spin-waiting threads of HistGradientBoosting slow down 10-100x; one thread never does.
    with threadpool_limits(limits=1, user_api="openmp"):
        scores = np.zeros(y.size)
        importance = np.zeros(len(names))
        folds = StratifiedKFold(n_splits=CV_FOLDS, shuffle=True, random_state=seed)
        for fold, (train, test) in enumerate(folds.split(matrix, y)):
            model = HistGradientBoostingClassifier(
                max_iter=50,
                learning_rate=0.1,
                max_leaf_nodes=15,
                min_samples_leaf=20,
                categorical_features=categorical if categorical.any() else None,
                early_stopping=False,
                random_state=seed,
            )
            model.fit(matrix[train], y[train])
            held_out = matrix[test]
            fold_scores = model.predict_proba(held_out)[:, 1]
            scores[test] = fold_scores
            if fold == 0:  # permutation importance on one held-out fold: enough to rank, a third of the cost
                fold_auc = roc_auc_score(y[test], fold_scores)
                for j in range(len(names)):
                    shuffled = held_out.copy()
                    shuffled[:, j] = rng.permutation(shuffled[:, j])
                    importance[j] = fold_auc - roc_auc_score(y[test], model.predict_proba(shuffled)[:, 1])

    auc = float(roc_auc_score(y, scores))
    pvalue = float(stats.mannwhitneyu(scores[y == 1], scores[y == 0], alternative="greater").pvalue)
    result.auc, result.pvalue = auc, pvalue
    result.drifted = auc > s.auc_threshold and pvalue < s.alpha
    ranked = np.argsort(-importance, kind="stable")
    result.top_features = [
        {"name": names[j], "importance": round(float(importance[j]), 4)}
        for j in ranked[:TOP_IMPORTANT]
        if importance[j] > 0
    ]
    op = ">" if auc > s.auc_threshold else "<="
    result.message = f"domain classifier AUC {auc:.3f} {op} {s.auc_threshold:.2f} (p={_fmt_p(pvalue)})"
    if result.top_features:
        result.message += "; separates most on " + ", ".join(str(t["name"]) for t in result.top_features[:3])
    result.seconds = time.perf_counter() - started
    return result


# --------------------------------------------------------------------------- entry point


def drift_report(
    reference: Profile,
    current: pd.DataFrame,
    spec: ModelSpec,
    *,
    settings: DriftSettings | None = None,
    reference_frame: pd.DataFrame | None = None,
    seed: int = 0,
) -> DriftReport:
    """Compare ``current`` with the ``reference`` profile (see the module docstring for the rule).

    Parameters
    ----------
    reference
        The profile of the training data (``profile.json``).
    current
        New data with (at least) the spec's feature columns.
    spec
        The model spec; its ``drift:`` section gives the thresholds unless ``settings`` is given.
    reference_frame
        Optional reference rows: when given, the domain classifier uses them instead of rows
        sampled from the profile (per-feature tests always use the profile).
    seed
        Seed of the domain classifier's sampling, shuffles and folds.

    Raises
    ------
    DataError
        If ``current`` has no rows, lacks a feature column, or a value does not parse.
    """
    s = settings or DriftSettings.from_spec(spec)
    if len(current) == 0:
        raise DataError("current data has no rows", details={"reason": "empty"})
    types: dict[str, str] = {name: str(feature.type) for name, feature in spec.features.items()}
    warnings: list[str] = []
    if reference.spec_hash and reference.spec_hash != spec_hash(spec):
        warnings.append("the profile was built with a different spec (spec hash differs)")

    data = feature_data(with_category_mappings(current, spec), types)
    results: list[FeatureDrift] = []
    tested: list[str] = []
    kinds: dict[str, str] = {}
    for name, spec_type in types.items():
        kind = feature_kind(spec_type)
        ref = reference.features.get(name)
        if kind == "skipped":
            results.append(FeatureDrift(name, spec_type, "skipped", "none", message=f"{name}: {spec_type} not checked"))
            continue
        expected = NumericProfile if kind == "numeric" else CategoricalProfile
        if not isinstance(ref, expected):
            reason = "not in the reference profile" if ref is None else "profiled as another type"
            warnings.append(f"{name}: {reason}; not checked")
            results.append(FeatureDrift(name, spec_type, "skipped", "none", message=f"{name}: {reason}"))
            continue
        kinds[name] = kind
        if isinstance(ref, NumericProfile):
            results.append(_numeric_drift(name, spec_type, ref, data.numeric[name], s))
        else:
            results.append(_categorical_drift(name, spec_type, ref, *data.counts[name], s))
        tested.append(name)

    checked = [f for f in results if f.kind != "skipped"]
    adjusted = holm_adjust([f.pvalue if f.pvalue is not None else 1.0 for f in checked])
    for f, p in zip(checked, adjusted, strict=True):
        f.pvalue_adjusted = p
        f.significant = p < s.alpha
        f.drifted = f.effect_exceeded and f.significant
        f.message = _message(f, s.alpha)

    if s.domain_classifier:
        domain = _domain_classifier(reference, current, reference_frame, tested, kinds, types, s, seed)
    else:
        domain = DomainClassifierResult(enabled=False, threshold=s.auc_threshold, message="disabled")
    rows_reference = len(reference_frame) if reference_frame is not None else reference.rows
    return DriftReport(results, domain, rows_reference, len(current), s, warnings)
