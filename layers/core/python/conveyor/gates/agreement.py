"""The agreement gate: how often the candidate predicts what the champion predicts, on the holdout
and on live requests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from conveyor.errors import ConveyorError
from conveyor.gates.common import Gate, GateThresholds, predict_rows, same_labels
from conveyor.scoring import OnnxModel


def agreement(candidate: OnnxModel, champion: OnnxModel, rows: pd.DataFrame | Sequence[Mapping[str, Any]]) -> float:
    """How often candidate and champion agree on the same rows (a holdout frame or live instance dicts).

    Classification: the share of identical labels. Regression: ``1 - mean|a - b| / std`` clipped
    to [0, 1], where ``std`` is that of both models' predictions pooled (identical constant
    predictions give 1.0). Empty input gives 1.0.

    Raises
    ------
    DataError, ArtifactError
        If either model cannot score the rows (e.g. a feature column is missing).
    """
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    if frame.empty:
        return 1.0
    ours, theirs = predict_rows(candidate, frame), predict_rows(champion, frame)
    if candidate.task == "classification":
        return float(np.mean(same_labels(ours.labels, theirs.labels)))
    difference = float(np.mean(np.abs(ours.values - theirs.values)))
    scale = float(np.std(np.concatenate([ours.values, theirs.values])))
    if scale == 0.0:
        return 1.0 if difference == 0.0 else 0.0
    return float(min(1.0, max(0.0, 1.0 - difference / scale)))


def agreement_evidence(
    candidate: OnnxModel,
    champion: OnnxModel | None,
    holdout: pd.DataFrame,
    live_instances: Sequence[Mapping[str, Any]] | None,
) -> dict[str, Any]:
    evidence: dict[str, Any] = {"holdout": None, "live": None, "live_rows": len(live_instances or [])}
    if champion is None:
        return evidence
    try:
        evidence["holdout"] = agreement(candidate, champion, holdout)
    except (ConveyorError, ValueError) as exc:
        evidence["holdout_error"] = str(exc)[:300]
    if live_instances:
        try:
            evidence["live"] = agreement(candidate, champion, live_instances)
        except (ConveyorError, ValueError) as exc:
            evidence["live_error"] = str(exc)[:300]
    return evidence


def agreement_gate(evidence: dict[str, Any], has_champion: bool, thresholds: GateThresholds) -> Gate:
    name, limit = "inference_agreement", thresholds.min_agreement
    if not has_champion:
        return Gate(name, None, limit, True, "no champion: agreement not measured")
    measured = {key: evidence[key] for key in ("holdout", "live") if evidence.get(key) is not None}
    errors = "; ".join(
        f"{key}: {evidence[key + '_error']}" for key in ("holdout", "live") if key + "_error" in evidence
    )
    if not measured:
        return Gate(name, None, limit, True, f"champion cannot score these rows, agreement not measured ({errors})")
    value = min(measured.values())
    passed = value >= limit
    sign = ">=" if passed else "<"
    parts = [f"{key} {score:.1%}" for key, score in measured.items()]
    if "live" in measured:
        parts[-1] += f" of {evidence['live_rows']} live requests"
    message = f"agreement with the champion {', '.join(parts)}: lowest {value:.1%} {sign} {limit:.1%}"
    if errors:
        message += f"; not measured: {errors}"
    return Gate(name, value, limit, passed, message)
