"""The ``MetricsSink`` port as CloudWatch embedded metric format (EMF) lines in the function's log: no
API call, and no library (the predict path's cold start). One document per dimension set and call,
written as one line, so the after-response thread and the handler never interleave."""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO

# Units of the prediction API's metrics; anything else is unitless.
UNITS: dict[str, str] = {
    "Latency": "Milliseconds",
    "Rows": "Count",
    "Errors": "Count",
    "InvalidRequests": "Count",
    "CaptureErrors": "Count",
}


def emf_document(namespace: str, dimensions: dict[str, str], points: list[tuple[str, float]], now_ms: int) -> str:
    """One EMF document: ``points`` (name, value) under one dimension set; a name given twice keeps
    every value (a list, as CloudWatch reads it)."""
    values: dict[str, list[float]] = {}
    for name, value in points:
        values.setdefault(name, []).append(float(value))
    document: dict[str, Any] = {
        "_aws": {
            "Timestamp": now_ms,
            "CloudWatchMetrics": [
                {
                    "Namespace": namespace,
                    "Dimensions": [list(dimensions)],
                    "Metrics": [{"Name": name, "Unit": UNITS.get(name, "None")} for name in values],
                }
            ],
        },
        **dimensions,
        **values,
    }
    return json.dumps(document, separators=(",", ":"))


class EmfMetrics:
    """Datapoints grouped by dimension set, each group one EMF line on ``stream`` (stdout by default,
    looked up per call so a test may capture it)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    def publish(self, namespace: str, datapoints: list[tuple[str, dict[str, str], float]]) -> None:
        groups: dict[tuple[tuple[str, str], ...], list[tuple[str, float]]] = {}
        for name, dimensions, value in datapoints:
            groups.setdefault(tuple(dimensions.items()), []).append((name, value))
        now_ms = int(time.time() * 1000)
        lines = [emf_document(namespace, dict(key), points, now_ms) + "\n" for key, points in groups.items()]
        stream = self._stream or sys.stdout
        stream.write("".join(lines))
        stream.flush()
