"""The live monitor: what the capture of a window says about each serving version.

``run_monitor(model, ctx, now, window)`` reads the window's capture (``conveyor.monitoring.window``:
served records with status 200, masked inputs left out) and, per version that served in it (the
champion first, then a challenger):

- **drift** of the live inputs against the version's reference profile, with the same code as a
  data drop (``conveyor.drift.drift_report``, domain classifier included); with fewer than
  ``monitoring.min_requests`` requests the verdict is ``insufficient_data`` and nothing is tested;
- **score shift** of the live scores against the holdout's score distribution stored in the same
  profile (``conveyor.monitoring.scores``: debiased PSI; ``null`` for a profile stored before
  score distributions existed);
- **live metrics** over the window's labelled requests (``conveyor.monitoring.labels``): the
  spec's primary metric, plus accuracy for classifiers and MAE for regressors, the business value
  (``value_per_1000``, with the spec's ``value:`` section: ``conveyor.value.value_per_1000``, as on
  the holdout at registration), and the degradation against the version's holdout metric
  (positive is worse).

It publishes ``Live*`` metrics (``conveyor.monitoring.metrics``) with dimensions {model, version}
and, for the champion, {model}; and writes the run's report to the capture bucket
(``{model}/monitor/YYYY/MM/DD/HH/{run}.json``). Each version's document is
``{model, version, window, requests, drift: {verdict, drifted_features, features}, score_shift,
live_metrics: {METRIC: value, labelled_requests: n}}``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from conveyor import layout
from conveyor.jsonsafe import json_safe
from conveyor.monitoring import metrics as names
from conveyor.monitoring.context import MonitorContext
from conveyor.monitoring.labels import read_joined
from conveyor.monitoring.scores import live_shift
from conveyor.monitoring.window import CaptureWindow, VersionWindow, lines, read_window
from conveyor.ports import Datapoint
from conveyor.profile import Profile
from conveyor.spec import ModelSpec, load_spec, spec_hash
from conveyor.value import VALUE_METRIC, value_per_1000

log = logging.getLogger(__name__)


@dataclass
class MonitorRun:
    model: str
    run: str
    window: dict[str, Any]
    documents: list[dict[str, Any]]  # one per version, the champion's first
    report_key: str | None = None

    def primary(self) -> dict[str, Any] | None:
        return self.documents[0] if self.documents else None

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "run": self.run, "window": self.window, "versions": self.documents}


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).isoformat(timespec="seconds")


def _version_spec(ctx: MonitorContext, model: str, version: int, current: ModelSpec) -> ModelSpec:
    """The spec the version was trained with (stored beside it), else the model's current one."""
    try:
        return load_spec(
            ctx.store.get(ctx.settings.artifact_bucket, layout.version_key(model, version, layout.SPEC_FILE))
        )
    except Exception:  # KeyError in memory, ClientError on S3 (the adapter does not map a missing key)
        log.info("no stored spec for the version; using the current one", extra={"model": model, "version": version})
        return current


def _profile(ctx: MonitorContext, model: str, version: int) -> Profile | None:
    try:
        data = ctx.store.get(ctx.settings.artifact_bucket, layout.version_key(model, version, layout.PROFILE))
    except Exception:  # KeyError in memory, ClientError on S3: no profile, nothing to compare with
        return None
    return Profile.from_json(data)


