"""conveyor.stats against scipy, scikit-learn and hand computations."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy import stats as sps
from scipy.spatial.distance import jensenshannon
from sklearn.metrics import roc_auc_score

from conveyor import stats


def test_feature_psi_by_hand_floors_empty_bins():
    # (0.3-0.5)ln(0.3/0.5) + 0 + (0.4-0.2)ln(0.4/0.2) = 0.2*0.5108 + 0.2*0.6931 = 0.2408
    assert stats.psi(np.array([50, 30, 20]), np.array([30, 30, 40])) == pytest.approx(0.24079, abs=1e-5)
    # an empty reference bin is floored at 1e-4: (0.9-1)ln(0.9) + (0.1-1e-4)ln(0.1/1e-4)
    assert stats.psi(np.array([100, 0]), np.array([90, 10])) == pytest.approx(0.70062, abs=1e-5)
    assert stats.psi(np.array([0, 0]), np.array([3, 4])) == 0.0


def test_debiased_psi_by_hand_and_its_noise_term():
    ref, cur = np.array([40, 30, 20, 10]), np.array([25, 25, 25, 25])
    p, q = ref / 100, cur / 100
    raw = float(np.sum((q - p) * np.log(q / p)))  # no empty bin: the smoothing changes nothing visible
    result = stats.debiased_psi(ref, cur)
    assert result.psi == pytest.approx(raw, rel=1e-5)
    assert result.expected_noise == pytest.approx(3 * (1 / 100 + 1 / 100))
    assert result.shift == pytest.approx(raw - 0.06, rel=1e-4)
    # identical shares: the raw PSI is 0 and the shift is floored at 0, never negative
    same = stats.debiased_psi(np.array([10, 20]), np.array([20, 40]))
    assert same.psi == pytest.approx(0.0, abs=1e-9) and same.shift == 0.0
    # an empty bin weighs eps/n under additive smoothing, so it costs more than under the floor
    assert stats.debiased_psi(np.array([100, 0]), np.array([90, 10])).psi > stats.psi(
        np.array([100, 0]), np.array([90, 10])
    )


def test_debiased_psi_is_about_zero_on_average_for_one_distribution():
    rng = np.random.default_rng(0)
    shares = np.array([0.2] * 5)
    results = [stats.debiased_psi(rng.multinomial(200, shares), rng.multinomial(200, shares)) for _ in range(400)]
    shifts = [r.psi - r.expected_noise for r in results]
    assert abs(float(np.mean(shifts))) < 0.005  # the raw PSI averages (bins - 1)(1/n + 1/m) = 0.04


class _Sketch:
    """An exact empirical CDF with the CDFSketch interface."""

    def __init__(self, sample: np.ndarray) -> None:
        self.sorted = np.sort(sample)
        self.count = int(sample.size)
        self.values = [float(v) for v in np.unique(sample)]

    def cdf(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        right = np.searchsorted(self.sorted, x, side="right") / self.count
        left = np.searchsorted(self.sorted, x, side="left") / self.count
        return right, left


def test_ks_statistic_and_pvalue_match_scipy_two_sample():
    rng = np.random.default_rng(3)
    reference, current = rng.integers(0, 30, 700).astype(float), rng.integers(2, 30, 300).astype(float)
    expected = sps.ks_2samp(reference, current, method="asymp")
    statistic = stats.ks_statistic(_Sketch(reference), np.sort(current))
    assert statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert stats.ks_pvalue(statistic, 700, 300) == pytest.approx(expected.pvalue, rel=1e-9)
    assert stats.ks_statistic(_Sketch(reference), np.array([])) == 0.0
    assert stats.ks_pvalue(0.5, 0, 10) == 1.0


def test_chi2_homogeneity_matches_scipy_and_handles_degenerate_tables():
    reference, current = np.array([30, 50, 20]), np.array([45, 35, 20])
    expected = sps.chi2_contingency([reference, current], correction=False)
    statistic, pvalue = stats.chi2_homogeneity(reference, current)
    assert statistic == pytest.approx(expected.statistic) and pvalue == pytest.approx(expected.pvalue)
    assert stats.chi2_homogeneity(np.array([5, 0]), np.array([0, 0])) == (0.0, 1.0)


def test_jensen_shannon_matches_scipy():
    assert stats.jensen_shannon(np.array([50, 50]), np.array([80, 20])) == pytest.approx(
        jensenshannon([0.5, 0.5], [0.8, 0.2], base=2)
    )
    assert stats.jensen_shannon(np.array([1, 0]), np.array([0, 1])) == pytest.approx(1.0)
    assert stats.jensen_shannon(np.array([0, 0]), np.array([1, 2])) == 0.0


def test_binary_auc_matches_sklearn_with_ties_and_its_pvalue_matches_mann_whitney():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2, 500)
    scores = np.round(rng.normal(labels * 0.4, 1.0), 1)  # many ties
    assert stats.binary_auc(scores, labels) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert stats.binary_auc(scores, np.zeros(500)) == 0.5
    p = stats.auc_pvalue(scores[labels == 1], scores[labels == 0])
    assert p == pytest.approx(sps.mannwhitneyu(scores[labels == 1], scores[labels == 0], alternative="greater").pvalue)
    assert p < 1e-3


def test_leakage_strength_of_numbers_categories_and_too_few_rows():
    rng = np.random.default_rng(7)
    target = rng.integers(0, 2, 400)
    leaky = target + rng.normal(0, 0.01, 400)
    assert stats.leakage_strength(leaky, target, categorical=False, binary=True) == ("auc", pytest.approx(1.0))
    inverted = stats.leakage_strength(-leaky, target, categorical=False, binary=True)
    assert inverted == ("auc", pytest.approx(1.0))  # max(AUC, 1 - AUC)
    categories = np.where(target == 1, "yes", "no").astype(object)
    assert stats.leakage_strength(categories, target, categorical=True, binary=True) == ("auc", 1.0)
    regression = rng.normal(size=400)
    strength = stats.leakage_strength(2 * regression + 1, regression, categorical=False, binary=False)
    assert strength == ("abs_corr", pytest.approx(1.0))
    assert stats.leakage_strength(leaky[:19], target[:19], categorical=False, binary=True) is None
    assert stats.leakage_strength(np.ones(50), np.zeros(50), categorical=False, binary=False) is None


def test_category_scores_pool_rare_categories():
    categories = np.array(["a"] * 10 + ["b"] * 2 + ["c"] * 2, dtype=object)
    target = np.array([1] * 5 + [0] * 5 + [1, 1] + [0, 0])
    scores = stats.category_scores(categories, target)
    assert scores[:10].tolist() == [0.5] * 10
    assert scores[10:].tolist() == [0.5] * 4  # b (2 of 2) and c (0 of 2) pooled: 2 of 4


def test_holm_adjustment_by_hand_and_against_its_definition():
    assert stats.holm_adjust([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm_adjust([0.5, 0.9]) == [1.0, 1.0]
    assert stats.holm_adjust([]) == []


def test_importing_stats_loads_neither_scipy_nor_pandas():
    code = "import sys, conveyor.stats; print(sorted(m for m in ('scipy', 'pandas') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
