"""Every metric name Conveyor publishes (namespace ``Conveyor``): a flat list of constants.

Dimension sets: the prediction API publishes each request's metrics with ``{model, version}``, and the
ones the per-model alarms watch (Latency, Errors, CaptureErrors, BreakerOpen) with ``{model}`` too. The
live monitor publishes with ``{model}`` and ``{model, version}``.
"""

from __future__ import annotations

NAMESPACE = "Conveyor"
MODEL = "model"
VERSION = "version"

# The prediction API (EMF lines through Powertools).
LATENCY = "Latency"  # ms per scoring
ERRORS = "Errors"  # 1 for a 5xx, else 0: the average is the 5xx rate
INVALID_REQUESTS = "InvalidRequests"
ROWS = "Rows"
MEAN_SCORE = "MeanScore"
MEAN_PREDICTION = "MeanPrediction"
CAPTURE_ERRORS = "CaptureErrors"
BREAKER_OPEN = "BreakerOpen"

# The live monitor (PutMetricData).
LIVE_REQUESTS = "LiveRequests"
LIVE_DRIFTED_FEATURES = "LiveDriftedFeatures"
LIVE_DOMAIN_CLASSIFIER_AUC = "LiveDomainClassifierAUC"
LIVE_SCORE_SHIFT = "LiveScoreShift"
LIVE_METRIC = "LiveMetric"
LIVE_METRIC_DEGRADATION = "LiveMetricDegradation"
LIVE_LABELLED_REQUESTS = "LiveLabelledRequests"
LIVE_ACCURACY = "LiveAccuracy"
LIVE_MAE = "LiveMAE"
LIVE_VALUE_PER_1000 = "LiveValuePer1000"  # conveyor.value.value_per_1000 over the labelled requests

# The signals a model is watched on: one per-model alarm each (conveyor.monitoring.alarms), thresholds and
# actions in the spec's ``monitoring:`` section (conveyor.spec_operations).
SIGNALS: tuple[str, ...] = (
    "latency",
    "errors",
    "drift",
    "domain_classifier",
    "score_shift",
    "live_metric",
    "capture_errors",
    "breaker",
)
