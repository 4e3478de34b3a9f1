"""Stage 5: the deployment, one function per state of the workflow (see infra/pipeline_definition.py).

Plan deployment -> [Await approval] -> (Start phase -> Bake -> Check bake)* -> Deploy, or Roll back.
Each stage reads the plan at ``$.deployment`` and the registry; none keeps state of its own.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, cast

from conveyor import layout
from conveyor.deployment import (
    BREACH,
    EXTEND,
    INSUFFICIENT,
    INTERRUPTED,
    Checks,
    DeploymentError,
    DeploymentInProgress,
    Deployments,
    assess_bake,
    describe_phase,
    next_phase,
    read_capture,
)
from conveyor.events import RegistryEvent
from conveyor.registry import ChampionChanged, Routing
from conveyor.stages.context import PipelineContext, StageEvent, StageInputError
from conveyor.workflow import (
    ApprovalInput,
    ApprovalRequest,
    BakeResult,
    CheckBakeInput,
    DeployInput,
    DeploymentPlan,
    ExecutionError,
    PlanInput,
    PromotionResult,
    RollbackInput,
    RollbackResult,
    StartPhaseInput,
)

log = logging.getLogger(__name__)


def _target(event: StageEvent[PlanInput] | StageEvent[DeployInput]) -> tuple[str, int]:
    registration = event.require("registration")
    return str(registration["model"]), int(registration["version"])


def plan(event: StageEvent[PlanInput], ctx: PipelineContext, clock: Callable[[], float] = time.time) -> DeploymentPlan:
    """The plan for the registered version, from the spec it was trained with (its copy beside the version)."""
    from conveyor.deployment import plan_deployment
    from conveyor.spec import load_spec  # pydantic and yaml: this stage runs in the training image

    model, version = _target(event)
    spec = load_spec(ctx.store.get(ctx.settings.artifact_bucket, layout.version_key(model, version, layout.SPEC_FILE)))
    champion = ctx.registry.champion(model)
    serving = champion.version if champion else None
    document = plan_deployment(spec.deployment, model=model, version=version, champion=serving)
    # The version's alarm thresholds and actions, for the promotion (a zip function: it cannot parse the spec).
    document["monitoring"] = spec.monitoring.model_dump(mode="json")
    evaluation: Mapping[str, Any] = event.state.get("evaluation") or {}
    if "champion_version" in evaluation and evaluation["champion_version"] != serving:
        # Compare-and-set: the candidate was compared with another champion. No deployment starts;
        # "Champion unchanged?" sends it back to Evaluate, against the version serving now.
        compared = evaluation["champion_version"]
        document["stale"] = True
        document["note"] = f"evaluated against v{compared}, but {f'v{serving}' if serving else 'nothing'} serves now"
        return cast(DeploymentPlan, document)
    document["stale"] = False
    from conveyor.stages.bursts import lease_seconds, run_id

    Deployments(ctx.table).acquire(model, version, run_id(event), until=clock() + lease_seconds(spec))
    Deployments(ctx.table).start(document, execution=event.execution_id)
    return cast(DeploymentPlan, document)


def request_approval(
    event: StageEvent[ApprovalInput], ctx: PipelineContext, clock: Callable[[], float] = time.time
) -> ApprovalRequest:
    """Keep the task token where `conveyor approve` / `reject` find it, and tell the reviewers."""
    if not event.task_token:
        raise StageInputError("the approval request has no task token (call it with .waitForTaskToken)")
    deployment = event.require("deployment")
    model, version = str(deployment["model"]), int(deployment["version"])
    expires_at = clock() + float(deployment["approval_timeout_seconds"])
    Deployments(ctx.table).update(model, version, "awaiting_approval", token=event.task_token, expires_at=expires_at)
    registration: Mapping[str, Any] = event.state.get("registration") or {}
    steps = " -> ".join(describe_phase(p) for p in deployment["phases"]) or "all at once"
    ctx.notifier.publish(
        f"Conveyor: {model} v{version} awaits approval",
        f"{registration.get('summary', f'{model} v{version}')}\n"
        f"Deployment if approved: {deployment['strategy']} ({steps}).\n"
        f"Approve: conveyor approve {model} {version}\n"
        f"Reject:  conveyor reject {model} {version} --reason '...'\n"
        f"The request expires in {int(deployment['approval_timeout_seconds'])} s.",
    )
    return {"model": model, "version": version, "expires_at": expires_at}


def _on_trial(routing: Routing | None, version: int) -> dict[str, Any] | None:
    """The challenger or shadow of ``routing`` that is not ``version``, if any."""
    if routing is None:
        return None
    for trial in (routing.challenger, routing.shadow):
        if trial is not None and int(trial["version"]) != version:
            return trial
    return None


def start_phase(
    event: StageEvent[StartPhaseInput], ctx: PipelineContext, clock: Callable[[], float] = time.time
) -> DeploymentPlan:
    """Move traffic for the next phase: the version as shadow, or as challenger with the phase's weight."""
    deployment = event.require("deployment")
    model, version = str(deployment["model"]), int(deployment["version"])
    routing = ctx.registry.routing(model)
    other = _on_trial(routing, version)
    if other is not None:
        raise DeploymentInProgress(f"{model} v{other['version']} is on trial; v{version} waits for it to end")
    if routing is not None and routing.killed:
        raise DeploymentError(f"{model} is switched off (kill switch): no trial starts until `conveyor revive`")
    advanced = next_phase(deployment, clock())
    phase = advanced["phases"][advanced["phase"]]
    if phase["kind"] == "shadow":
        ctx.registry.set_shadow(model, version)
    else:
        ctx.registry.set_challenger(model, version, float(phase["weight"]))
        if routing is not None and routing.shadow is not None:
            ctx.registry.set_shadow(model, None)  # shadow_then_canary: the shadow phase is over
    Deployments(ctx.table).update(
        model,
        version,
        "trial",
        phase=advanced["phase"],
        weight=phase["weight"],
        phase_started_at=advanced["started_at"],
    )
    return cast(DeploymentPlan, advanced)


