"""Per-model alarms: one CloudWatch metric alarm per signal in ``conveyor.monitoring.metrics.SIGNALS``, named
``{stack}-{model}-{signal}``, created or updated by the pipeline when a version starts serving all
traffic, and deleted when the model no longer serves.

Why alarms made by the pipeline and not one CloudWatch Metrics Insights alarm over every model: Metrics
Insights has no percentiles (the latency alarm is a p99), and each model's thresholds and actions come
from its own spec. The thresholds arrive as the plain dictionary of the spec's ``monitoring:`` section
(``MonitoringSettings.model_dump()``, carried in the deployment plan), so this module needs neither
pydantic nor yaml: it runs in the zip functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from conveyor.monitoring import metrics as m
from conveyor.monitoring.metrics import SIGNALS
from conveyor.ports import AlarmDefinition, Alarms

# conveyor.spec.MonitoringSettings' defaults (a unit test keeps the two equal).
DEFAULTS: dict[str, Any] = {
    "schedule": "rate(1 hour)",
    "max_latency_p99_ms": 250.0,
    "max_error_rate": 0.01,
    "max_drifted_features": 0,
    "max_domain_classifier_auc": 0.75,
    "max_score_shift": 0.2,
    "max_live_degradation": 0.05,
    "max_capture_errors": 0,
    "period_seconds": 60,
    "evaluation_periods": 3,
    "datapoints_to_alarm": 2,
}
# CloudWatch: a period is 10, 30 or a multiple of 60 seconds, at most a day for these alarms.
MAX_PERIOD = 86400
TAG_STACK = "conveyor:stack"
TAG_MODEL = "conveyor:model"
TAG_SIGNAL = "conveyor:signal"


@dataclass(frozen=True)
class Signal:
    """How one signal is watched: metric, statistic, the settings key of its threshold, and whether it is
    a request metric (evaluated every ``period_seconds``, missing data is quiet traffic) or a live-monitor
    metric (one value per monitor run: one period per run, missing data keeps the state)."""

    metric: str
    statistic: str
    threshold_key: str | None
    request: bool
    what: str


WATCHED: dict[str, Signal] = {
    "latency": Signal(m.LATENCY, "p99", "max_latency_p99_ms", True, "p99 latency (ms)"),
    "errors": Signal(m.ERRORS, "Average", "max_error_rate", True, "5xx rate"),
    "capture_errors": Signal(m.CAPTURE_ERRORS, "Sum", "max_capture_errors", True, "capture errors"),
    "breaker": Signal(m.BREAKER_OPEN, "Sum", None, True, "circuit breaker openings"),
    "drift": Signal(m.LIVE_DRIFTED_FEATURES, "Maximum", "max_drifted_features", False, "drifted features (live)"),
    "domain_classifier": Signal(
        m.LIVE_DOMAIN_CLASSIFIER_AUC, "Maximum", "max_domain_classifier_auc", False, "domain-classifier AUC (live)"
    ),
    "score_shift": Signal(m.LIVE_SCORE_SHIFT, "Maximum", "max_score_shift", False, "score distribution shift (live)"),
    "live_metric": Signal(
        m.LIVE_METRIC_DEGRADATION,
        "Average",
        "max_live_degradation",
        False,
        "live metric below the holdout metric (degradation)",
    ),
}


def alarm_name(stack: str, model: str, signal: str) -> str:
    return f"{stack}-{model}-{signal}"


def parse_alarm_name(stack: str, name: str) -> tuple[str, str] | None:
    """``{stack}-{model}-{signal}`` -> (model, signal); None for any other alarm (a system alarm)."""
    prefix = f"{stack}-"
    if not name.startswith(prefix):
        return None
    model, _, signal = name[len(prefix) :].rpartition("-")
    if not model or signal not in SIGNALS:
        return None
    return model, signal


def _period(seconds: int) -> int:
    if seconds <= 10:
        return 10
    if seconds <= 30:
        return 30
    return min(MAX_PERIOD, max(60, (seconds // 60) * 60))


def _schedule_seconds(schedule: str) -> int:
    amount, unit = schedule.strip()[5:-1].split()
    return int(amount) * {"minute": 60, "hour": 3600, "day": 86400, "week": 604800}[unit.rstrip("s")]


def alarm_definitions(
    stack: str, model: str, settings: Mapping[str, Any] | None = None, *, topic_arn: str = ""
) -> list[AlarmDefinition]:
    """Every per-model alarm of ``model``, thresholds from ``settings`` (the spec's ``monitoring:``
    section as a dictionary; defaults for what it leaves out). Each alarm tells ``topic_arn`` when it enters ALARM."""
    values = {**DEFAULTS, **{k: v for k, v in (settings or {}).items() if v is not None}}
    request_period = _period(int(values["period_seconds"]))
    live_period = _period(_schedule_seconds(str(values["schedule"])))
    definitions = []
    for signal in SIGNALS:
        watched = WATCHED[signal]
        threshold = float(values[watched.threshold_key]) if watched.threshold_key else 0.0
        name = alarm_name(stack, model, signal)
        definitions.append(
            AlarmDefinition(
                name=name,
                description=f"{model}: {watched.what} above {threshold:g} (Conveyor {signal} alarm)",
                namespace=m.NAMESPACE,
                metric=watched.metric,
                dimensions={m.MODEL: model},
                statistic=watched.statistic,
                threshold=threshold,
                comparison="GreaterThanThreshold",
                period=request_period if watched.request else live_period,
                evaluation_periods=int(values["evaluation_periods"]) if watched.request else 1,
                datapoints_to_alarm=int(values["datapoints_to_alarm"]) if watched.request else 1,
                # No request in a period is quiet traffic, not a fault; a monitor reports once per run,
                # and the state holds until its next report.
                treat_missing_data="notBreaching" if watched.request else "ignore",
                actions=(topic_arn,) if topic_arn else (),
                tags={TAG_STACK: stack, TAG_MODEL: model, TAG_SIGNAL: signal},
            )
        )
    return definitions


def sync_model_alarms(
    alarms: Alarms,
    *,
    stack: str,
    model: str,
    settings: Mapping[str, Any] | None,
    serving: bool = True,
    topic_arn: str = "",
) -> list[str]:
    """Create or update ``model``'s alarms while it serves; delete them when it no longer does.
    Returns the names put (or deleted)."""
    if not serving:
        names = [alarm_name(stack, model, signal) for signal in SIGNALS]
        alarms.delete(names)
        return names
    definitions = alarm_definitions(stack, model, settings, topic_arn=topic_arn)
    for definition in definitions:
        alarms.put(definition)
    return [d.name for d in definitions]
