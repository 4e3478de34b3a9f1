"""The drift of a categorical feature (``category``; ``boolean`` as two categories): current values
mapped onto the profile's categories, Jensen-Shannon distance, PSI and the chi-square test of
homogeneity (``docs/drift.md``)."""

from __future__ import annotations

import numpy as np

from conveyor.drift.report import FeatureDrift
from conveyor.drift.settings import DriftSettings
from conveyor.profile import OTHER, CategoricalProfile
from conveyor.stats import chi2_homogeneity, jensen_shannon, psi

NULL_BIN = "__null__"


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


def categorical_drift(
    name: str, spec_type: str, ref: CategoricalProfile, counts: dict[str, int], nulls: int, s: DriftSettings
) -> FeatureDrift:
    """The drift of one categorical feature from its profile ``ref``: the current ``counts`` per
    value and the current ``nulls``."""
    cur_counts, unseen = _current_category_counts(ref, counts)
    labels = [*ref.frequencies, f"{OTHER} (new)"]  # the last slot: values the reference never saw
    ref_counts = np.asarray([*ref.frequencies.values(), 0], dtype=np.float64)
    if ref.nulls or nulls:
        labels.append(NULL_BIN)
        ref_counts = np.append(ref_counts, ref.nulls)
        cur_counts = np.append(cur_counts, nulls)
    value_psi = psi(ref_counts, cur_counts)
    _, p_chi2 = chi2_homogeneity(ref_counts, cur_counts)
    js = jensen_shannon(ref_counts, cur_counts)
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
