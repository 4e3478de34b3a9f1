"""``drift_report``: compare new data with a model's reference profile, feature by feature and with
the domain classifier, and decide (the rule: ``docs/drift.md``)."""

from __future__ import annotations

import pandas as pd

from conveyor.drift.categorical import categorical_drift
from conveyor.drift.domain_classifier import domain_classifier
from conveyor.drift.numeric import numeric_drift
from conveyor.drift.report import DomainClassifierResult, DriftReport, FeatureDrift, feature_message
from conveyor.drift.settings import DriftSettings
from conveyor.errors import DataError
from conveyor.profile import CategoricalProfile, NumericProfile, Profile, feature_data, feature_kind
from conveyor.spec import ModelSpec, spec_hash
from conveyor.stats import holm_adjust
from conveyor.tabular import missing_sentinels, with_category_mappings


def _features(
    reference: Profile, current: pd.DataFrame, spec: ModelSpec, s: DriftSettings, warnings: list[str]
) -> tuple[list[FeatureDrift], dict[str, str]]:
    """Every spec feature's drift (a skipped one says why; some also add to ``warnings``), and the
    kind (numeric | categorical) of each tested feature, in spec order."""
    types: dict[str, str] = {name: str(feature.type) for name, feature in spec.features.items()}
    data = feature_data(with_category_mappings(current, spec), types)
    results: list[FeatureDrift] = []
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
            results.append(numeric_drift(name, spec_type, ref, data.numeric[name], s))
        else:
            results.append(categorical_drift(name, spec_type, ref, *data.counts[name], s))
    return results, kinds


def _decide(features: list[FeatureDrift], s: DriftSettings) -> None:
    """Holm-adjust the tested features' p-values over the report; a feature drifts when its effect
    exceeds a threshold and its adjusted p-value is below ``alpha``."""
    checked = [f for f in features if f.kind != "skipped"]
    adjusted = holm_adjust([f.pvalue if f.pvalue is not None else 1.0 for f in checked])
    for f, p in zip(checked, adjusted, strict=True):
        f.pvalue_adjusted = p
        f.significant = p < s.alpha
        f.drifted = f.effect_exceeded and f.significant
        f.message = feature_message(f, s.alpha)


def drift_report(
    reference: Profile,
    current: pd.DataFrame,
    spec: ModelSpec,
    *,
    settings: DriftSettings | None = None,
    reference_frame: pd.DataFrame | None = None,
    seed: int = 0,
) -> DriftReport:
    """Compare ``current`` with the ``reference`` profile (the rule: ``docs/drift.md``).

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
    current = missing_sentinels(current, spec)  # declared sentinels are missing values, as in the profile
    warnings: list[str] = []
    if reference.spec_hash and reference.spec_hash != spec_hash(spec):
        warnings.append("the profile was built with a different spec (spec hash differs)")
    results, kinds = _features(reference, current, spec, s, warnings)
    _decide(results, s)
    if s.domain_classifier:
        types = {name: str(spec.features[name].type) for name in kinds}
        domain = domain_classifier(reference, current, reference_frame, (list(kinds), kinds, types), s, seed)
    else:
        domain = DomainClassifierResult(enabled=False, threshold=s.auc_threshold, message="disabled")
    rows_reference = len(reference_frame) if reference_frame is not None else reference.rows
    return DriftReport(results, domain, rows_reference, len(current), s, warnings)