def _still_on_trial(routing: Routing | None, version: int, phase: dict[str, Any]) -> str | None:
    """Why the phase can no longer be judged (someone changed the routing), or None."""
    if routing is None or routing.champion is None:
        return "the model has no routing record any more"
    if routing.killed:
        return "the kill switch was turned on"
    slot = routing.shadow if phase["kind"] == "shadow" else routing.challenger
    if slot is None or int(slot["version"]) != version:
        return f"the routing no longer has v{version} as {phase['kind']} (changed by someone else)"
    return None


def check_bake(
    event: StageEvent[CheckBakeInput], ctx: PipelineContext, clock: Callable[[], float] = time.time
) -> BakeResult:
    """Judge the running phase on the capture records of its window."""
    deployment = event.require("deployment")
    model, version = str(deployment["model"]), int(deployment["version"])
    index = int(deployment["phase"])
    phase = deployment["phases"][index]
    previous: Mapping[str, Any] = event.state.get("bake") or {}
    extensions = 0
    if previous.get("phase") == index:
        extensions = int(previous.get("extensions", 0)) + (1 if previous.get("verdict") == EXTEND else 0)
    now = clock()
    result: dict[str, Any] = {
        "model": model,
        "version": version,
        "phase": index,
        "kind": phase["kind"],
        "weight": phase["weight"],
        "extensions": extensions,
        "extend_seconds": int(phase["bake_seconds"]),
        "window": {"start": deployment["started_at"], "end": now},
    }
    routing = ctx.registry.routing(model)
    interrupted = _still_on_trial(routing, version, phase)
    if interrupted is not None or routing is None or routing.champion is None:
        reason = interrupted or "no champion"
        result.update(verdict=INTERRUPTED, summary=f"{model} v{version} {describe_phase(phase)}: {reason}")
        Deployments(ctx.table).update(model, version, "interrupted", reason=reason)
        return cast(BakeResult, result)
    records = read_capture(ctx.store, ctx.settings.capture_bucket, model, float(deployment["started_at"]), now)
    assessment = assess_bake(
        records,
        version=version,
        role="shadow" if phase["kind"] == "shadow" else "challenger",
        champion_version=int(routing.champion["version"]),
        checks=Checks.from_dict(deployment["checks"]),
        extensions=extensions,
    )
    result.update(assessment.to_dict())
    result["summary"] = f"{describe_phase(phase)}: {assessment.summary}"
    Deployments(ctx.table).update(
        model,
        version,
        "trial",
        last_check={k: result[k] for k in ("verdict", "summary", "checks", "trial", "champion", "window")},
    )
    return cast(BakeResult, result)


def _failure_reason(error: ExecutionError) -> str:
    cause = error.get("Cause")
    try:
        parsed = json.loads(cause) if isinstance(cause, str) else None
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and parsed.get("errorMessage"):
        return f"{parsed.get('errorType', error.get('Error'))}: {parsed['errorMessage']}"
    return f"{error.get('Error', 'error')}: {cause or ''}".strip()


