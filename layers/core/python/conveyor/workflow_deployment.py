"""The deployment's part of the workflow contract (re-exported by :mod:`conveyor.workflow`): the plan,
the approval, each bake check, the rollback and the promotion, as the states after ``Register`` pass them."""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

BakeVerdict = Literal["pass", "extend", "breach", "insufficient", "interrupted"]


class Phase(TypedDict):
    kind: Literal["shadow", "challenger"]
    weight: float
    bake_seconds: int


class DeploymentPlan(TypedDict):
    """``$.deployment`` ("Plan deployment", then each "Start phase" advances it)."""

    model: str
    version: int
    champion: int | None
    strategy: str
    approval: str  # auto | manual
    approval_timeout_seconds: int
    phases: list[Phase]
    phase: int  # index of the running phase; -1: none started
    has_next_phase: bool
    bake_seconds: int
    started_at: float | None
    checks: dict[str, Any]
    note: str
    monitoring: NotRequired[dict[str, Any]]  # the version's spec.monitoring: its alarms once promoted
    stale: NotRequired[bool]  # the champion changed since the evaluation: evaluate again, no deployment


class ApprovalRequest(TypedDict):
    """What "Await approval"'s Lambda returns (the state gets the reviewer's answer instead)."""

    model: str
    version: int
    expires_at: float


class Approval(TypedDict):
    """``$.approval``: the output `conveyor approve` sends with the task token."""

    approved_by: str
    at: float


class BakeWindow(TypedDict):
    start: float
    end: float


class BakeResult(TypedDict):
    """``$.bake`` (Check bake)."""

    model: str
    version: int
    phase: int
    kind: str
    weight: float
    extensions: int
    extend_seconds: int
    window: BakeWindow
    verdict: BakeVerdict
    summary: str
    checks: NotRequired[list[dict[str, Any]]]
    trial: NotRequired[dict[str, Any]]
    champion: NotRequired[dict[str, Any]]
    score_shift: NotRequired[dict[str, Any] | None]


class RollbackResult(TypedDict):
    """``$.rollback`` (Roll back)."""

    model: str
    version: int
    champion: int | None
    reason: str
    summary: str


class PromotionResult(TypedDict):
    """``$.promotion`` (Deploy). ``stale``: the compare-and-set lost (another version became champion
    after the evaluation): nothing was promoted and "Promoted?" evaluates the candidate again."""

    model: str
    version: int
    revision: int
    strategy: str
    phases: list[str]
    alarms: dict[str, Any]  # the model's alarms synced to the version: {"synced": [names]} or an "error"
    stale: NotRequired[bool]
    summary: NotRequired[str]
