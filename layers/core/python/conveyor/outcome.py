"""How one version handled one request, and what the prediction service records of it: one capture
record (``docs/capture.md``) and the metric datapoints (per model and version).

Standard library only (the predict path).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from conveyor.capture import json_safe
from conveyor.contract import MASK, ServingContract

Datapoint = tuple[str, dict[str, str], float]
BREAKER_OPEN = "breaker_open"  # error_code of a request not given to a version whose breaker is open


@dataclass
class Outcome:
    """How one version handled one request (served, fallback or shadow)."""

    ref: dict[str, Any]
    role: str
    served: bool
    latency_ms: float = 0.0
    status: int = 200
    error: Exception | None = None
    error_code: str | None = None
    contract: ServingContract | None = None
    predictions: list[Any] = field(default_factory=list)
    probabilities: list[dict[str, float]] | None = None
    warnings: list[dict[str, Any]] = field(default_factory=list)
    score: float | None = None  # mean positive-class probability, or mean prediction (regression)
    task: str = ""
    fallback_for: int | None = None  # the version that could not answer, when this one answered for it

    @property
    def version(self) -> int:
        return int(self.ref["version"])

    @property
    def failed(self) -> bool:
        """The version could not answer (a 5xx); a client's own error (4xx) is not the version's failure."""
        return self.status >= 500


def capture_record(
    model: str,
    outcome: Outcome,
    rows: list[Any],
    request_id: str,
    routing_key: str,
    timestamp: float,
) -> dict[str, Any]:
    """One capture record (``docs/capture.md``) of ``rows`` (the request's instances, already cut to size)."""
    if outcome.contract is not None:
        inputs = [outcome.contract.mask(row) for row in rows]
    else:  # no contract could be read: nothing says which columns are safe to keep
        inputs = [{str(k): MASK for k in row} if isinstance(row, dict) else MASK for row in rows]
    record = {
        "model": model,
        "model_version": outcome.version,
        "role": outcome.role,
        "served": outcome.served,
        "request_id": request_id,
        "routing_key": routing_key,
        "timestamp": round(timestamp, 3),
        "latency_ms": round(outcome.latency_ms, 3),
        "status": outcome.status,
        "error_code": outcome.error_code,
        "inputs": inputs,
        "predictions": [json_safe(p) for p in outcome.predictions],
        "probabilities": outcome.probabilities,
        "warnings": outcome.warnings,
    }
    if outcome.fallback_for is not None:
        record["fallback_for"] = outcome.fallback_for
    return record


def datapoints(model: str, outcome: Outcome) -> list[Datapoint]:
    """``Latency``, ``Errors`` (1 for a 5xx, else 0), ``InvalidRequests``, ``Rows`` and ``MeanScore`` or
    ``MeanPrediction`` of one outcome. A request kept from a version by its open breaker counts as
    one of its errors, with no latency (the version did not run)."""
    dimensions = {"model": model, "version": str(outcome.version)}
    points: list[Datapoint] = []
    if outcome.error_code != BREAKER_OPEN:
        points.append(("Latency", dimensions, round(outcome.latency_ms, 3)))
    points.append(("Errors", dimensions, 1.0 if outcome.failed else 0.0))
    if 400 <= outcome.status < 500:
        points.append(("InvalidRequests", dimensions, 1.0))
    if outcome.error is None:
        points.append(("Rows", dimensions, float(len(outcome.predictions))))
        if outcome.score is not None:
            name = "MeanPrediction" if outcome.task == "regression" else "MeanScore"
            points.append((name, dimensions, outcome.score))
    return points
