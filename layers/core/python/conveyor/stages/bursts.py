"""One retrain per burst, as states of the pipeline (the lease itself: :mod:`conveyor.bursts`).

Claim retrain -> Retrain claimed? -> (folded: "Folded into run") or Wait for the burst -> Start retrain ->
Burst settled? -> Train ... and at the end of every run that got past "Retrain?": Finish run -> Retrain
again? -> (Prepare follow-up -> Wait for the burst) or Run outcome? -> the run's terminal state.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any, cast

from conveyor import layout
from conveyor.bursts import OWNER, QUEUED, RetrainLeases
from conveyor.deployment import IN_PROGRESS, Deployments
from conveyor.registry import UnknownModel
from conveyor.stages.context import PipelineContext, StageEvent
from conveyor.workflow import INTERRUPTED, ClaimInput, ClaimResult, Ending, Error, FinishResult, PipelineState

# How long a training and its evaluation may take, on top of the deployment's own bound, before a
# running lease counts as abandoned (its execution was stopped from outside).
TRAINING_ALLOWANCE_SECONDS = 2 * 3600
# A deployment waiting for another version's trial retries for about two hours (infra.constants).
BUSY_ALLOWANCE_SECONDS = 2 * 3600


def _spec(ctx: PipelineContext, model: str) -> Any:
    from conveyor.spec import load_spec  # pydantic and yaml: these stages run in the training image

    return load_spec(ctx.store.get(ctx.settings.artifact_bucket, layout.spec_key(model)))


def lease_seconds(spec: Any) -> float:
    """The longest an owner's run can last: training, approval (manual), every bake (extended), retries."""
    deployment = spec.deployment
    bakes = sum(int(phase["bake_seconds"]) for phase in deployment.phases())
    approval = deployment.approval_timeout_seconds if deployment.approval == "manual" else 0
    return float(TRAINING_ALLOWANCE_SECONDS + BUSY_ALLOWANCE_SECONDS + approval + 3 * bakes)


def run_id(event: StageEvent[Any]) -> str:
    """Who holds this run's leases: the execution that claimed the retrain (``$.claim.owner``), which a
    resumed execution (``conveyor retry``) carries on, else this execution."""
    claim: Mapping[str, Any] = event.state.get("claim") or {}
    return str(claim["owner"]) if claim.get("outcome") == OWNER and claim.get("owner") else event.execution_id


def _dropped_key(state: Mapping[str, Any]) -> str:
    detail = state.get("detail") or {}
    return str((detail.get("object") or {}).get("key") or "")


def claim_retrain(
    event: StageEvent[ClaimInput], ctx: PipelineContext, *, clock: Callable[[], float] = time.time
) -> ClaimResult:
    """This drop's execution owns the model's next training, or is folded into the run that does."""
    model = str(event.require("validation", "model"))
    spec = _spec(ctx, model)
    window = int(spec.retrain.batch_window_seconds)
    claim = RetrainLeases(ctx.table, clock).claim(
        model, event.execution_id, _dropped_key(event.state), window=window, lease_seconds=lease_seconds(spec)
    )
    result = claim.to_dict()
    if claim.outcome == OWNER:
        result["summary"] = f"{model}: this run trains once the burst settles ({window} s without a new drop)"
    elif claim.state == QUEUED:
        result["summary"] = f"{model}: folded into {claim.owner}, which trains on this drop too"
    else:
        result["summary"] = (
            f"{model}: folded into {claim.owner}, which is training; it trains once more with this drop when it ends"
        )
    return cast(ClaimResult, result)


def _marker_missing(ctx: PipelineContext, bucket: str, marker: str) -> Callable[[list[str]], list[str]]:
    """The folders whose export is not complete: no ``marker`` yet, or a manifest naming parts still waiting."""

    def missing(folders: list[str]) -> list[str]:
        # A file dropped straight into {model}/incoming/ is not an export: only an export's folder has a marker.
        exports = [folder for folder in folders if len(folder.split("/")) > 2]
        return [folder for folder in exports if not _complete(ctx, bucket, folder, marker)]

    return missing


def _complete(ctx: PipelineContext, bucket: str, folder: str, marker: str) -> bool:
    key = f"{folder}/{marker}"
    if ctx.store.head(bucket, key) is None:
        return False
    if not marker.endswith(".json"):
        return True
    try:
        manifest = json.loads(ctx.store.get(bucket, key) or b"{}")
    except ValueError:
        return True  # not a manifest: its presence is the signal
    parts = manifest.get("parts") or manifest.get("files") or [] if isinstance(manifest, dict) else manifest
    # Validate moves every drop out of incoming/: a part still there has not been validated yet.
    return all(ctx.store.head(bucket, p if "/" in str(p) else f"{folder}/{p}") is None for p in parts)


