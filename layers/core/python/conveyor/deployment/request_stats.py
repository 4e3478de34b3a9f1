"""What the capture says about one version over a window, and the shift of its scores.

- *requests*: records of the version, except 4xx ones (a client's bad request says nothing about
  a model); *errors*: records with a 5xx status; *latency*: p99 of ``latency_ms``;
- *scores*: the probability of the last class (sorted: the positive class for 0/1 labels) for
  binary classifiers, the predicted label for more classes, the prediction itself for regression;
- *score shift*: the version's scores against the champion's over the same window, as a
  **debiased PSI** (:func:`conveyor.stats.debiased_psi`): PSI over the champion's quintiles (or
  over labels), minus its expected value when both samples come from one distribution,
  ``(bins - 1) * (1/n_champion + 1/n_version)``. Raw PSI on a few hundred rows is mostly sampling
  noise (0.1 for 5 bins and 80 rows a side); debiased, it measures a shift whatever the traffic.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from conveyor.deployment.errors import DeploymentError
from conveyor.stats import debiased_psi

SHIFT_BINS = 5


def _status(record: dict[str, Any]) -> int:
    try:
        return int(record.get("status") or 200)
    except (TypeError, ValueError):
        return 500


def _scores(records: Iterable[dict[str, Any]]) -> list[Any]:
    """One score per scored row (see the module docstring)."""
    scores: list[Any] = []
    for record in records:
        if _status(record) != 200:
            continue
        predictions = record.get("predictions") or []
        probabilities = record.get("probabilities") or []
        for row, prediction in enumerate(predictions):
            distribution = probabilities[row] if row < len(probabilities) else None
            if isinstance(distribution, dict) and len(distribution) == 2:
                scores.append(float(distribution[sorted(distribution)[-1]]))
            elif isinstance(prediction, bool) or not isinstance(prediction, int | float) or distribution:
                scores.append(str(prediction))  # a label: compared by frequency
            else:
                scores.append(float(prediction))
    return scores


@dataclass
class VersionStats:
    """What the capture says about one version over a window."""

    version: int | None
    role: str
    requests: int = 0  # records, 4xx excluded
    errors: int = 0  # 5xx records
    rows: int = 0  # scored rows
    p99_latency_ms: float | None = None
    mean_score: float | None = None
    latencies: list[float] = field(default_factory=list, repr=False)
    scores: list[Any] = field(default_factory=list, repr=False)

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    def to_dict(self) -> dict[str, Any]:
        document = {k: v for k, v in asdict(self).items() if k not in {"latencies", "scores"}}
        document["error_rate"] = self.error_rate
        return document


def version_stats(records: Iterable[dict[str, Any]], *, version: int | None, role: str) -> VersionStats:
    """Stats of the records that ``version`` produced in ``role`` (champion, challenger or shadow)."""
    mine = [
        r
        for r in records
        if r.get("role") == role and version is not None and _as_int(r.get("model_version")) == version
    ]
    counted = [r for r in mine if not 400 <= _status(r) < 500]
    stats = VersionStats(version=version, role=role, requests=len(counted))
    stats.errors = sum(1 for r in counted if _status(r) >= 500)
    stats.latencies = [float(r["latency_ms"]) for r in counted if isinstance(r.get("latency_ms"), int | float)]
    if stats.latencies:
        stats.p99_latency_ms = round(float(np.percentile(stats.latencies, 99)), 3)
    stats.scores = _scores(counted)
    stats.rows = len(stats.scores)
    numeric = [s for s in stats.scores if isinstance(s, float)]
    if numeric and len(numeric) == len(stats.scores):
        stats.mean_score = round(float(np.mean(numeric)), 6)
    return stats


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# --- score shift -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoreShift:
    psi: float  # raw
    expected_noise: float  # (bins - 1) * (1/n_reference + 1/n_current)
    shift: float  # max(0, psi - expected_noise): the number compared with max_score_shift
    bins: int
    n_reference: int
    n_current: int
    mean_difference: float | None  # current - reference, numeric scores only


def score_shift(reference: Sequence[Any], current: Sequence[Any], bins: int = SHIFT_BINS) -> ScoreShift:
    """Debiased PSI of ``current`` scores against ``reference`` scores (numbers or labels)."""
    if not reference or not current:
        raise DeploymentError("a score shift needs scores on both sides")
    numeric = all(isinstance(s, float) for s in (*reference, *current))
    if numeric:
        ref = np.asarray(reference, dtype=float)
        cur = np.asarray(current, dtype=float)
        edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))
        ref_counts = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=len(edges) + 1)
        cur_counts = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=len(edges) + 1)
        mean_difference: float | None = round(float(cur.mean() - ref.mean()), 6)
    else:
        labels = sorted({str(s) for s in (*reference, *current)})
        ref_counts = np.array([sum(1 for s in reference if str(s) == label) for label in labels])
        cur_counts = np.array([sum(1 for s in current if str(s) == label) for label in labels])
        mean_difference = None
    shift = debiased_psi(ref_counts, cur_counts)
    return ScoreShift(
        psi=round(shift.psi, 6),
        expected_noise=round(shift.expected_noise, 6),
        shift=round(shift.shift, 6),
        bins=len(ref_counts),
        n_reference=len(reference),
        n_current=len(current),
        mean_difference=mean_difference,
    )
