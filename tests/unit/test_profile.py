"""The reference profile: bins, statistics, the CDF sketch and its JSON round trip."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import conveyor.profile as profile_module
from conveyor.drift import ks_statistic
from conveyor.errors import DataError
from conveyor.profile import OTHER, CategoricalProfile, NumericProfile, Profile, build_profile
from conveyor.spec import parse_spec, spec_hash

# The sketch's KS statistic is within this distance of scipy's exact two-sample statistic
# (the bound is the reference mass between two knots, 1/1000, plus float32 rounding).
SKETCH_KS_TOLERANCE = 0.002


def _spec(features: dict[str, str]):
    return parse_spec(
        {
            "name": "p",
            "task": "classification",
            "target": {"column": "y"},
            "features": {name: {"type": kind, "nullable": True} for name, kind in features.items()},
            "estimator": {"type": "logistic_regression"},
        }
    )


def _float32(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float32).astype(np.float64)


def test_numeric_bins_statistics_and_nulls():
    values = [*range(1, 101), None, None]  # 1..100 and two nulls
    df = pd.DataFrame({"x": values, "y": 0})
    feature = build_profile(df, _spec({"x": "number"})).features["x"]
    assert isinstance(feature, NumericProfile)
    assert (feature.count, feature.nulls) == (100, 2)
    assert feature.null_share == pytest.approx(2 / 102)
    assert feature.mean == pytest.approx(50.5)
    assert feature.std == pytest.approx(np.std(np.arange(1, 101), ddof=1))
    assert (feature.min, feature.max) == (1.0, 100.0)
    # deciles as order statistics, bins right-closed: (-inf, 11], (11, 21], ..., (91, inf)
    assert len(feature.edges) == 9 and feature.edges[0] < feature.edges[-1]
    assert sum(feature.bin_counts) == 100 and len(feature.bin_counts) == 10
    assert max(feature.bin_counts) - min(feature.bin_counts) <= 2
    assert feature.exact and feature.values == [float(v) for v in range(1, 101)]


def test_discrete_feature_gets_deduplicated_edges_and_an_exact_cdf():
    df = pd.DataFrame({"x": [0] * 70 + [1] * 20 + [5] * 10, "y": 0})
    feature = build_profile(df, _spec({"x": "integer"})).features["x"]
    assert isinstance(feature, NumericProfile)
    assert feature.edges == [0.0, 1.0]  # the deciles 0,...,0,1,1 deduplicated
    assert feature.bin_counts == [70, 20, 10]
    assert feature.values == [0.0, 1.0, 5.0] and feature.le == [70, 90, 100] and feature.lt == [0, 70, 90]
    right, left = feature.cdf(np.array([-1.0, 0.0, 0.5, 1.0, 5.0, 9.0]))
    assert right.tolist() == pytest.approx([0.0, 0.7, 0.7, 0.9, 1.0, 1.0])
    assert left.tolist() == pytest.approx([0.0, 0.0, 0.7, 0.7, 0.9, 1.0])


def test_many_distinct_values_get_a_quantile_sketch():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=50_000), "y": 0})
    feature = build_profile(df, _spec({"x": "number"})).features["x"]
    assert isinstance(feature, NumericProfile)
    assert not feature.exact
    assert len(feature.values) == profile_module.SKETCH_QUANTILES + 1
    assert feature.values[0] == feature.min and feature.values[-1] == feature.max
    # counts at the knots are exact: consecutive knots hold about 1/1000 of the mass
    assert np.max(np.diff(feature.le)) <= 50_000 / 1000 + 1


def test_categories_top_values_other_and_nulls(monkeypatch):
    monkeypatch.setattr(profile_module, "TOP_CATEGORIES", 2)
    df = pd.DataFrame({"c": ["a"] * 5 + ["b"] * 3 + ["c", "d"] + [None] * 2, "y": 0})
    feature = build_profile(df, _spec({"c": "category"})).features["c"]
    assert isinstance(feature, CategoricalProfile)
    assert feature.frequencies == {"a": 5, "b": 3, OTHER: 2}
    assert (feature.count, feature.nulls, feature.distinct) == (10, 2, 4)
    assert feature.null_share == pytest.approx(2 / 12)


def test_category_labels_follow_the_tabular_convention():
    # integral floats are labelled "3", not "3.0", as conveyor.tabular.category_strings does for serving
    df = pd.DataFrame({"c": [3.0, 3.0, 4.0, np.nan], "y": 0})
    feature = build_profile(df, _spec({"c": "category"})).features["c"]
    assert isinstance(feature, CategoricalProfile)
    assert feature.frequencies == {"3": 2, "4": 1} and feature.nulls == 1


def test_booleans_are_two_categories():
    df = pd.DataFrame({"b": ["yes", "no", "yes", None], "y": 0})
    feature = build_profile(df, _spec({"b": "boolean"})).features["b"]
    assert isinstance(feature, CategoricalProfile)
    assert feature.frequencies == {"true": 2, "false": 1} and feature.nulls == 1


def test_missing_or_unparseable_columns_are_named():
    with pytest.raises(DataError, match="missing feature column"):
        build_profile(pd.DataFrame({"y": [1]}), _spec({"x": "number"}))
    with pytest.raises(DataError, match="'x'"):
        build_profile(pd.DataFrame({"x": ["a", "b"], "y": [1, 0]}), _spec({"x": "number"}))


def test_real_data_profile_round_trips_through_json(full_df, spec):
    reference = full_df[full_df["year"] <= 1985]
    original = build_profile(reference, spec)
    assert original.rows == len(reference) and original.spec_hash == spec_hash(spec)
    text = original.to_json()
    json.loads(text)  # strict JSON (no NaN)
    restored = Profile.from_json(text)
    assert restored.to_dict() == original.to_dict()
    assert set(restored.features) == set(spec.features)


def test_from_dict_rejects_what_is_not_a_profile():
    with pytest.raises(DataError, match="not a Conveyor profile"):
        Profile.from_dict({"hello": 1})
    with pytest.raises(DataError, match="format"):
        Profile.from_dict({"rows": 1, "features": {}, "format": 99})
    with pytest.raises(DataError, match="not valid JSON"):
        Profile.from_json("{nope")


def test_exact_sketch_ks_equals_scipy(full_df, spec):
    reference = full_df[full_df["year"] <= 1985]
    profile = build_profile(reference, spec)
    current = full_df[full_df["year"] == 1988]
    for name in ("hhninc", "age", "educ"):
        feature = profile.features[name]
        assert isinstance(feature, NumericProfile) and feature.exact
        exact = stats.ks_2samp(_float32(reference[name]), _float32(current[name])).statistic
        assert ks_statistic(feature, np.sort(_float32(current[name]))) == pytest.approx(exact, abs=1e-12)


def test_quantile_sketch_ks_is_close_to_the_exact_two_sample_ks(full_df, spec, monkeypatch):
    monkeypatch.setattr(profile_module, "EXACT_DISTINCT", 0)  # force the 1,001-quantile sketch
    reference = full_df[full_df["year"] <= 1985]
    profile = build_profile(reference, spec)
    worst = 0.0
    for year in (1984, 1986, 1987, 1988):
        current = full_df[full_df["year"] == year]
        for name in ("hhninc", "age", "educ"):
            feature = profile.features[name]
            assert isinstance(feature, NumericProfile) and not feature.exact
            exact = stats.ks_2samp(_float32(reference[name]), _float32(current[name])).statistic
            worst = max(worst, abs(ks_statistic(feature, np.sort(_float32(current[name]))) - exact))
    assert worst <= SKETCH_KS_TOLERANCE


def test_quantile_sketch_on_continuous_data():
    rng = np.random.default_rng(3)
    reference, current = rng.normal(size=100_000), rng.normal(0.05, 1.1, size=20_000)
    feature = build_profile(pd.DataFrame({"x": reference, "y": 0}), _spec({"x": "number"})).features["x"]
    assert isinstance(feature, NumericProfile) and not feature.exact
    exact = stats.ks_2samp(_float32(reference), _float32(current)).statistic
    assert ks_statistic(feature, np.sort(_float32(current))) == pytest.approx(exact, abs=SKETCH_KS_TOLERANCE)


def test_inverse_cdf_samples_the_reference_distribution(full_df, spec):
    reference = full_df[full_df["year"] <= 1985]
    feature = build_profile(reference, spec).features["hhninc"]
    assert isinstance(feature, NumericProfile)
    sample = feature.inverse_cdf(np.random.default_rng(0).random(20_000))
    assert stats.ks_2samp(sample, _float32(reference["hhninc"])).statistic < 0.02
