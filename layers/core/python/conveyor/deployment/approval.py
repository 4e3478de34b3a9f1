"""A reviewer's answer to a deployment awaiting approval: approve or reject, and resume the workflow."""

from __future__ import annotations

import time
from typing import Any

from conveyor.deployment.errors import ApprovalExpired, NoApprovalPending
from conveyor.deployment.records import Deployments
from conveyor.events import RegistryEvent
from conveyor.ports import CallbackExpired, EventPublisher, TaskCallbacks
from conveyor.registry import Registry
from conveyor.workflow import Error

# The Step Functions error a reviewer's rejection fails the approval task with.
REJECTED_ERROR = Error.REJECTED


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