def live_drift(profile: Profile | None, sample: VersionWindow, spec: ModelSpec, min_requests: int) -> dict[str, Any]:
    """The drift part of a version's document (module docstring)."""
    import pandas as pd

    from conveyor.drift import drift_report

    masked = sorted((set(spec.capture.pii) & set(spec.features)) | sample.masked)
    base: dict[str, Any] = {"masked_features": masked, "rows": sample.rows, "domain_classifier_auc": None}
    if profile is None:
        return {**base, "verdict": "no_reference", "drifted_features": [], "features": []}
    if sample.requests < min_requests or sample.rows == 0:
        summary = f"{sample.requests} requests < monitoring.min_requests {min_requests}: not tested"
        return {**base, "verdict": "insufficient_data", "drifted_features": [], "features": [], "summary": summary}
    kept = {name: feature for name, feature in spec.features.items() if name not in masked}
    if not kept:
        return {
            **base,
            "verdict": "not_checked",
            "drifted_features": [],
            "features": [],
            "summary": "every feature masked",
        }
    reduced = spec.model_copy(update={"features": kept})
    warnings = []
    if profile.spec_hash and profile.spec_hash != spec_hash(spec):
        warnings.append("the profile was built with a different spec (spec hash differs)")
    frame = pd.DataFrame({name: sample.columns[name] for name in kept}, dtype=object)
    report = drift_report(dataclasses.replace(profile, spec_hash=""), frame, reduced)
    document = report.to_dict()
    return {
        **base,
        "verdict": document["verdict"],
        "drifted_features": document["drifted_features"],
        "features": document["features"],
        "domain_classifier_auc": document["domain_classifier"].get("auc"),
        "summary": document["summary"],
        "warnings": [*warnings, *document["warnings"]],
    }


def live_metrics(rows: list[dict[str, Any]], spec: ModelSpec, holdout: float | None) -> dict[str, Any]:
    """Metrics over joined labels (``conveyor.monitoring.labels``) of one version (module docstring)."""
    import numpy as np

    from conveyor.evaluation import metrics_from_arrays

    primary = spec.primary_metric
    second = "accuracy" if spec.task == "classification" else "mae"
    document: dict[str, Any] = {
        primary: None,
        second: None,
        VALUE_METRIC: None,
        "labelled_requests": 0,
        "labelled_rows": 0,
    }
    classes: list[str] = []
    if spec.task == "classification":
        classes = sorted({str(k) for r in rows if isinstance(r.get("probabilities"), dict) for k in r["probabilities"]})
        rows = [r for r in rows if str(r["label"]) in classes and isinstance(r.get("probabilities"), dict)]
    if rows:
        y_true = np.asarray([r["label"] if spec.task == "regression" else str(r["label"]) for r in rows])
        if spec.task == "classification":
            predicted = np.asarray([str(r["prediction"]) for r in rows])
            proba = np.asarray([[float(r["probabilities"].get(c, 0.0)) for c in classes] for r in rows])
            scores = metrics_from_arrays(spec.task, y_true, predicted, proba, classes)
        else:
            y_true = y_true.astype(np.float64)
            predicted = np.asarray([float(r["prediction"]) for r in rows], dtype=np.float64)
            scores = metrics_from_arrays(spec.task, y_true, predicted, None, None)
        found: dict[str, float | None] = {**scores, VALUE_METRIC: _value(spec, y_true, predicted, classes)}
        for name in (primary, second, VALUE_METRIC):
            value = found.get(name)
            document[name] = None if value is None or not math.isfinite(value) else round(float(value), 6)
        document["labelled_requests"] = len({r["request_id"] for r in rows})
        document["labelled_rows"] = len(rows)
    live = document[primary]
    document["holdout"] = holdout
    document["degradation"] = (
        None
        if live is None or holdout is None
        else round((holdout - live) if spec.metric_higher_is_better() else (live - holdout), 6)
    )
    return document


def _value(spec: ModelSpec, y_true: Any, y_pred: Any, classes: list[str]) -> float | None:
    """Value per 1,000 predictions of the labelled rows (``conveyor.value``); None without a ``value:``
    section, or for a classifier of more than two classes (outcome values are defined for binary ones)."""
    if spec.value is None:
        return None
    try:
        return value_per_1000(spec.task, y_true, y_pred, spec.value, classes or None)
    except ValueError:
        return None


