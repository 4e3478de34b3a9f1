"""Stage 4: register the candidate (with its lineage and evidence). Deployment: ``stages.deployment``."""

from __future__ import annotations

import json
import logging
from typing import Any

from conveyor.contract import ServingContract, contract_from_spec
from conveyor.events import RegistryEvent
from conveyor.registry import ModelVersion, artifact_key, load_verified, sha256_hex, version_key
from conveyor.report import build_evidence, render_report
from conveyor.stages.context import PipelineContext, StageEvent, code_version


def _metric_line(evaluation: dict[str, Any]) -> str:
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


def _evidence(ctx: PipelineContext, stored: ModelVersion, state: dict[str, Any]) -> dict[str, Any]:
    """Everything that decided this version's fate, in one JSON document (and its HTML rendering)."""
    evaluation = state.get("evaluation", {})
    details = None
    if evaluation.get("details_key"):
        details = json.loads(ctx.store.get(ctx.settings.artifact_bucket, evaluation["details_key"]))
    drift_report = None
    drift = state.get("drift") or {}
    validation = state.get("validation") or {}
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


def contract_key(model: str, sha256: str) -> str:
    """Content-addressed, like the model artifact: the same contract always lands at the same key."""
    return f"{model}/contracts/sha256-{sha256}.json"


def _serving_contract(ctx: PipelineContext, training: dict[str, Any]) -> ServingContract | None:
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


def register(event: StageEvent, ctx: PipelineContext) -> dict[str, Any]:
    training = event.require("training")
    evaluation = event.require("evaluation")
    validation = event.state.get("validation", {})
    model = str(training["model"])
    bucket = ctx.settings.artifact_bucket
    data = load_verified(ctx.store, bucket, training["candidate_key"], training["sha256"])
    key = artifact_key(model, training["sha256"])
    ctx.store.put(bucket, key, data, "application/octet-stream")
    contract = _serving_contract(ctx, training)
    contract_bytes = contract.to_json() if contract is not None else b""
    contract_sha256 = sha256_hex(contract_bytes) if contract is not None else ""
    if contract is not None:
        ctx.store.put(bucket, contract_key(model, contract_sha256), contract_bytes, "application/json")
    passed = bool(evaluation.get("passed"))
    version = ModelVersion(
        model=model,
        version=0,
        # auto approval: a candidate that passed every gate is approved by the pipeline itself.
        status=("approved" if training.get("approval", "auto") == "auto" else "candidate") if passed else "rejected",
        artifact_key=key,
        sha256=training["sha256"],
        metrics={
            "candidate": evaluation.get("candidate") or {},
            "champion": evaluation.get("champion"),
            "primary": evaluation.get("metric"),
        },
        gates=evaluation.get("gates", []),
        decision=str(evaluation.get("reason", "")),
        lineage={
            "data": training.get("data", []),
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
            "n_train": training.get("n_train"),
            "n_holdout": training.get("n_holdout"),
        },
        contract_key=contract_key(model, contract_sha256) if contract is not None else "",
        contract_sha256=contract_sha256,
    )
    stored = ctx.registry.register(version)
    if contract is not None:  # beside the version too, for people; serving reads the content-addressed copy
        ctx.store.put(bucket, version_key(model, stored.version, "contract.json"), contract_bytes, "application/json")
    evidence = _evidence(ctx, stored, event.state)
    ctx.put_json(bucket, version_key(model, stored.version, "evidence.json"), evidence)
    ctx.store.put(
        bucket, version_key(model, stored.version, "report.html"), render_report(evidence).encode(), "text/html"
    )
    ctx.store.put(bucket, version_key(model, stored.version, "spec.yaml"), ctx.store.get(bucket, training["spec_key"]))
    ctx.store.put(
        bucket, version_key(model, stored.version, "profile.json"), ctx.store.get(bucket, training["profile_key"])
    )
    ctx.emit(
        RegistryEvent(
            name="ModelRegistered" if passed else "ModelRejected",
            model=model,
            model_version=stored.version,
            correlation_id=event.execution_id,
            details={"status": stored.status, "sha256": stored.sha256, "reason": stored.decision},
        )
    )
    if stored.status == "approved":
        ctx.emit(
            RegistryEvent(
                name="ModelApproved",
                model=model,
                model_version=stored.version,
                correlation_id=event.execution_id,
                details={"by": "pipeline (deployment.approval: auto)"},
            )
        )
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
