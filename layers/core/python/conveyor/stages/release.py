"""Stage 4: register the candidate (with its lineage and evidence). Deployment: ``stages.deployment``."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from typing import Any

from conveyor import layout
from conveyor.contract import ServingContract, contract_from_spec
from conveyor.events import RegistryEvent
from conveyor.registry import ModelVersion, load_verified, sha256_hex
from conveyor.report import build_evidence, render_report
from conveyor.stages.bursts import run_id
from conveyor.stages.context import PipelineContext, StageEvent, code_version
from conveyor.workflow import EvaluationResult, RegisterInput, RegistrationResult, TrainingResult


def _metric_line(evaluation: EvaluationResult) -> str:
    metrics = evaluation.get("candidate") or {}
    champion = evaluation.get("champion") or {}
    parts = []
    for name, value in metrics.items():
        if isinstance(value, int | float):
            text = f"{name} {value:.4f}"
            if isinstance(champion.get(name), int | float):
                text += f" (champion {champion[name]:.4f})"
            parts.append(text)
    return ", ".join(parts[:3])


def _evidence(ctx: PipelineContext, stored: ModelVersion, state: RegisterInput) -> dict[str, Any]:
    """Everything that decided this version's fate, in one JSON document (and its HTML rendering)."""
    evaluation = state.get("evaluation", {})
    details = None
    if evaluation.get("details_key"):
        details = json.loads(ctx.store.get(ctx.settings.artifact_bucket, evaluation["details_key"]))
    drift_report = None
    drift: Mapping[str, Any] = state.get("drift") or {}
    validation: Mapping[str, Any] = state.get("validation") or {}
    if drift.get("report_key") and validation.get("dataset"):
        drift_report = json.loads(ctx.store.get(validation["dataset"]["bucket"], drift["report_key"]))
    return build_evidence(
        {k: v for k, v in stored.to_item().items() if k not in {"pk", "sk"}},
        evaluation=evaluation,
        training=state.get("training", {}),
        details=details,
        drift=drift_report,
    )


log = logging.getLogger(__name__)


def _serving_contract(ctx: PipelineContext, training: TrainingResult) -> ServingContract | None:
    """The serving contract of the candidate's spec: handed over by the train stage (``contract``,
    built where the spec is parsed), else built here from the staged spec.yaml when pydantic and
    PyYAML are importable (the local cloud, the CLI). The register Lambda's layers ship neither:
    without a contract from Train it registers the version without one and serving masks every
    captured input and validates types only (from the ONNX inputs)."""
    if isinstance(training.get("contract"), dict):
        return ServingContract.from_dict(training["contract"])
    try:
        from conveyor.spec import load_spec
    except ImportError:
        log.warning("no serving contract: the train stage handed none over and the spec cannot be parsed here")
        return None
    spec = load_spec(ctx.store.get(ctx.settings.artifact_bucket, training["spec_key"]))
    return contract_from_spec(spec)


def _trained_on(ctx: PipelineContext, training: TrainingResult) -> list[dict[str, Any]]:
    """The data objects of the candidate: the manifest Train staged (``data_key``), or the list of
    an execution started before manifests."""
    if "data_key" in training:
        data: list[dict[str, Any]] = json.loads(ctx.store.get(ctx.settings.artifact_bucket, training["data_key"]))
        return data
    return list(training.get("data", []))


def _lineage(event: StageEvent[RegisterInput], ctx: PipelineContext) -> dict[str, Any]:
    """Where the version came from: its data, what triggered it, spec, code, libraries, parameters, parent."""
    training: TrainingResult = event.require("training")
    evaluation: EvaluationResult = event.require("evaluation")
    validation: Mapping[str, Any] = event.state.get("validation") or {}
    return {
        "data": _trained_on(ctx, training),
        "trigger": {
            "key": validation.get("data_key"),
            "report_key": validation.get("report_key"),
            "retrain": event.state.get("retrain"),
        },
        "spec_hash": training.get("spec_hash"),
        "code_version": code_version(),
        "libraries": training.get("libraries", {}),
        "estimator": training.get("estimator"),
        "parameters": training.get("params", {}),
        "parent_champion": evaluation.get("champion_version"),
        "execution": event.execution_id,
        "run": run_id(event),  # the run that claimed the retrain (the same across a resumed execution)
        # The run's training round (conveyor.bursts) and every evaluation of this candidate, each with
        # the champion it was compared with (more than one when the champion changed before promotion).
        "round": _round(event),
        "evaluations": [_evaluation_entry(evaluation)],
        "n_train": training.get("n_train"),
        "n_holdout": training.get("n_holdout"),
    }


