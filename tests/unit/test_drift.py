"""Drift: statistics against scipy and hand computations, the decision rule from 100 rows to a
million, the domain classifier, the bundled data (1988 income drift) and the CLI command."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import typer
from scipy import stats
from scipy.spatial.distance import jensenshannon
from typer.testing import CliRunner

from conveyor.cli.drift_command import drift
from conveyor.drift import (
    DriftSettings,
    chi2_homogeneity,
    drift_report,
    holm_adjust,
    ks_pvalue,
    ks_statistic,
    psi,
)
from conveyor.errors import DataError
from conveyor.profile import NumericProfile, build_profile
from conveyor.spec import parse_spec

NO_CLASSIFIER = DriftSettings(domain_classifier=False)
PLANS = ["basic", "plus", "pro", "team", "enterprise"]
PLAN_MIX = [0.4, 0.3, 0.15, 0.1, 0.05]


def _spec(features: dict[str, str], **extra):
    return parse_spec(
        {
            "name": "d",
            "task": "classification",
            "target": {"column": "y"},
            "features": {name: {"type": kind, "nullable": True} for name, kind in features.items()},
            "estimator": {"type": "logistic_regression"},
            **extra,
        }
    )


SYNTH_SPEC = _spec({"x": "number", "plan": "category"})


def _synthetic(rows: int, seed: int, *, shift_sd: float = 0.0, plan_mix: list[float] = PLAN_MIX) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {"x": rng.normal(shift_sd, 1.0, rows), "plan": rng.choice(PLANS, rows, p=plan_mix), "y": 0},
    )


# --------------------------------------------------------------------------- statistics


def test_psi_by_hand():
    # reference shares 0.5/0.3/0.2, current 0.3/0.3/0.4:
    # (0.3-0.5)ln(0.3/0.5) + 0 + (0.4-0.2)ln(0.4/0.2) = 0.2*0.5108 + 0.2*0.6931 = 0.2408
    assert psi(np.array([50, 30, 20]), np.array([30, 30, 40])) == pytest.approx(0.24079, abs=1e-5)
    # an empty reference bin is floored at 1e-4: (0.9-1)ln(0.9) + (0.1-1e-4)ln(0.1/1e-4) = 0.01054 + 0.69009
    assert psi(np.array([100, 0]), np.array([90, 10])) == pytest.approx(0.70062, abs=1e-5)
    assert psi(np.array([10, 20]), np.array([1, 2])) == pytest.approx(0.0)


def test_ks_matches_scipy_on_discrete_and_continuous_data():
    rng = np.random.default_rng(1)
    cases = [
        (rng.integers(0, 20, 3000).astype(float), rng.integers(0, 22, 800).astype(float)),  # ties
        (np.round(rng.normal(size=900), 3), np.round(rng.normal(0.2, 1, 400), 3)),  # <= 1000 distinct: exact
    ]
    for reference, current in cases:
        feature = build_profile(pd.DataFrame({"x": reference, "y": 0}), _spec({"x": "number"})).features["x"]
        assert isinstance(feature, NumericProfile) and feature.exact
        expected = stats.ks_2samp(reference, current, method="asymp")
        statistic = ks_statistic(feature, np.sort(current))
        assert statistic == pytest.approx(expected.statistic, abs=1e-12)
        assert ks_pvalue(statistic, reference.size, current.size) == pytest.approx(expected.pvalue, rel=1e-9)


def test_ks_pvalue_uses_the_limiting_distribution_for_big_samples():
    # beyond 10,000 effective rows the Kolmogorov limit replaces kstwo (slow there); they agree closely
    exact = stats.kstwo.sf(0.004, 50_000)
    assert ks_pvalue(0.004, 100_000, 100_000) == pytest.approx(exact, rel=0.01)


def test_chi_square_matches_scipy_contingency():
    reference, current = np.array([120, 80, 40, 0, 10]), np.array([50, 60, 30, 0, 5])
    statistic, pvalue = chi2_homogeneity(reference, current)
    table = np.array([reference, current])[:, [0, 1, 2, 4]]  # scipy cannot take an all-zero column
    expected = stats.chi2_contingency(table, correction=False)
    assert statistic == pytest.approx(expected.statistic) and pvalue == pytest.approx(expected.pvalue)
    # with a huge reference the two-sample test tends to the one-sample goodness of fit (chisquare)
    big = np.array([500_000, 300_000, 200_000])
    observed = np.array([60, 20, 20])
    gof = stats.chisquare(observed, big / big.sum() * observed.sum())
    assert chi2_homogeneity(big, observed)[1] == pytest.approx(gof.pvalue, rel=0.01)
    assert chi2_homogeneity(np.array([5, 0]), np.array([7, 0])) == (0.0, 1.0)


def test_jensen_shannon_distance_of_a_category():
    reference = pd.DataFrame({"plan": ["a"] * 50 + ["b"] * 50, "y": 0})
    current = pd.DataFrame({"plan": ["a"] * 80 + ["b"] * 20, "y": 0})
    spec = _spec({"plan": "category"})
    report = drift_report(build_profile(reference, spec), current, spec, settings=NO_CLASSIFIER)
    feature = report.features[0]
    assert feature.js == pytest.approx(jensenshannon([0.5, 0.5], [0.8, 0.2], base=2))
    assert feature.chi2_pvalue == pytest.approx(stats.chi2_contingency([[50, 50], [80, 20]], correction=False).pvalue)


def test_holm_adjustment_by_hand():
    # sorted 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, max(0.04*1, 0.06)=0.06
    assert holm_adjust([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm_adjust([]) == []


# --------------------------------------------------------------------------- the decision rule


def test_quiet_on_100_rows_of_the_same_distribution_where_effect_sizes_alone_would_flag():
    effect_only_alarms = 0
    for seed in range(20):
        reference, current = _synthetic(100, seed), _synthetic(100, 1000 + seed)
        report = drift_report(build_profile(reference, SYNTH_SPEC), current, SYNTH_SPEC, settings=NO_CLASSIFIER)
        assert report.verdict == "no_drift", report.summary
        effect_only_alarms += any(f.effect_exceeded for f in report.features)
    # at 100 rows the noise in PSI/KS/JS often passes the thresholds: significance is what keeps it quiet
    assert effect_only_alarms >= 5


def test_flags_a_planted_shift_at_100_rows():
    reference = _synthetic(100, 1)
    current = _synthetic(100, 2, shift_sd=1.0, plan_mix=[0.2] * 5)
    report = drift_report(build_profile(reference, SYNTH_SPEC), current, SYNTH_SPEC, settings=NO_CLASSIFIER)
    assert report.verdict == "drift"
    assert "x" in report.drifted_features


def test_million_rows_quiet_on_noise_and_on_trivial_shifts_flags_a_real_one():
    reference = _synthetic(1_000_000, 1)
    profile = build_profile(reference, SYNTH_SPEC)
    same = drift_report(profile, _synthetic(1_000_000, 2), SYNTH_SPEC, settings=NO_CLASSIFIER)
    assert same.verdict == "no_drift", same.summary

    trivial = drift_report(profile, _synthetic(1_000_000, 3, shift_sd=0.02), SYNTH_SPEC, settings=NO_CLASSIFIER)
    x = trivial.features[0]
    assert x.significant and not x.effect_exceeded  # a p-value rule alone would flag this
    assert trivial.verdict == "no_drift"

    shifted = drift_report(
        profile, _synthetic(1_000_000, 4, shift_sd=1.0, plan_mix=[0.2] * 5), SYNTH_SPEC, settings=NO_CLASSIFIER
    )
    assert shifted.drifted_features == ["x", "plan"]
    assert shifted.features[0].message.startswith("x: PSI ")


def test_null_share_change_is_drift():
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"x": rng.normal(size=5000), "y": 0})
    values = rng.normal(size=5000)
    values[rng.random(5000) < 0.3] = np.nan
    spec = _spec({"x": "number"})
    report = drift_report(build_profile(reference, spec), pd.DataFrame({"x": values, "y": 0}), spec)
    feature = report.features[0]
    assert feature.drifted and feature.current["null_share"] == pytest.approx(0.3, abs=0.02)
    assert feature.ks is not None and feature.ks < 0.05  # KS ignores nulls; PSI's null bin catches it


def test_unseen_categories_are_counted_and_compared():
    spec = _spec({"plan": "category"})
    reference = pd.DataFrame({"plan": ["a", "b"] * 500, "y": 0})
    current = pd.DataFrame({"plan": ["a", "b", "zzz", "zzz"] * 250, "y": 0})
    report = drift_report(build_profile(reference, spec), current, spec, settings=NO_CLASSIFIER)
    feature = report.features[0]
    assert feature.current["unseen"] == 500 and feature.drifted


def test_max_drifted_share_tolerates_a_share_of_features():
    reference = _synthetic(5000, 1)
    current = _synthetic(5000, 2, shift_sd=1.0)  # only x drifts: 1 of 2 features
    profile = build_profile(reference, SYNTH_SPEC)
    strict = drift_report(profile, current, SYNTH_SPEC, settings=NO_CLASSIFIER)
    lenient = drift_report(
        profile, current, SYNTH_SPEC, settings=DriftSettings(domain_classifier=False, max_drifted_share=0.5)
    )
    assert strict.verdict == "drift" and lenient.verdict == "no_drift"
    assert lenient.drifted_features == ["x"]


def test_settings_from_spec_defaults_objects_and_mappings():
    assert DriftSettings.from_spec(SYNTH_SPEC) == DriftSettings()
    as_mapping = SimpleNamespace(
        drift={"psi_threshold": 0.3, "alpha": 0.05, "domain_classifier": {"enabled": False, "max_rows": 5}}
    )
    settings = DriftSettings.from_spec(as_mapping)
    assert (settings.psi_threshold, settings.alpha, settings.domain_classifier, settings.max_rows) == (
        0.3,
        0.05,
        False,
        5,
    )
    assert settings.ks_threshold == 0.1
    as_object = SimpleNamespace(
        drift=SimpleNamespace(
            psi_threshold=0.25,
            ks_threshold=0.05,
            js_threshold=0.2,
            alpha=0.001,
            max_drifted_share=0.1,
            domain_classifier=SimpleNamespace(enabled=True, auc_threshold=0.7, max_rows=1000),
        )
    )
    assert DriftSettings.from_spec(as_object) == DriftSettings(0.25, 0.05, 0.2, 0.001, True, 0.7, 1000, 0.1)


def test_bad_current_data_is_named():
    profile = build_profile(_synthetic(200, 1), SYNTH_SPEC)
    with pytest.raises(DataError, match="missing feature column"):
        drift_report(profile, pd.DataFrame({"x": [1.0]}), SYNTH_SPEC)
    with pytest.raises(DataError, match="no rows"):
        drift_report(profile, _synthetic(200, 1).iloc[:0], SYNTH_SPEC)


# --------------------------------------------------------------------------- domain classifier


def test_domain_classifier_finds_a_planted_income_shift_and_stays_quiet_on_a_random_split(full_df, spec):
    base = full_df[full_df["year"] <= 1985]
    half = base.sample(frac=0.5, random_state=3)
    other = base.drop(half.index)
    profile = build_profile(half, spec)

    quiet = drift_report(profile, other, spec, seed=1)
    assert quiet.domain_classifier.auc is not None and quiet.domain_classifier.auc < 0.56
    assert quiet.verdict == "no_drift", quiet.summary

    shifted = other.assign(hhninc=other["hhninc"] * 1.3)
    loud = drift_report(profile, shifted, spec, seed=1)
    assert loud.domain_classifier.drifted and loud.domain_classifier.auc > 0.6
    assert loud.domain_classifier.top_features[0]["name"] == "hhninc"
    assert loud.domain_classifier.reference_source == "profile_sample"

    with_rows = drift_report(profile, shifted, spec, reference_frame=half, seed=1)
    assert with_rows.domain_classifier.reference_source == "rows"
    assert with_rows.domain_classifier.drifted and with_rows.domain_classifier.top_features[0]["name"] == "hhninc"


def test_domain_classifier_with_real_rows_sees_a_change_of_correlation_only():
    rng = np.random.default_rng(0)
    a = rng.normal(size=4000)
    reference = pd.DataFrame({"a": a, "b": a + rng.normal(0, 0.3, 4000), "y": 0})
    current = pd.DataFrame({"a": rng.normal(size=4000), "b": rng.normal(0, 1.044, 4000), "y": 0})  # same marginals
    spec = _spec({"a": "number", "b": "number"})
    profile = build_profile(reference, spec)
    marginal_only = drift_report(profile, current, spec)
    assert not marginal_only.domain_classifier.drifted and marginal_only.verdict == "no_drift"
    with_rows = drift_report(profile, current, spec, reference_frame=reference)
    assert with_rows.domain_classifier.drifted


# --------------------------------------------------------------------------- the bundled data


def test_bundled_data_1988_income_drifts_1986_does_not(full_df, spec):
    profile = build_profile(full_df[full_df["year"] <= 1985], spec)
    year_1988 = drift_report(profile, full_df[full_df["year"] == 1988], spec)
    assert year_1988.verdict == "drift"
    assert "hhninc" in year_1988.drifted_features
    income = next(f for f in year_1988.features if f.name == "hhninc")
    assert income.message.startswith("hhninc: PSI ") and "KS 0.14 > 0.10" in income.message
    assert income.reference["mean"] == pytest.approx(3.03, abs=0.01)
    assert income.current["mean"] == pytest.approx(3.49, abs=0.01)

    year_1986 = drift_report(profile, full_df[full_df["year"] == 1986], spec)
    assert "hhninc" not in year_1986.drifted_features
    assert year_1986.verdict == "no_drift", year_1986.summary


def test_report_is_json_and_gives_metrics(full_df, spec):
    profile = build_profile(full_df[full_df["year"] <= 1985], spec)
    report = drift_report(profile, full_df[full_df["year"] == 1988], spec)
    document = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert document["verdict"] == "drift" and document["drifted_features"] == ["hhninc"]
    assert {"name", "method", "values", "thresholds", "pvalue", "drifted", "message"} <= set(document["features"][0])
    assert {"auc", "threshold", "drifted", "top_features"} <= set(document["domain_classifier"])
    assert document["rows_current"] == 4483 and document["rows_reference"] == profile.rows
    assert document["summary"].startswith("drift: 1 of 9 features drifted (hhninc)")
    points = report.metrics("doctor-visits")
    assert ("FeaturePSI", {"Model": "doctor-visits", "Feature": "hhninc"}) in [(n, d) for n, d, _ in points]
    named = {(n, tuple(sorted(d.items()))): v for n, d, v in points}
    assert named[("DriftedFeatures", (("Model", "doctor-visits"),))] == 1.0
    assert 0.5 < named[("DomainClassifierAUC", (("Model", "doctor-visits"),))] < 1.0
    assert all(isinstance(v, float) and math.isfinite(v) for _, _, v in points)


# --------------------------------------------------------------------------- CLI


def _cli() -> typer.Typer:
    app = typer.Typer()
    app.command()(drift)

    @app.command()
    def other() -> None:  # a second command keeps "drift" a subcommand, as in the real app
        """Unused."""

    return app


@pytest.fixture
def years(tmp_path, full_df):
    paths = {}
    for name, frame in (
        ("ref", full_df[full_df["year"] <= 1985]),
        ("y1986", full_df[full_df["year"] == 1986]),
        ("y1988", full_df[full_df["year"] == 1988]),
    ):
        paths[name] = tmp_path / f"{name}.csv"
        frame.to_csv(paths[name], index=False)
    return paths


def test_cli_drift_exit_codes_and_json(years, spec_path, tmp_path, spec):
    runner = CliRunner()
    app = _cli()
    result = runner.invoke(app, ["drift", str(years["ref"]), str(years["y1988"]), "--spec", str(spec_path), "--json"])
    assert result.exit_code == 1, result.output
    document = json.loads(result.stdout)
    assert document["verdict"] == "drift" and "hhninc" in document["drifted_features"]
    assert document["domain_classifier"]["reference_source"] == "rows"

    profile_path = tmp_path / "profile.json"
    profile_path.write_text(build_profile(pd.read_csv(years["ref"]), spec).to_json())
    result = runner.invoke(app, ["drift", str(profile_path), str(years["y1986"]), "--spec", str(spec_path)])
    assert result.exit_code == 0, result.output
    assert "hhninc" in result.stdout and "no_drift" in result.stdout


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing_current", "nope.csv: no such file"),
        ("bad_spec", "spec"),
        ("bad_profile", "not valid JSON"),
        ("missing_column", "hhninc"),
    ],
)
def test_cli_drift_bad_input_exits_2_naming_the_problem(case, expected, years, spec_path, tmp_path):
    reference, current, spec = str(years["ref"]), str(years["y1986"]), str(spec_path)
    if case == "missing_current":
        current = str(tmp_path / "nope.csv")
    elif case == "bad_spec":
        spec = str(tmp_path / "spec.yaml")
        (tmp_path / "spec.yaml").write_text("name: x\ntask: nope\n")
    elif case == "bad_profile":
        reference = str(tmp_path / "profile.json")
        (tmp_path / "profile.json").write_text("{nope")
    else:
        current = str(tmp_path / "cut.csv")
        pd.read_csv(years["y1986"]).drop(columns=["hhninc"]).to_csv(current, index=False)
    result = CliRunner().invoke(_cli(), ["drift", reference, current, "--spec", spec])
    assert result.exit_code == 2, result.output
    assert expected in result.output


def test_renamed_category_codes_are_mapped_before_profiling_and_drift():
    """A file that still uses an old code, mapped by the spec, is not drift."""
    import pandas as pd

    from conveyor.drift import drift_report
    from conveyor.profile import build_profile
    from conveyor.spec import load_spec

    spec = load_spec(
        "name: m\ntask: classification\ntarget: {column: y}\n"
        "estimator: {type: logistic_regression}\n"
        "features:\n  x: {type: number}\n  code: {type: category, mapping: {old: new}}\n"
    )
    reference = pd.DataFrame({"x": range(2000), "code": ["new", "a"] * 1000, "y": [0, 1] * 1000})
    renamed = reference.assign(code=["old", "a"] * 1000)
    profile = build_profile(reference, spec)
    assert "old" not in str(profile.to_dict()["features"]["code"])
    report = drift_report(profile, renamed, spec)
    assert "code" not in report.drifted_features