def roll_back(event: StageEvent[RollbackInput], ctx: PipelineContext) -> RollbackResult:
    """End the trial: the champion takes all traffic again; the version is rejected if its bake failed."""
    deployment = event.require("deployment")
    model, version = str(deployment["model"]), int(deployment["version"])
    bake: Mapping[str, Any] = event.state.get("bake") or {}
    error = event.state.get("error")
    judged = (
        error is None and bake.get("phase") == deployment["phase"] and bake.get("verdict") in {BREACH, INSUFFICIENT}
    )
    reason = bake.get("summary", "") if judged else _failure_reason(error or {"Error": "unknown failure"})
    routing = ctx.registry.routing(model)
    slots = (routing.challenger, routing.shadow) if routing is not None else ()
    ended = any(slot is not None and int(slot["version"]) == version for slot in slots)
    if ended:  # never end somebody else's trial
        ctx.registry.end_trial(model, reason[:200])
    if judged:
        ctx.registry.set_status(model, version, "rejected", decision=f"rolled back: {reason}")
    champion = routing.champion["version"] if routing and routing.champion else None
    phase = deployment["phases"][deployment["phase"]] if deployment["phase"] >= 0 else None
    during = f" during its {describe_phase(phase)}" if phase else ""
    summary = f"{model} v{version} rolled back{during}: {reason}."
    if champion is not None:
        summary += f" v{champion} keeps serving all traffic."
    ctx.emit(
        RegistryEvent(
            name="ModelRolledBack",
            model=model,
            model_version=version,
            correlation_id=event.execution_id,
            details={
                "reason": reason,
                "phase": phase,
                "champion": champion,
                "trial_ended": ended,
                "checks": bake.get("checks") if judged else None,
            },
        )
    )
    Deployments(ctx.table).update(model, version, "rolled_back", reason=reason)
    return {"model": model, "version": version, "champion": champion, "reason": reason, "summary": summary}


def promote(event: StageEvent[DeployInput], ctx: PipelineContext) -> PromotionResult:
    """All traffic to the version (the last step of every strategy)."""
    model, version = _target(event)
    deployment: Mapping[str, Any] = event.state.get("deployment") or {}
    strategy = str(deployment.get("strategy", "all_at_once"))
    evaluation: Mapping[str, Any] = event.state.get("evaluation") or {}
    expected = evaluation.get("champion_version", True)
    try:  # compare-and-set: only over the champion the candidate was evaluated against
        routing = ctx.registry.promote(model, version, expected_champion=expected)
    except ChampionChanged as changed:
        if deployment:
            Deployments(ctx.table).update(model, version, "interrupted", reason=str(changed))
        return {
            "model": model,
            "version": version,
            "revision": 0,
            "strategy": strategy,
            "phases": [],
            "alarms": {},
            "stale": True,
            "summary": f"{changed}: evaluating it again",
        }
    passed = [describe_phase(p) for p in deployment.get("phases", [])]
    ctx.emit(
        RegistryEvent(
            name="ModelPromoted",
            model=model,
            model_version=version,
            correlation_id=event.execution_id,
            details={
                "revision": routing.revision,
                "strategy": strategy,
                "phases": passed,
                "traffic": {str(version): 1.0},
            },
        )
    )
    if deployment:
        Deployments(ctx.table).update(model, version, "promoted")
    alarms = _sync_alarms(ctx, model, version, deployment.get("monitoring"))
    return {
        "model": model,
        "version": version,
        "revision": routing.revision,
        "strategy": strategy,
        "phases": passed,
        "alarms": alarms,
    }


def _sync_alarms(ctx: PipelineContext, model: str, version: int, settings: dict[str, Any] | None) -> dict[str, Any]:
    """The model's alarms now follow the promoted version's ``monitoring:`` settings. The promotion has
    happened whatever CloudWatch says: a failure here is logged and reported, never a failed deployment."""
    from conveyor.monitoring.actions import remember_settings, settings_of
    from conveyor.monitoring.alarms import sync_model_alarms

    if settings is not None:
        remember_settings(ctx.table, model, version, settings)
    if ctx.alarms is None:
        return {"synced": [], "error": "no alarms port"}
    try:
        names = sync_model_alarms(
            ctx.alarms,
            stack=ctx.settings.stack_name,
            model=model,
            settings=settings if settings is not None else settings_of(ctx.table, model, version),
            topic_arn=ctx.settings.alerts_topic_arn,
        )
    except Exception as error:
        log.exception("alarm sync failed", extra={"model": model, "version": version})
        return {"synced": [], "error": f"{type(error).__name__}: {error}"}
    return {"synced": names}