def _round(event: StageEvent[RegisterInput]) -> int | None:
    """The run's training round (``$.claim.round``; None for runs from before one retrain per burst)."""
    claim: Mapping[str, Any] = event.state.get("claim") or {}
    return claim.get("round")


def _evaluation_entry(evaluation: EvaluationResult) -> dict[str, Any]:
    return {
        "champion": evaluation.get("champion_version"),
        "passed": bool(evaluation.get("passed")),
        "reason": str(evaluation.get("reason", "")),
        "at": time.time(),
    }


def _status(training: TrainingResult, passed: bool) -> str:
    """auto approval: a candidate that passed every gate is approved by the pipeline itself."""
    if not passed:
        return "rejected"
    return "approved" if training.get("approval", "auto") == "auto" else "candidate"


def _store_contract(ctx: PipelineContext, training: TrainingResult) -> tuple[bytes, str] | None:
    """The candidate's serving contract (its bytes and sha256), stored content-addressed; None without one."""
    contract = _serving_contract(ctx, training)
    if contract is None:
        return None
    contract_bytes = contract.to_json()
    contract_sha256 = sha256_hex(contract_bytes)
    model = str(training["model"])
    ctx.store.put(
        ctx.settings.artifact_bucket, layout.contract_key(model, contract_sha256), contract_bytes, "application/json"
    )
    return contract_bytes, contract_sha256


def _store_companions(
    ctx: PipelineContext, event: StageEvent[RegisterInput], stored: ModelVersion, contract: bytes | None
) -> None:
    """Beside the version, for people: its contract (serving reads the content-addressed copy), evidence,
    report, spec and profile; and its holdout, moved out of staging/ (which expires) for later evaluations."""
    training: TrainingResult = event.require("training")
    bucket = ctx.settings.artifact_bucket

    def key(name: str) -> str:
        return layout.version_key(stored.model, stored.version, name)

    if contract is not None:
        ctx.store.put(bucket, key(layout.CONTRACT), contract, "application/json")
    evidence = _evidence(ctx, stored, event.state)
    ctx.put_json(bucket, key(layout.EVIDENCE), evidence)
    ctx.store.put(bucket, key(layout.REPORT), render_report(evidence).encode(), "text/html")
    ctx.store.put(bucket, key(layout.SPEC_FILE), ctx.store.get(bucket, training["spec_key"]))
    ctx.store.put(bucket, key(layout.PROFILE), ctx.store.get(bucket, training["profile_key"]))
    ctx.store.put(bucket, key(layout.HOLDOUT), ctx.store.get(bucket, training["holdout_key"]))


def _emit_registered(ctx: PipelineContext, stored: ModelVersion, passed: bool, execution_id: str) -> None:
    ctx.emit(
        RegistryEvent(
            name="ModelRegistered" if passed else "ModelRejected",
            model=stored.model,
            model_version=stored.version,
            correlation_id=execution_id,
            details={"status": stored.status, "sha256": stored.sha256, "reason": stored.decision},
        )
    )
    if stored.status == "approved":
        ctx.emit(
            RegistryEvent(
                name="ModelApproved",
                model=stored.model,
                model_version=stored.version,
                correlation_id=execution_id,
                details={"by": "pipeline (deployment.approval: auto)"},
            )
        )


# A candidate whose champion keeps changing before it can be promoted is evaluated at most this many
# times; then it ends as "superseded".
MAX_EVALUATIONS = 3


def _registered_by_this_run(ctx: PipelineContext, event: StageEvent[RegisterInput]) -> ModelVersion | None:
    """The version this run's round already registered for the same candidate (an evaluation again)."""
    training: TrainingResult = event.require("training")
    round_ = _round(event)
    for version in reversed(ctx.registry.versions(str(training["model"]))):
        lineage = version.lineage
        if lineage.get("run", lineage.get("execution")) == run_id(event) and lineage.get("round") == round_:
            return version if version.sha256 == training["sha256"] else None
    return None


