"""The statistics of Conveyor, in one place: PSI (two named variants), KS, chi-square,
Jensen-Shannon, ROC AUC, the leakage strength of a feature, and Holm's adjustment.

Drift (``conveyor.drift``), the bake analysis of a deployment, the data gate (leakage) and spec
inference all take their numbers from here. Only numpy is imported with the module (it is cheap
and sits on every path); scipy is imported inside the functions that need a distribution's tail
or a rank, pandas inside ``category_scores``.

Two PSIs, and why they differ
    Both are ``sum((c - r) * ln(c / r))`` over the shares ``r`` (reference) and ``c`` (current)
    of the same bins; they differ in how an empty bin is kept finite and in what the number is
    compared with.

    ``psi`` (feature PSI, used by drift) floors each share at ``PSI_EPSILON`` (1e-4), the
    textbook definition that the usual thresholds (0.1, 0.2, 0.25) are quoted for. Drift compares
    it with ``psi_threshold`` only together with a significance test (chi-square on the same
    bins, Holm-adjusted), and that test, not the PSI, is what keeps small batches quiet.

    ``debiased_psi`` (score shift, used by a deployment's bake check) smooths the counts
    additively, ``(count + eps) / (n + eps * bins)`` (shares still sum to one), and subtracts
    the PSI expected when both sides come from one distribution, ``(bins - 1) * (1/n + 1/m)``.
    A bake has a few hundred captured scores a side and no test beside the number: raw PSI there
    is mostly sampling noise (about 0.1 for 5 bins and 80 rows a side), so the number compared
    with ``max_score_shift`` must have its noise removed. The smoothing differs from the floor
    only where a bin is empty (an empty bin weighs ``eps / n`` instead of ``eps``); each variant
    is kept as it was so that drift reports and bake verdicts do not change.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Protocol

import numpy as np

PSI_EPSILON = 1e-4
SCORE_SHIFT_EPSILON = 1e-4
KSTWO_MAX_N = 10_000
LEAKAGE_MIN_PER_CLASS = 10  # at least this many rows of each class before a 0/1 leakage AUC is measured
CATEGORY_MIN_SUPPORT = 5  # rarer categories are pooled when scoring a category for leakage


# --------------------------------------------------------------------------- PSI


def psi(reference: np.ndarray, current: np.ndarray, epsilon: float = PSI_EPSILON) -> float:
    """Feature PSI of two count (or proportion) vectors over the same bins.

    ``sum((c - r) * ln(c / r))`` over proportions floored at ``epsilon``; 0 when a side is empty.
    """
    ref = np.asarray(reference, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    if ref.sum() <= 0 or cur.sum() <= 0:
        return 0.0
    r = np.maximum(ref / ref.sum(), epsilon)
    c = np.maximum(cur / cur.sum(), epsilon)
    return float(np.sum((c - r) * np.log(c / r)))


class DebiasedPSI(NamedTuple):
    """A PSI, the PSI expected from sampling noise alone, and their difference (floored at 0)."""

    psi: float
    expected_noise: float  # (bins - 1) * (1/n_reference + 1/n_current)
    shift: float  # max(0, psi - expected_noise)


def debiased_psi(
    reference_counts: np.ndarray, current_counts: np.ndarray, epsilon: float = SCORE_SHIFT_EPSILON
) -> DebiasedPSI:
    """Score-shift PSI of two count vectors over the same bins, additively smoothed, minus its
    expected value under no shift (see the module docstring for why it is not ``psi``)."""
    ref = np.asarray(reference_counts)
    cur = np.asarray(current_counts)
    p = (ref + epsilon) / (ref.sum() + epsilon * len(ref))
    q = (cur + epsilon) / (cur.sum() + epsilon * len(cur))
    value = float(np.sum((q - p) * np.log(q / p)))
    noise = (len(ref) - 1) * (1 / int(ref.sum()) + 1 / int(cur.sum()))
    return DebiasedPSI(value, noise, max(0.0, value - noise))


# --------------------------------------------------------------------------- KS


class CDFSketch(Protocol):
    """A reference distribution known through its CDF at knots (``conveyor.profile.NumericProfile``)."""

    @property
    def count(self) -> int: ...

    @property
    def values(self) -> list[float]: ...

    def cdf(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


def ks_statistic(reference: CDFSketch, current_sorted: np.ndarray) -> float:
    """sup |F_ref - F_cur| between a reference CDF sketch and the current values (sorted, no NaN).

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


