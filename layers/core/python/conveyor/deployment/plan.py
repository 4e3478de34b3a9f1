"""The plan a version follows to production: approval, phases (each with its bake), checks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from conveyor.deployment.errors import DeploymentError

if TYPE_CHECKING:  # the spec's pydantic models: only the plan stage (training image) builds a plan
    from conveyor.spec import Deployment


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