def _register_again(
    ctx: PipelineContext, event: StageEvent[RegisterInput], earlier: ModelVersion
) -> RegistrationResult:
    """The champion changed after this candidate's evaluation: record the new evaluation on the same version."""
    training: TrainingResult = event.require("training")
    evaluation: EvaluationResult = event.require("evaluation")
    passed = bool(evaluation.get("passed"))
    evaluations = [*earlier.lineage.get("evaluations", []), _evaluation_entry(evaluation)]
    champion = evaluation.get("champion_version")
    against = f"v{champion}" if champion else "no champion"
    status = _status(training, passed)
    reason = f"evaluated again against {against} (the champion changed): {evaluation.get('reason', '')}"
    if len(evaluations) > MAX_EVALUATIONS:
        status, reason = "superseded", f"the champion changed {len(evaluations) - 1} times before promotion"
    earlier.metrics = {
        "candidate": evaluation.get("candidate") or {},
        "champion": evaluation.get("champion"),
        "primary": evaluation.get("metric"),
    }
    earlier.gates = evaluation.get("gates", [])
    earlier.lineage = {**earlier.lineage, "parent_champion": champion, "evaluations": evaluations}
    ctx.registry.save(earlier)
    ctx.registry.set_status(
        earlier.model, earlier.version, status, decision=str(evaluation.get("reason", "")), reason=reason
    )
    stored = ctx.registry.get(earlier.model, earlier.version)
    _store_companions(ctx, event, stored, None)
    if status == "superseded":
        ctx.emit(
            RegistryEvent(
                name="ModelSuperseded",
                model=stored.model,
                model_version=stored.version,
                correlation_id=event.execution_id,
                details={"reason": reason, "champion": champion, "evaluations": evaluations},
            )
        )
    else:
        _emit_registered(ctx, stored, passed, event.execution_id)
    return {
        "model": stored.model,
        "version": stored.version,
        "status": stored.status,
        "artifact_key": stored.artifact_key,
        "sha256": stored.sha256,
        "summary": f"{stored.model} v{stored.version} {reason}",
    }


def register(event: StageEvent[RegisterInput], ctx: PipelineContext) -> RegistrationResult:
    training: TrainingResult = event.require("training")
    evaluation: EvaluationResult = event.require("evaluation")
    earlier = _registered_by_this_run(ctx, event)
    if earlier is not None:
        return _register_again(ctx, event, earlier)
    model = str(training["model"])
    bucket = ctx.settings.artifact_bucket
    data = load_verified(ctx.store, bucket, training["candidate_key"], training["sha256"])
    key = layout.artifact_key(model, training["sha256"])
    ctx.store.put(bucket, key, data, "application/octet-stream")
    contract = _store_contract(ctx, training)
    passed = bool(evaluation.get("passed"))
    version = ModelVersion(
        model=model,
        version=0,
        status=_status(training, passed),
        artifact_key=key,
        sha256=training["sha256"],
        metrics={
            "candidate": evaluation.get("candidate") or {},
            "champion": evaluation.get("champion"),
            "primary": evaluation.get("metric"),
        },
        gates=evaluation.get("gates", []),
        decision=str(evaluation.get("reason", "")),
        lineage=_lineage(event, ctx),
        contract_key=layout.contract_key(model, contract[1]) if contract is not None else "",
        contract_sha256=contract[1] if contract is not None else "",
    )
    champion = evaluation.get("champion_version")
    version.history = [{"status": version.status, "reason": version.decision, "at": time.time(), "champion": champion}]
    stored = ctx.registry.register(version)
    _store_companions(ctx, event, stored, contract[0] if contract is not None else None)
    _emit_registered(ctx, stored, passed, event.execution_id)
    verb = "registered" if passed else "rejected"
    summary = f"{model} v{stored.version} {verb}: {_metric_line(evaluation)}. {evaluation.get('reason', '')}".strip()
    return {
        "model": model,
        "version": stored.version,
        "status": stored.status,
        "artifact_key": key,
        "sha256": stored.sha256,
        "summary": summary,
    }
