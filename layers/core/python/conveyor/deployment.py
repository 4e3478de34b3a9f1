"""Deployments: the plan a version follows to production, the bake analysis, approvals.

A deployment moves a registered version to production by the spec's ``deployment:`` section:
every strategy is a list of *phases* (shadow scoring, or a challenger with a traffic weight),
each baked for a while and checked on the captured requests of its window, then a promotion.
The pipeline's state machine runs the plan (``infra/pipeline_definition.py``); the functions
here decide, and touch storage only through the ports (``ObjectStore`` for the capture bucket,
``Table`` for the deployment records, ``TaskCallbacks`` for approvals).

The bake analysis reads capture records (``docs/capture.md``) of the phase's window:

- *requests*: records of the version, except 4xx ones (a client's bad request says nothing about
  a model); *errors*: records with a 5xx status; *latency*: p99 of ``latency_ms``;
- *score shift*: the version's scores against the champion's over the same window, as a
  **debiased PSI**: PSI over the champion's quintiles (or over labels), minus its expected value
  when both samples come from one distribution, ``(bins - 1) * (1/n_champion + 1/n_version)``.
  Raw PSI on a few hundred rows is mostly sampling noise (0.1 for 5 bins and 80 rows a side);
  debiased, it measures a shift whatever the traffic. Scores are the probability of the last class
  (sorted: the positive class for 0/1 labels) for binary classifiers, the predicted label for more
  classes, the prediction itself for regression.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from conveyor.errors import ConveyorError
from conveyor.events import RegistryEvent
from conveyor.ports import CallbackExpired, EventPublisher, ObjectStore, Table, TaskCallbacks
from conveyor.registry import Registry, model_pk

if TYPE_CHECKING:  # the spec's pydantic models: only the plan stage (training image) builds a plan
    from conveyor.spec import Deployment

log = logging.getLogger(__name__)

# Verdicts of a bake check; the state machine branches on them.
PASS, EXTEND, BREACH, INSUFFICIENT, INTERRUPTED = "pass", "extend", "breach", "insufficient", "interrupted"
# Deployment record states.
IN_PROGRESS = ("planned", "awaiting_approval", "approved", "trial")
FINISHED = ("promoted", "rolled_back", "rejected", "expired", "interrupted")
# The Step Functions error a reviewer's rejection fails the approval task with.
REJECTED_ERROR = "Rejected"
SHIFT_BINS = 5


class DeploymentError(ConveyorError):
    pass


class DeploymentInProgress(DeploymentError):
    """Another version is on trial for this model; the state machine retries later."""


class NoApprovalPending(DeploymentError):
    """No deployment of this version waits for a reviewer."""


class ApprovalExpired(DeploymentError):
    """The deployment waited for a reviewer, but its execution no longer does (timed out or ended)."""


@dataclass(frozen=True)
class Checks:
    """The spec's ``deployment.bake`` thresholds, as the plan carries them (``None``: not checked)."""

    max_p99_latency_ms: float | None = 250.0
    max_error_rate: float | None = 0.01
    max_score_shift: float | None = 0.2
    min_requests: int = 100
    max_extensions: int = 2

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Checks:
        known = {name: values[name] for name in cls.__dataclass_fields__ if name in values}
        return cls(**known)


# --- the plan -------------------------------------------------------------------------------


def plan_deployment(deployment: Deployment, *, model: str, version: int, champion: int | None) -> dict[str, Any]:
    """What the state machine runs for ``version``: approval, phases (each with its bake), checks.

    The first version of a model has no champion to split traffic with or compare against: it is
    promoted at once, whatever the strategy (after approval, when manual).
    """
    phases = deployment.phases() if champion is not None and champion != version else []
    note = ""
    if deployment.phases() and not phases:
        note = "no champion to compare with: promoted at once"
    return {
        "model": model,
        "version": version,
        "champion": champion,
        "strategy": deployment.strategy,
        "approval": deployment.approval,
        "approval_timeout_seconds": deployment.approval_timeout_seconds,
        "phases": phases,
        "phase": -1,  # index of the running phase; -1: none started
        "has_next_phase": bool(phases),
        "bake_seconds": 0,
        "started_at": None,
        "checks": deployment.bake.model_dump(),
        "note": note,
    }


