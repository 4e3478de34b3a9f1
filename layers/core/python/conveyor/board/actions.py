"""Approve or reject from a board: the same ``conveyor.deployment.approval`` functions as
``conveyor approve`` / ``conveyor reject``, with the reviewer named as far as the board knows it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from conveyor.deployment import Deployments, approve, reject
from conveyor.errors import ConveyorError
from conveyor.ports import EventPublisher, TaskCallbacks
from conveyor.registry import Registry

ACTIONS = ("approve", "reject")


class BadAction(ConveyorError):
    """A board request that names no known action, model or version."""


@dataclass
class Reviewing:
    registry: Registry
    deployments: Deployments
    callbacks: TaskCallbacks
    events: EventPublisher


def review(ports: Reviewing, action: str, params: dict[str, Any], *, by: str) -> dict[str, Any]:
    """Apply ``action`` (approve | reject) to ``params["model"]`` v``params["version"]``.

    Raises
    ------
    BadAction
        For an unknown action or a missing model or version.
    conveyor.deployment.DeploymentError, conveyor.registry.RegistryError
        As ``conveyor approve`` / ``reject`` do (nothing waits, unknown version, expired approval).
    """
    if action not in ACTIONS:
        raise BadAction(f"unknown action {action!r} (use approve or reject)")
    model = params.get("model")
    try:
        version = int(params.get("version"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise BadAction("a version number is required") from None
    if not isinstance(model, str) or not model:
        raise BadAction("a model name is required")
    answering = (ports.registry, ports.deployments, ports.callbacks, ports.events)
    if action == "approve":
        return approve(*answering, model=model, version=version, by=by)
    reason = str(params.get("reason") or "").strip() or "rejected on the board"
    return reject(*answering, model=model, version=version, by=by, reason=reason[:500])
