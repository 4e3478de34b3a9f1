"""Score distributions: the holdout's, stored with the reference profile at training time, and the
live one, compared with it by the monitor.

A *score* is one number or label per scored row, as the bake reads it from capture
(``conveyor.deployment.version_stats``): the probability of the last class (sorted as text: the
positive class for 0/1 labels) for binary classifiers, the predicted label for more classes, the
prediction itself for regression.

Stored form (``profile.json`` key ``scores``)::

    {"kind": "numeric", "edges": [e1, ..., e4], "counts": [n0, ..., n4], "n": N}   # quintile bins
    {"kind": "labels", "counts": {"label": n, ...}, "n": N}

The shift is the *debiased* PSI of ``conveyor.stats.debiased_psi``, the variant the bake compares
with ``max_score_shift``: a monitor window may hold a few hundred scored rows, where raw PSI is
mostly sampling noise, and the alarm threshold (``monitoring.max_score_shift``) means the same
number as the bake's. Quintile bins of the holdout, as the bake uses the champion's quintiles.
Standard library and numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from conveyor.stats import debiased_psi

SCORE_BINS = 5  # quintiles, as the bake's score shift (conveyor.deployment.version_stats.SHIFT_BINS)


def row_score(prediction: Any, distribution: Any) -> float | str:
    """The score of one scored row from its captured prediction and probabilities (module docstring)."""
    if isinstance(distribution, dict) and len(distribution) == 2:
        return float(distribution[sorted(distribution)[-1]])
    if isinstance(prediction, bool) or not isinstance(prediction, int | float) or distribution:
        return str(prediction)
    return float(prediction)


def distribution(scores: Sequence[float | str], bins: int = SCORE_BINS) -> dict[str, Any] | None:
    """The stored form of a score sample (module docstring); None when it is empty."""
    if not scores:
        return None
    if all(isinstance(s, float) for s in scores):
        values = np.asarray(scores, dtype=np.float64)
        edges = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1]))
        counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
        return {
            "kind": "numeric",
            "edges": [float(e) for e in edges],
            "counts": [int(c) for c in counts],
            "n": int(values.size),
        }
    labels, counts = np.unique(np.asarray([str(s) for s in scores], dtype=object), return_counts=True)
    return {"kind": "labels", "counts": {str(k): int(v) for k, v in zip(labels, counts, strict=True)}, "n": len(scores)}


@dataclass(frozen=True)
class LiveScoreShift:
    """The live scores against the holdout's distribution."""

    shift: float  # debiased PSI, floored at 0: the number compared with monitoring.max_score_shift
    psi: float
    expected_noise: float
    bins: int
    n_reference: int
    n_current: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "psi_variant": "debiased",
            "shift": self.shift,
            "psi": self.psi,
            "expected_noise": self.expected_noise,
            "bins": self.bins,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
        }


def live_shift(reference: dict[str, Any] | None, current: Sequence[float | str]) -> LiveScoreShift | None:
    """Debiased PSI of live scores against a stored holdout distribution; None when either side is
    missing (a profile from before score distributions were stored, or no scored row) or when the
    two are of different kinds (numbers against labels)."""
    if not reference or not current or int(reference.get("n") or 0) <= 0:
        return None
    numeric = all(isinstance(s, float) for s in current)
    if reference.get("kind") == "numeric" and numeric:
        edges = np.asarray(reference["edges"], dtype=np.float64)
        ref_counts = np.asarray(reference["counts"], dtype=np.int64)
        values = np.asarray(current, dtype=np.float64)
        cur_counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
    elif reference.get("kind") == "labels" and not numeric:
        stored: dict[str, int] = {str(k): int(v) for k, v in reference["counts"].items()}
        seen = [str(s) for s in current]
        labels = sorted(set(stored) | set(seen))
        ref_counts = np.asarray([stored.get(label, 0) for label in labels], dtype=np.int64)
        found = dict(zip(*np.unique(np.asarray(seen, dtype=object), return_counts=True), strict=True))
        cur_counts = np.asarray([int(found.get(label, 0)) for label in labels], dtype=np.int64)
    else:
        return None
    value = debiased_psi(ref_counts, cur_counts)
    return LiveScoreShift(
        shift=round(value.shift, 6),
        psi=round(value.psi, 6),
        expected_noise=round(value.expected_noise, 6),
        bins=len(ref_counts),
        n_reference=int(ref_counts.sum()),
        n_current=len(current),
    )
