"""The primary-metric gate: the candidate's primary metric against the champion's on the same holdout."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from conveyor.errors import ArtifactError, ConveyorError, DataError
from conveyor.evaluation import model_metrics
from conveyor.gates.common import Gate
from conveyor.jsonsafe import json_safe
from conveyor.scoring import OnnxModel
from conveyor.spec import HIGHER_IS_BETTER, ModelSpec
from conveyor.tabular import target_vector

_EPSILON = 1e-12  # float noise allowed when comparing scores


@dataclass
class Evaluation:
    """Candidate versus champion on one holdout; ``to_dict()`` is JSON-able (NaN -> None)."""

    metric: str
    higher_is_better: bool
    rows: int
    candidate: dict[str, float]
    champion: dict[str, float] | None
    gates: list[Gate]
    passed: bool
    reason: str
    champion_error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return json_safe(asdict(self))


def _compare(
    metric: str, higher: bool, candidate: float, champion: float, allowed: float, required: float | None = None
) -> Gate:
    """The primary metric against the champion's on the same holdout.

    Without ``required`` the candidate may be worse by at most ``allowed`` (max_degradation); with
    ``required`` (min_improvement) it must be better by at least that much. The recorded threshold
    is the score the candidate had to reach: champion -/+ allowed, or champion +/- required.
    """
    worse_by = (champion - candidate) if higher else (candidate - champion)
    name = "primary_metric_vs_champion"
    if required is not None:
        threshold = champion + required if higher else champion - required
    else:
        threshold = champion - allowed if higher else champion + allowed
    if math.isnan(candidate):
        return Gate(name, candidate, threshold, False, f"{metric} of the candidate is undefined on this holdout")
    if math.isnan(champion):
        return Gate(name, candidate, None, True, f"{metric} of the champion is undefined; candidate {candidate:.3f}")
    versus = f"{metric} {candidate:.3f} vs champion {champion:.3f}"
    if required is not None:
        better_by = (candidate - champion) if higher else (champion - candidate)
        passed = better_by >= required - _EPSILON
        sign = ">=" if passed else "<"
        what = f"better by {better_by:.3f}" if better_by >= 0 else f"worse by {worse_by:.3f}"
        return Gate(name, candidate, threshold, passed, f"{versus}: {what} {sign} required improvement {required:.3f}")
    passed = worse_by <= allowed + _EPSILON
    if worse_by <= 0:
        message = f"{versus}: better by {-worse_by:.3f}"
    else:
        sign = "<=" if passed else ">"
        message = f"{versus}: worse by {worse_by:.3f} {sign} allowed {allowed:.3f}"
    return Gate(name, candidate, threshold, passed, message)


def evaluate_candidate(
    candidate: OnnxModel, champion: OnnxModel | None, holdout_df: pd.DataFrame, spec: ModelSpec
) -> Evaluation:
    """Score both models on the same holdout and apply the gates of ``spec``.

    Raises
    ------
    DataError
        If the candidate cannot score the holdout (missing target or feature columns).
    """
    metric = spec.primary_metric
    higher = metric in HIGHER_IS_BETTER
    y_true = target_vector(holdout_df, spec)
    try:
        candidate_metrics = model_metrics(candidate, holdout_df, y_true, spec.value)
    except (ArtifactError, ValueError) as exc:
        raise DataError(f"candidate cannot score the holdout: {exc}") from None
    score = candidate_metrics[metric]
    champion_metrics: dict[str, float] | None = None
    champion_error: str | None = None
    if champion is not None:
        try:
            champion_metrics = model_metrics(champion, holdout_df, y_true, spec.value)
        except (ConveyorError, ValueError, KeyError) as exc:
            champion_error = str(exc)[:300]
    gates: list[Gate] = []
    if champion_metrics is not None and metric in champion_metrics:
        gate = _compare(
            metric,
            higher,
            score,
            champion_metrics[metric],
            spec.gates.max_degradation,
            spec.gates.min_improvement,
        )
        reason = gate.message
    else:
        if champion is None:
            message = f"no champion: candidate {metric} {score:.3f} is the first model"
        else:
            message = (
                f"champion cannot score this holdout ({champion_error}); candidate {metric} {score:.3f} not compared"
            )
        passed = not math.isnan(score)
        if not passed:
            message = f"{metric} of the candidate is undefined on this holdout"
        gate = Gate("primary_metric_vs_champion", score, None, passed, message)
        reason = message
    gates.append(gate)
    passed = all(g.passed for g in gates)
    return Evaluation(
        metric=metric,
        higher_is_better=higher,
        rows=len(holdout_df),
        candidate=candidate_metrics,
        champion=champion_metrics,
        gates=gates,
        passed=passed,
        reason=reason,
        champion_error=champion_error,
    )
