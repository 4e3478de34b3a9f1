"""Metric names of the monitoring work, in namespace ``infra.constants.METRICS_NAMESPACE`` ("Conveyor").

A flat list of constants (two helpers add to it). The live monitor publishes its metrics with the
dimension sets {model} and {model, version}.
"""

from __future__ import annotations

LIVE_REQUESTS = "LiveRequests"
LIVE_DRIFTED_FEATURES = "LiveDriftedFeatures"
LIVE_DOMAIN_CLASSIFIER_AUC = "LiveDomainClassifierAUC"
LIVE_SCORE_SHIFT = "LiveScoreShift"
LIVE_METRIC = "LiveMetric"
LIVE_METRIC_DEGRADATION = "LiveMetricDegradation"
LIVE_LABELLED_REQUESTS = "LiveLabelledRequests"
LIVE_ACCURACY = "LiveAccuracy"
LIVE_MAE = "LiveMAE"
