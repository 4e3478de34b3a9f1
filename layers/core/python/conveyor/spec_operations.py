"""The spec's sections about a model in production: ``capture:`` (what the prediction API records),
``monitoring:`` (the live monitor, per-model alarms and actions on alarm) and ``serving:`` (the breaker)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from conveyor.monitoring.metrics import SIGNALS  # noqa: F401  (re-exported)
from conveyor.spec_base import RATE_PATTERN as _RATE
from conveyor.spec_base import Strict as _Strict
from conveyor.spec_base import rate_seconds


class CaptureSettings(_Strict):
    """What the prediction API records of each request (``docs/capture.md``)."""

    # Share of requests captured, decided by a stable hash of the request id; everything is
    # captured while a challenger or a shadow is on trial, whatever this says.
    sample_rate: Annotated[float, Field(ge=0.0, le=1.0)] = 1.0
    # Columns written as "***" in captured inputs, beside the identifiers (always masked).
    pii: list[str] = Field(default_factory=list)


Signal = Literal[
    "latency", "errors", "drift", "domain_classifier", "score_shift", "live_metric", "capture_errors", "breaker"
]
AlarmAction = Literal["notify", "rollback", "retrain"]


class MonitoringSettings(_Strict):
    """How a serving model is watched: the live monitor's schedule, the alarms' thresholds, actions on alarm.

    Every per-model alarm is named ``{stack}-{model}-{signal}`` (one per signal in ``SIGNALS``); its
    threshold is read here, and ``on_alarm`` says what happens when it fires (``notify`` when absent).
    """

    # The live monitor runs this often per model; its window is the same period unless set.
    schedule: Annotated[str, Field(pattern=_RATE)] = "rate(1 hour)"
    window_seconds: Annotated[int, Field(ge=60)] | None = None
    # Fewer captured requests than this in a window: the monitor reports them, with no drift verdict.
    min_requests: Annotated[int, Field(ge=1)] = 100
    # Alarm thresholds (the alarm fires when the value is above, or for live_metric below, its threshold).
    max_latency_p99_ms: Annotated[float, Field(gt=0.0)] = 250.0
    max_error_rate: Annotated[float, Field(ge=0.0, le=1.0)] = 0.01
    max_drifted_features: Annotated[int, Field(ge=0)] = 0
    max_domain_classifier_auc: Annotated[float, Field(gt=0.5, le=1.0)] = 0.75
    max_score_shift: Annotated[float, Field(gt=0.0)] = 0.2
    # Live metric (primary metric on labelled traffic) may fall below the holdout metric by this much.
    max_live_degradation: Annotated[float, Field(ge=0.0)] = 0.05
    max_capture_errors: Annotated[int, Field(ge=0)] = 0
    # CloudWatch evaluation of the request-rate alarms (latency, errors, capture_errors, breaker).
    period_seconds: Annotated[int, Field(ge=10)] = 60
    evaluation_periods: Annotated[int, Field(ge=1, le=100)] = 3
    datapoints_to_alarm: Annotated[int, Field(ge=1, le=100)] = 2
    on_alarm: dict[Signal, AlarmAction] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _periods(self) -> MonitoringSettings:
        if self.datapoints_to_alarm > self.evaluation_periods:
            raise ValueError("monitoring.datapoints_to_alarm: cannot exceed evaluation_periods")
        return self

    def schedule_seconds(self) -> int:
        return rate_seconds(self.schedule)

    def window(self) -> int:
        return self.window_seconds or self.schedule_seconds()

    def action(self, signal: str) -> str:
        return str(self.on_alarm.get(signal, "notify"))  # type: ignore[call-overload]


class BreakerSpec(_Strict):
    """The prediction containers' circuit breaker per version (``conveyor.breaker``): open after
    ``failures`` consecutive failures, or above ``error_rate`` of at least ``min_requests`` requests in
    ``window_seconds``; while open the champion answers for the version; after ``cooldown_seconds`` one
    trial request goes through."""

    failures: Annotated[int, Field(ge=1)] = 5
    window_seconds: Annotated[float, Field(gt=0.0)] = 10.0
    cooldown_seconds: Annotated[float, Field(gt=0.0)] = 30.0
    error_rate: Annotated[float, Field(gt=0.0, le=1.0)] = 0.5
    min_requests: Annotated[int, Field(ge=1)] = 10


class ServingSettings(_Strict):
    """How the prediction API treats the versions of this model (carried by the serving contract)."""

    breaker: BreakerSpec = Field(default_factory=BreakerSpec)
