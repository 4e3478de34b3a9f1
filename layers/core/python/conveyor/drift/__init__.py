"""Data drift: compare new data with a model's reference profile (``conveyor.profile``).

``drift_report(reference_profile, current_frame, spec)`` reads only the profile, never the
training data. What it tests per feature, the decision rule (effect size AND Holm-adjusted
significance), the domain classifier and the verdict are specified in ``docs/drift.md``; the
statistics themselves live in ``conveyor.stats``.

Modules: ``settings`` (thresholds), ``numeric`` and ``categorical`` (per-feature checks),
``domain_classifier``, ``report`` (the report types), ``compare`` (``drift_report``).
"""

from conveyor.drift.categorical import NULL_BIN
from conveyor.drift.compare import drift_report
from conveyor.drift.report import DomainClassifierResult, DriftReport, FeatureDrift
from conveyor.drift.settings import DriftSettings
from conveyor.stats import PSI_EPSILON, chi2_homogeneity, holm_adjust, ks_pvalue, ks_statistic, psi

__all__ = [
    "NULL_BIN",
    "PSI_EPSILON",
    "DomainClassifierResult",
    "DriftReport",
    "DriftSettings",
    "FeatureDrift",
    "chi2_homogeneity",
    "drift_report",
    "holm_adjust",
    "ks_pvalue",
    "ks_statistic",
    "psi",
]
