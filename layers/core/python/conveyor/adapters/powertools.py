"""The ``MetricsSink`` port over Powertools Metrics: CloudWatch embedded metric format (EMF) lines in
the function's log, no API call on the request path."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

# Units of the prediction API's metrics; anything else is unitless.
UNITS: dict[str, MetricUnit] = {
    "Latency": MetricUnit.Milliseconds,
    "Rows": MetricUnit.Count,
    "Errors": MetricUnit.Count,
    "InvalidRequests": MetricUnit.Count,
    "CaptureErrors": MetricUnit.Count,
}


class PowertoolsMetrics:
    """Datapoints go into the handler's ``Metrics`` (flushed once per invocation by
    ``@metrics.log_metrics``) while they share its dimension set; datapoints with other dimensions
    (the shadow version's) are written at once as their own EMF document, since one document has
    one dimension set. Create the handler's ``Metrics`` with ``service=""`` to keep Powertools from
    adding a ``service`` dimension: the dimensions are exactly the ones published."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def publish(self, namespace: str, datapoints: list[tuple[str, dict[str, str], float]]) -> None:
        groups: dict[tuple[tuple[str, str], ...], list[tuple[str, float]]] = {}
        for name, dimensions, value in datapoints:
            groups.setdefault(tuple(sorted(dimensions.items())), []).append((name, float(value)))
        for key, points in groups.items():
            dimensions = dict(key)
            if self._fits_current_set(dimensions):
                for name, dimension in dimensions.items():
                    if name not in self._metrics.dimension_set:
                        self._metrics.add_dimension(name, dimension)
                for name, value in points:
                    self._metrics.add_metric(name=name, unit=UNITS.get(name, MetricUnit.NoUnit), value=value)
            else:
                document = AmazonCloudWatchEMFProvider(namespace=namespace, service="")
                for name, dimension in dimensions.items():
                    document.add_dimension(name, dimension)
                for name, value in points:
                    document.add_metric(name=name, unit=UNITS.get(name, MetricUnit.NoUnit), value=value)
                document.flush_metrics()

    def _fits_current_set(self, dimensions: dict[str, str]) -> bool:
        current: dict[str, Any] = {k: v for k, v in self._metrics.dimension_set.items() if k != "service"}
        return not current or current == dimensions