def next_phase(plan: dict[str, Any], now: float) -> dict[str, Any]:
    """``plan`` advanced to its next phase, started at ``now``."""
    index = int(plan["phase"]) + 1
    phases = plan["phases"]
    if index >= len(phases):
        raise DeploymentError(f"{plan['model']} v{plan['version']}: no phase left to start")
    phase = phases[index]
    return {
        **plan,
        "phase": index,
        "has_next_phase": index + 1 < len(phases),
        "bake_seconds": int(phase["bake_seconds"]),
        "started_at": now,
    }


def describe_phase(phase: dict[str, Any]) -> str:
    return "shadow" if phase["kind"] == "shadow" else f"canary at {float(phase['weight']):.0%}"


# --- capture records -------------------------------------------------------------------------


def capture_prefixes(model: str, start: float, end: float) -> list[str]:
    """The hourly prefixes (``{model}/capture/YYYY/MM/DD/HH/``) that can hold records from [start, end].

    A file sits under the hour of its first record, so the hour before ``start`` is read too.
    """
    hour = int(start // 3600) - 1
    last = int(end // 3600)
    prefixes = []
    while hour <= last:
        stamp = datetime.fromtimestamp(hour * 3600, tz=UTC)
        prefixes.append(f"{model}/capture/{stamp:%Y/%m/%d/%H}/")
        hour += 1
    return prefixes


def read_capture_prefix(store: ObjectStore, bucket: str, prefix: str, model: str) -> list[dict[str, Any]]:
    """Every capture record of ``model`` in the files under ``prefix`` (one hour); unreadable lines are skipped."""
    records: list[dict[str, Any]] = []
    skipped = 0
    for key in store.keys(bucket, prefix):
        for line in store.get(bucket, key).splitlines():
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                float(record["timestamp"])
            except (ValueError, KeyError, TypeError):
                skipped += 1
                continue
            if isinstance(record, dict) and record.get("model", model) == model:
                records.append(record)
    if skipped:
        log.warning("unreadable capture lines skipped", extra={"model": model, "skipped": skipped, "prefix": prefix})
    return records


def read_capture(store: ObjectStore, bucket: str, model: str, start: float, end: float) -> list[dict[str, Any]]:
    """Every capture record of ``model`` with ``start <= timestamp <= end``; unreadable lines are skipped."""
    return [
        record
        for prefix in capture_prefixes(model, start, end)
        for record in read_capture_prefix(store, bucket, prefix, model)
        if start <= float(record["timestamp"]) <= end
    ]


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
    eps = 1e-4
    p = (ref_counts + eps) / (ref_counts.sum() + eps * len(ref_counts))
    q = (cur_counts + eps) / (cur_counts.sum() + eps * len(cur_counts))
    psi = float(np.sum((q - p) * np.log(q / p)))
    k = len(ref_counts)
    noise = (k - 1) * (1 / len(reference) + 1 / len(current))
    return ScoreShift(
        psi=round(psi, 6),
        expected_noise=round(noise, 6),
        shift=round(max(0.0, psi - noise), 6),
        bins=k,
        n_reference=len(reference),
        n_current=len(current),
        mean_difference=mean_difference,
    )


# --- the bake decision -----------------------------------------------------------------------


@dataclass
class BakeAssessment:
    verdict: str  # pass | extend | breach | insufficient
    summary: str
    checks: list[dict[str, Any]]
    trial: VersionStats
    champion: VersionStats
    shift: ScoreShift | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "summary": self.summary,
            "checks": self.checks,
            "trial": self.trial.to_dict(),
            "champion": self.champion.to_dict(),
            "score_shift": asdict(self.shift) if self.shift else None,
        }


def assess_bake(
    records: Sequence[dict[str, Any]],
    *,
    version: int,
    role: str,
    champion_version: int | None,
    checks: Checks,
    extensions: int = 0,
) -> BakeAssessment:
    """Decide a bake from the window's capture records.

    ``role`` is what ``version`` plays in this phase (``challenger`` or ``shadow``); ``extensions``
    how many times this phase's bake was already extended for want of requests.
    """
    trial = version_stats(records, version=version, role=role)
    champion = version_stats(records, version=champion_version, role="champion")
    minimum = checks.min_requests
    enough = trial.requests >= minimum
    rows: list[dict[str, Any]] = []
    breaches: list[str] = []
    missing: list[str] = []
    label = f"v{version} ({role})"

    if checks.max_error_rate is not None:
        # Below min_requests, a rate counted against min_requests is the lowest it could still fall to.
        rate = trial.errors / max(trial.requests, minimum, 1)
        decided = enough or rate > checks.max_error_rate
        failed = decided and rate > checks.max_error_rate
        rows.append(_check("error_rate", trial.error_rate, checks.max_error_rate, failed, decided, champion.error_rate))
        if failed:
            breaches.append(
                f"error rate {trial.error_rate:.1%} ({trial.errors} of {trial.requests}) > {checks.max_error_rate:.1%}"
            )
    if checks.max_p99_latency_ms is not None:
        limit = checks.max_p99_latency_ms
        slow = sum(1 for latency in trial.latencies if latency > limit)
        certain = slow / max(len(trial.latencies), minimum, 1) > 0.01
        decided = (enough and trial.p99_latency_ms is not None) or certain
        failed = certain if not enough else (trial.p99_latency_ms or 0.0) > limit
        rows.append(_check("p99_latency_ms", trial.p99_latency_ms, limit, failed, decided, champion.p99_latency_ms))
        if failed:
            breaches.append(f"p99 latency {trial.p99_latency_ms:.1f} ms > {limit:g} ms")
    shift: ScoreShift | None = None
    if checks.max_score_shift is not None:
        if enough and champion.requests >= minimum and trial.scores and champion.scores:
            shift = score_shift(champion.scores, trial.scores)
            failed = shift.shift > checks.max_score_shift
            rows.append(_check("score_shift", shift.shift, checks.max_score_shift, failed, True, None))
            if failed:
                breaches.append(
                    f"score shift (debiased PSI) {shift.shift:.3f} > {checks.max_score_shift:g} against "
                    f"v{champion_version}'s scores"
                )
        else:
            rows.append(_check("score_shift", None, checks.max_score_shift, False, False, None))
            if enough and champion.requests < minimum:
                missing.append(f"the champion answered {champion.requests} < {minimum} requests to compare with")
            elif enough and not trial.scores:
                missing.append("no scored rows to compare")
    if not enough:
        missing.insert(0, f"{trial.requests} requests < min_requests {minimum}")

    if breaches:
        return BakeAssessment(BREACH, f"{label}: " + "; ".join(breaches), rows, trial, champion, shift)
    if missing:
        if extensions < checks.max_extensions:
            summary = f"{label}: not enough evidence yet ({'; '.join(missing)}); bake extended"
            return BakeAssessment(EXTEND, summary, rows, trial, champion, shift)
        summary = (
            f"{label}: not enough evidence after {extensions} extension(s) ({'; '.join(missing)}); "
            "a version is never promoted on missing evidence"
        )
        return BakeAssessment(INSUFFICIENT, summary, rows, trial, champion, shift)
    parts = [f"{trial.requests} requests"]
    if trial.error_rate is not None:
        parts.append(f"error rate {trial.error_rate:.1%}")
    if trial.p99_latency_ms is not None:
        parts.append(f"p99 {trial.p99_latency_ms:.1f} ms")
    if shift is not None:
        parts.append(f"score shift {shift.shift:.3f}")
    return BakeAssessment(PASS, f"{label}: healthy ({', '.join(parts)})", rows, trial, champion, shift)


def _check(
    name: str, value: float | None, threshold: float, failed: bool, decided: bool, champion: float | None
) -> dict[str, Any]:
    return {
        "name": name,
        "value": None if value is None or (isinstance(value, float) and math.isnan(value)) else value,
        "threshold": threshold,
        "champion": champion,
        "passed": not failed,
        "decided": decided,
    }


# --- deployment records ----------------------------------------------------------------------


def deployment_sk(version: int) -> str:
    return f"DEPLOYMENT#{version:06d}"


class Deployments:
    """One record per (model, version) deployment in the registry table: its state, its phase, the
    approval token while a reviewer is awaited, and a short history. ``conveyor status`` and
    ``conveyor approve`` read it; only the deployment's own stages write it."""

    def __init__(self, table: Table) -> None:
        self._table = table

    def get(self, model: str, version: int) -> dict[str, Any] | None:
        return self._table.get(model_pk(model), deployment_sk(version))

    def start(self, plan: dict[str, Any], *, execution: str, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        item = {
            "pk": model_pk(plan["model"]),
            "sk": deployment_sk(int(plan["version"])),
            "model": plan["model"],
            "version": int(plan["version"]),
            "execution": execution,
            "strategy": plan["strategy"],
            "approval": plan["approval"],
            "phases": plan["phases"],
            "phase": -1,
            "state": "planned",
            "started_at": now,
            "updated_at": now,
            "history": [{"state": "planned", "at": now}],
        }
        self._table.put(item)
        return item

    def update(
        self, model: str, version: int, state: str, *, now: float | None = None, **fields: Any
    ) -> dict[str, Any]:
        now = time.time() if now is None else now
        item = self.get(model, version)
        if item is None:
            raise DeploymentError(f"{model} v{version} has no deployment record")
        item.update(fields)
        item["state"] = state
        item["updated_at"] = now
        entry = {"state": state, "at": now, **{k: v for k, v in fields.items() if k in {"phase", "reason", "by"}}}
        item["history"] = [*item.get("history", []), entry][-30:]
        if state not in ("awaiting_approval",):
            item.pop("token", None)  # a token is only kept while it can still be answered
        self._table.put(item)
        return item

    def for_model(self, model: str) -> list[dict[str, Any]]:
        return self._table.query(model_pk(model), "DEPLOYMENT#")

    def in_progress(self, model: str) -> list[dict[str, Any]]:
        return [d for d in self.for_model(model) if d.get("state") in IN_PROGRESS]


# --- approvals -------------------------------------------------------------------------------


def approve(
    registry: Registry,
    deployments: Deployments,
    callbacks: TaskCallbacks,
    events: EventPublisher,
    *,
    model: str,
    version: int,
    by: str,
) -> dict[str, Any]:
    """A reviewer approves ``version``: it becomes ``approved`` and its deployment resumes.

    The status changes before the workflow resumes (its next step only moves traffic to an approved
    version), and back if the workflow no longer waits.
    """
    candidate = registry.get(model, version)  # UnknownModel if there is no such version
    record = _waiting(deployments, model, version)
    if candidate.status != "candidate":
        raise NoApprovalPending(f"{model} v{version} is {candidate.status}, not a candidate awaiting approval")
    registry.set_status(model, version, "approved", decision=f"approved by {by}")
    try:
        callbacks.succeed(str(record["token"]), {"approved_by": by, "at": time.time()})
    except CallbackExpired:
        registry.set_status(model, version, "candidate", decision=candidate.decision)
        deployments.update(model, version, "expired", reason="the approval request expired")
        raise ApprovalExpired(
            f"the deployment of {model} v{version} no longer waits for approval (timed out or stopped); "
            "retrain or drop data again to start a new one"
        ) from None
    deployments.update(model, version, "approved", by=by)
    _publish(events, "ModelApproved", model, version, record, {"by": by})
    return {"model": model, "version": version, "status": "approved", "execution": record.get("execution")}


def reject(
    registry: Registry,
    deployments: Deployments,
    callbacks: TaskCallbacks,
    events: EventPublisher,
    *,
    model: str,
    version: int,
    by: str,
    reason: str,
) -> dict[str, Any]:
    """A reviewer rejects ``version``: it becomes ``rejected`` and a waiting deployment ends."""
    candidate = registry.get(model, version)
    if candidate.status not in ("candidate", "approved"):
        raise NoApprovalPending(f"{model} v{version} is {candidate.status}: only a candidate can be rejected")
    record = _waiting(deployments, model, version)
    decision = f"rejected by {by}: {reason}"
    registry.set_status(model, version, "rejected", decision=decision)
    ended = True
    try:
        callbacks.fail(str(record["token"]), REJECTED_ERROR, decision)
    except CallbackExpired:
        ended = False  # the workflow already stopped waiting; the version stays rejected all the same
    deployments.update(model, version, "rejected", by=by, reason=reason)
    _publish(events, "ModelRejected", model, version, record, {"by": by, "reason": reason})
    return {
        "model": model,
        "version": version,
        "status": "rejected",
        "execution": record.get("execution"),
        "execution_stopped": ended,
    }


def _waiting(deployments: Deployments, model: str, version: int) -> dict[str, Any]:
    record = deployments.get(model, version)
    if record is None or record.get("state") != "awaiting_approval" or not record.get("token"):
        state = record.get("state") if record else "no deployment"
        raise NoApprovalPending(f"no deployment of {model} v{version} is waiting for approval ({state})")
    return record


def _publish(
    events: EventPublisher, name: Any, model: str, version: int, record: dict[str, Any], details: dict[str, Any]
) -> None:
    event = RegistryEvent(
        name=name,
        model=model,
        model_version=version,
        correlation_id=str(record.get("execution") or ""),
        details=details,
    )
    events.publish(event.source, event.name, event.detail())
