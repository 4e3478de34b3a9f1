"""The drift of a numeric feature (``number``, ``integer``): PSI over the profile's bins plus a
null bin, KS against the profile's CDF sketch, the binned chi-square test (``docs/drift.md``)."""

from __future__ import annotations

import math

import numpy as np

from conveyor.drift.report import FeatureDrift
from conveyor.drift.settings import DriftSettings
from conveyor.profile import NumericProfile
from conveyor.stats import chi2_homogeneity, ks_pvalue, ks_statistic, psi


def numeric_drift(name: str, spec_type: str, ref: NumericProfile, values: np.ndarray, s: DriftSettings) -> FeatureDrift:
    """The drift of one numeric feature's current ``values`` (NaN for nulls) from its profile ``ref``."""
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