def _datapoints(document: dict[str, Any], spec: ModelSpec, *, champion: bool) -> list[Datapoint]:
    model, version = document["model"], str(document["version"])
    dimension_sets = [{"model": model, "version": version}] + ([{"model": model}] if champion else [])
    drift, metrics, shift = document["drift"], document["live_metrics"], document["score_shift"]
    values: list[tuple[str, Any]] = [(names.LIVE_REQUESTS, document["requests"])]
    if drift["verdict"] in {"drift", "no_drift"}:
        values.append((names.LIVE_DRIFTED_FEATURES, len(drift["drifted_features"])))
        values.append((names.LIVE_DOMAIN_CLASSIFIER_AUC, drift["domain_classifier_auc"]))
    values.append((names.LIVE_SCORE_SHIFT, shift["shift"] if shift else None))
    values.append((names.LIVE_LABELLED_REQUESTS, metrics["labelled_requests"]))
    values.append((names.LIVE_METRIC, metrics[spec.primary_metric]))
    values.append((names.LIVE_METRIC_DEGRADATION, metrics["degradation"]))
    second = names.LIVE_ACCURACY if spec.task == "classification" else names.LIVE_MAE
    values.append((second, metrics["accuracy" if spec.task == "classification" else "mae"]))
    values.append((names.LIVE_VALUE_PER_1000, metrics.get(VALUE_METRIC)))
    return [(name, dims, float(value)) for name, value in values if value is not None for dims in dimension_sets]


def _serving_versions(ctx: MonitorContext, model: str, window: CaptureWindow) -> list[int]:
    """The champion, a challenger, then any other version that served in the window."""
    routing = ctx.registry.routing(model)
    ordered: list[int] = []
    for ref in (routing.champion, routing.challenger) if routing else ():
        if ref and int(ref["version"]) not in ordered:
            ordered.append(int(ref["version"]))
    return ordered + sorted(v for v in window.versions if v not in ordered)


def run_monitor(model: str, ctx: MonitorContext, now: float, window: int | None = None) -> MonitorRun:
    """Monitor ``model`` over [now - window, now] (``monitoring.window()`` when not given); see the module docstring."""
    spec = ctx.spec(model)
    seconds = int(window or spec.monitoring.window())
    start = now - seconds
    bucket = ctx.settings.capture_bucket
    captured = read_window(lines(ctx.store, bucket, model, start, now), model, start, now, list(spec.features))
    labelled = read_joined(ctx.store, bucket, model, start, now)
    span = {"start": _iso(start), "end": _iso(now), "seconds": seconds}
    documents = []
    datapoints: list[Datapoint] = []
    versions = _serving_versions(ctx, model, captured)
    for index, version in enumerate(versions):
        version_spec = _version_spec(ctx, model, version, spec)
        sample = captured.versions.get(version) or VersionWindow(version, columns={n: [] for n in spec.features})
        profile = _profile(ctx, model, version)
        holdout = ctx.registry.get(model, version).metrics.get(version_spec.primary_metric)
        shift = live_shift(profile.scores if profile else None, sample.scores)
        document = {
            "model": model,
            "version": version,
            "window": span,
            "requests": sample.requests,
            "drift": live_drift(profile, sample, version_spec, spec.monitoring.min_requests),
            "score_shift": shift.to_dict() if shift else None,
            "live_metrics": live_metrics(
                [r for r in labelled if str(r.get("model_version")) == str(version)],
                version_spec,
                float(holdout) if isinstance(holdout, int | float) else None,
            ),
        }
        documents.append(json_safe(document))
        datapoints += _datapoints(document, version_spec, champion=index == 0)
    run = MonitorRun(model, datetime.fromtimestamp(now, tz=UTC).strftime("%Y%m%dT%H%M%SZ"), span, documents)
    if datapoints:
        ctx.metrics.publish(ctx.settings.metrics_namespace, datapoints)
    run.report_key = layout.monitor_report_key(model, now, run.run)
    ctx.store.put(bucket, run.report_key, json.dumps(run.to_dict(), indent=2).encode(), "application/json")
    log.info("monitored", extra={"model": model, "versions": versions, "report_key": run.report_key})
    return run