def ks_pvalue(statistic: float, n_reference: int, n_current: int) -> float:
    """Asymptotic two-sample KS p-value: ``kstwo.sf(D, round(n*m/(n+m)))``, as
    ``scipy.stats.ks_2samp(method="asymp")`` computes it, up to an effective size of
    ``KSTWO_MAX_N``; beyond it the limiting Kolmogorov distribution ``kstwobign.sf(D * sqrt(n))``
    (``kstwo`` costs ~0.1 s per call there and the two agree to within 1 % relative)."""
    from scipy import stats

    if n_reference <= 0 or n_current <= 0:
        return 1.0
    m, n = float(n_reference), float(n_current)
    en = max(1.0, round(m * n / (m + n)))
    p = stats.kstwo.sf(statistic, en) if en <= KSTWO_MAX_N else stats.kstwobign.sf(statistic * math.sqrt(en))
    return float(np.clip(p, 0.0, 1.0))


# --------------------------------------------------------------------------- categorical


def chi2_homogeneity(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """Chi-square test that two count vectors come from one distribution: (statistic, p-value).

    The same as ``scipy.stats.chi2_contingency([reference, current], correction=False)`` after
    dropping categories empty on both sides; p = 1 when fewer than two categories remain.
    """
    table = np.vstack([np.asarray(reference, dtype=np.float64), np.asarray(current, dtype=np.float64)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or np.any(table.sum(axis=1) == 0):
        return 0.0, 1.0
    from scipy import stats

    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    return statistic, float(stats.chi2.sf(statistic, table.shape[1] - 1))


def jensen_shannon(reference: np.ndarray, current: np.ndarray) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) of two count vectors over the same categories;
    0 when a side is empty."""
    from scipy.spatial.distance import jensenshannon

    ref = np.asarray(reference, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    if ref.sum() <= 0 or cur.sum() <= 0:
        return 0.0
    value = float(jensenshannon(ref / ref.sum(), cur / cur.sum(), base=2))
    return value if math.isfinite(value) else 0.0


# --------------------------------------------------------------------------- AUC and leakage


def binary_auc(score: np.ndarray, positive: np.ndarray) -> float:
    """ROC AUC of ``score`` for 0/1 labels by the rank-sum (Mann-Whitney) formula; ties count half.
    0.5 when one class is absent."""
    from scipy.stats import rankdata

    labels = positive.astype(bool)
    n_pos = int(labels.sum())
    n_neg = int(labels.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        return 0.5
    ranks = rankdata(score)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def auc_pvalue(positive_scores: np.ndarray, negative_scores: np.ndarray) -> float:
    """One-sided p-value that the AUC of these scores exceeds 0.5: the Mann-Whitney U test,
    ``alternative="greater"`` (the AUC is U / (n_pos * n_neg))."""
    from scipy import stats

    return float(stats.mannwhitneyu(positive_scores, negative_scores, alternative="greater").pvalue)


def category_scores(categories: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Each row's category mean of ``target``; categories rarer than ``CATEGORY_MIN_SUPPORT`` are pooled."""
    import pandas as pd

    codes, _ = pd.factorize(categories)
    counts = np.bincount(codes)
    sums = np.bincount(codes, weights=target.astype(np.float64))
    rare = counts < CATEGORY_MIN_SUPPORT
    rates = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
    if bool(rare.any()):
        rates[rare] = sums[rare].sum() / max(int(counts[rare].sum()), 1)
    return rates[codes]


def leakage_strength(
    values: np.ndarray, target: np.ndarray, *, categorical: bool, binary: bool
) -> tuple[str, float] | None:
    """How well one feature alone predicts the target: ("auc", max(AUC, 1 - AUC)) for a 0/1 target,
    ("abs_corr", |Pearson r|) otherwise; None when there is too little to say."""
    if values.size < 2 * LEAKAGE_MIN_PER_CLASS:
        return None
    score = category_scores(values, target) if categorical else values.astype(np.float64)
    if binary:
        positives = int(target.sum())
        if min(positives, target.size - positives) < LEAKAGE_MIN_PER_CLASS:
            return None
        auc = binary_auc(score, target)
        return "auc", max(auc, 1.0 - auc)
    if float(np.std(score)) == 0.0 or float(np.std(target)) == 0.0:
        return None
    return "abs_corr", abs(float(np.corrcoef(score, target.astype(np.float64))[0, 1]))


# --------------------------------------------------------------------------- multiple tests


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