def start_retrain(
    event: StageEvent[ClaimInput], ctx: PipelineContext, *, clock: Callable[[], float] = time.time
) -> ClaimResult:
    """Train now (the burst settled: the lease is running) or wait ``wait_seconds`` more."""
    claim = event.require("claim")
    model = str(event.require("validation", "model"))
    marker = _spec(ctx, model).retrain.wait_for
    detail: Mapping[str, Any] = event.state.get("detail") or {}
    bucket = str((detail.get("bucket") or {}).get("name") or ctx.settings.data_bucket)
    started = RetrainLeases(ctx.table, clock).start(
        model, run_id(event), marker_missing=_marker_missing(ctx, bucket, marker) if marker else None
    )
    return cast(
        ClaimResult,
        {
            **claim,
            "ready": started["ready"],
            "wait_seconds": started["wait_seconds"],
            "round": started["round"],
            "folded_count": started["folded_count"],
            "summary": started["summary"],
        },
    )


def ending_of(state: Mapping[str, Any]) -> Ending:
    """How the run ended, from what its stages left in the state."""
    promotion = state.get("promotion") or {}
    registration = state.get("registration") or {}
    error = state.get("error") or {}
    if promotion and not promotion.get("stale"):
        return "serving"
    if state.get("rollback"):
        return "rolled_back"
    if error:
        if error.get("Error") == Error.REJECTED:
            return "rejected_by_reviewer"
        if error.get("Error") == Error.TIMEOUT and "deployment" in state:
            return "approval_expired"
        return "failed"
    if (state.get("bake") or {}).get("verdict") == INTERRUPTED:
        return "interrupted"
    if registration.get("status") == "superseded":
        return "superseded"
    if registration.get("status") == "rejected":
        return "candidate_rejected"
    return "failed"


def _settle_version(ctx: PipelineContext, state: Mapping[str, Any], ending: Ending) -> str:
    """No version stays approved without a deployment in progress: say why it did not serve."""
    registration = state.get("registration") or {}
    if not registration or ending == "serving":
        return ""
    model, version = str(registration["model"]), int(registration["version"])
    try:
        current = ctx.registry.get(model, version)
    except UnknownModel:
        return ""
    deployments = Deployments(ctx.table)
    record = deployments.get(model, version)
    if record is not None and record.get("state") in IN_PROGRESS:
        deployments.update(model, version, "interrupted", reason=f"the run ended: {ending}")
    if current.status == "approved" or (current.status == "candidate" and ending != "approval_expired"):
        reason = f"not deployed: the run ended ({ending.replace('_', ' ')})"
        ctx.registry.set_status(model, version, "rejected", decision=f"{current.decision} ({reason})", reason=reason)
        return f"; v{version} {reason}"
    if current.status == "candidate":
        ctx.registry.set_status(model, version, "candidate", reason="approval expired: nothing was deployed")
    return ""


def finish_run(event: StageEvent[PipelineState], ctx: PipelineContext) -> FinishResult:
    """Release the retrain lease (or queue the follow-up round when drops joined meanwhile) and the
    deployment lock; settle the version's status; name the ending for "Run outcome?"."""
    state = event.state
    ending = ending_of(state)
    validation: Mapping[str, Any] = state.get("validation") or {}
    request: Mapping[str, Any] = state.get("retrain") or {}
    model = str(validation.get("model") or request.get("model") or "")
    if not model:
        return {"ending": ending, "pending": False, "summary": "no model: nothing to release"}
    note = _settle_version(ctx, state, ending)
    owner = run_id(event)
    Deployments(ctx.table).release(model, owner)
    released = RetrainLeases(ctx.table).finish(model, owner)
    result: dict[str, Any] = {"ending": ending, "pending": bool(released["pending"])}
    if released["pending"]:
        kept = {k: state[k] for k in ("source", "detail", "retrain", "validation", "drift") if k in state}  # type: ignore[literal-required]
        kept["claim"] = {
            "outcome": OWNER,
            "owner": owner,
            "state": QUEUED,
            "round": released["round"],
            "wait_seconds": released["wait_seconds"],
            "ready": False,
        }
        result["next"] = kept
        result["summary"] = f"{model}: {ending}{note}; drops joined meanwhile: training round {released['round']}"
    else:
        result["summary"] = f"{model}: {ending}{note}"
    return cast(FinishResult, result)


__all__ = ["claim_retrain", "ending_of", "finish_run", "lease_seconds", "run_id", "start_retrain"]
