"""Stage 2: compare an accepted drop with the champion's reference profile; apply the retrain policy.

The profile stored with the serving version is the reference: the training data is never read
again. Drift results go beside the drop (``{data_key}.drift.json``) and to CloudWatch metrics.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from conveyor import layout
from conveyor.bursts import DriftAlerts
from conveyor.drift import drift_report
from conveyor.drift import sample as sampling
from conveyor.events import RegistryEvent
from conveyor.profile import Profile
from conveyor.spec import ModelSpec, load_spec
from conveyor.stages.context import PipelineContext, StageEvent
from conveyor.workflow import DRIFT, DatasetRecord, DriftInput, DriftResult, ValidationResult


def _new_rows_since_last_training(
    ctx: PipelineContext, model: str, *, windowed: bool = False
) -> tuple[int, int | None]:
    """Rows of accepted data that the latest trained version (served or not) did not learn from.

    Counting from the latest training, not from the champion, keeps a rejected candidate's data from
    triggering the same retraining again with every small arrival. With a ``training.window``
    (``windowed``), data older than the latest training that the window left out is not new.
    """
    latest = ctx.registry.latest_version_number(model)
    seen: set[Any] = set()
    since = 0.0
    if latest:
        version = ctx.registry.get(model, latest)
        seen = {d.get("sha256") for d in version.lineage.get("data", [])}
        since = version.created_at if windowed else 0.0
    new = sum(
        int(d.get("rows") or 0)
        for d in ctx.registry.datasets(model)
        if d.get("sha256") not in seen and float(d.get("accepted_at") or 0.0) >= since
    )
    return new, latest or None


def _policy(spec: ModelSpec) -> tuple[bool, int]:
    retrain = getattr(spec, "retrain", None)
    return bool(getattr(retrain, "on_drift", True)), int(getattr(retrain, "min_new_rows", 1000))


def _retrain_decision(
    ctx: PipelineContext, model: str, spec: ModelSpec, document: dict[str, Any], clock: Callable[[], float]
) -> tuple[list[str], str, int]:
    """The retrain policy: why to retrain (drift, schedule, new rows; none: no retrain), what happens, new rows."""
    on_drift, min_new_rows = _policy(spec)
    new_rows, latest = _new_rows_since_last_training(ctx, model, windowed=spec.training.window is not None)
    reasons = []
    if on_drift and document["verdict"] == DRIFT:
        reasons.append(f"drift in {', '.join(document.get('drifted_features', [])) or 'the data'}")
    max_age = spec.retrain.schedule_seconds()
    not_due = ""
    if max_age is not None and latest:
        age = clock() - ctx.registry.get(model, latest).created_at
        if age >= max_age:
            reasons.append(f"v{latest} was trained {age / 86400:.1f} days ago (schedule {spec.retrain.schedule})")
        else:
            not_due = f", v{latest} trained {age / 86400:.1f} days ago (schedule {spec.retrain.schedule})"
    if new_rows >= min_new_rows:
        reasons.append(f"{new_rows} new rows since v{latest} was trained (policy: at least {min_new_rows})")
    if reasons:
        action = "retraining: " + "; ".join(reasons)
    elif document["verdict"] != DRIFT:
        action = f"recorded; no retrain ({new_rows} new rows < {min_new_rows}, no drift{not_due})"
    else:
        action = (
            f"recorded; drift found but the policy does not retrain on drift ({new_rows} new rows < "
            f"{min_new_rows}{not_due})"
        )
    return reasons, action, new_rows


def _current_rows(ctx: PipelineContext, dataset: DatasetRecord, spec: ModelSpec) -> sampling.Sample:
    """The accepted drop's feature columns, in bounded memory: downloaded to local disk (the object
    is never held whole in memory), streamed, and sampled beyond ``conveyor.drift.sample.MAX_ROWS``."""
    filename = PurePosixPath(dataset["key"]).name
    with tempfile.TemporaryDirectory(prefix="conveyor-drift-") as folder:
        path = Path(folder) / filename
        ctx.store.download(dataset["bucket"], dataset["key"], path, dataset.get("version_id"))
        return sampling.read_sample(path, filename, spec.features, max_rows=sampling.MAX_ROWS)


def check_drift(
    event: StageEvent[DriftInput], ctx: PipelineContext, *, clock: Callable[[], float] = time.time
) -> DriftResult:
    """Drift of the accepted drop against the champion's profile, and whether the policy retrains.

    ``clock`` (seconds since the epoch) dates the schedule check; tests pass a fixed one.
    """
    validation: ValidationResult = event.require("validation")
    model = str(validation["model"])
    dataset = validation["dataset"]
    spec = load_spec(ctx.store.get(ctx.settings.artifact_bucket, layout.spec_key(model)))
    champion = ctx.registry.champion(model)
    if champion is None:
        return {
            "model": model,
            "verdict": "no_reference",
            "retrain": True,
            "reasons": ["no model is serving yet"],
            "summary": f"{model}: no model is serving yet; training the first one",
            "drifted_features": [],
            "champion_version": None,
            "alert": False,
        }
    sample = _current_rows(ctx, dataset, spec)
    frame = sample.frame
    profile = Profile.from_dict(
        json.loads(
            ctx.store.get(ctx.settings.artifact_bucket, layout.version_key(model, champion.version, layout.PROFILE))
        )
    )
    report = drift_report(profile, frame, spec)
    document = report.to_dict()
    if sample.sampled:  # the tests ran on a uniform sample of the drop's rows (conveyor.drift.sample)
        document = {**document, "rows_in_drop": sample.rows, "sampled": True}
    report_key = layout.drift_report_key(dataset["key"])
    ctx.put_json(dataset["bucket"], report_key, {**document, "reference_version": champion.version})
    ctx.metrics.publish(ctx.settings.metrics_namespace, report.metrics(model))
    if document["verdict"] == DRIFT:
        ctx.emit(
            RegistryEvent(
                name="DriftDetected",
                model=model,
                model_version=champion.version,
                correlation_id=event.execution_id,
                details={"features": document.get("drifted_features", []), "report_key": report_key},
            )
        )
    reasons, action, new_rows = _retrain_decision(ctx, model, spec, document, clock)
    drifted = document["verdict"] == DRIFT
    alert = drifted and DriftAlerts(ctx.table, clock).should_alert(
        model, event.execution_id, window=spec.retrain.batch_window_seconds
    )
    return {
        "model": model,
        "verdict": document["verdict"],
        "retrain": bool(reasons),
        "reasons": reasons,
        "summary": f"{model}: {document.get('summary', document['verdict'])}; {action}",
        "drifted_features": document.get("drifted_features", []),
        "report_key": report_key,
        "new_rows": new_rows,
        "champion_version": champion.version,
        # One "Alert drift" per burst: later drifted drops of the same burst are recorded, not alerted.
        "alert": alert,
    }
