"""The local board's metric series, read from the local cloud's CloudWatch (moto's metric store).

What the functions publish lands there: PutMetricData (the live monitor) and the predict function's
EMF lines (turned into metric data by the local cloud). moto's GetMetricData fails on percentile
statistics and scans the whole store once per query, so the board reads the raw datapoints once,
indexed by metric and dimensions, and computes each period's statistic itself with CloudWatch's
definitions (percentiles by nearest rank on the raw samples). For Sum, Average, SampleCount, Minimum
and Maximum the values equal GetMetricData's (tests/unit/test_board_metrics.py checks it).
"""

from __future__ import annotations

import math
import re
import threading
from datetime import UTC, datetime
from typing import Any

from conveyor.board.panels import NAMESPACE, Panel
from conveyor.board.sources import Points

_PERCENTILE = re.compile(r"^p(\d{1,2}(?:\.\d+)?|100)$")
SeriesKey = tuple[str, str, str]  # (metric, model, version or "" for the {model} dimension set)


def statistic(values: list[float], stat: str) -> float:
    """One period's statistic of its samples (not empty), as CloudWatch defines it."""
    if stat == "Sum":
        return math.fsum(values)
    if stat == "Average":
        return math.fsum(values) / len(values)
    if stat == "Minimum":
        return min(values)
    if stat == "Maximum":
        return max(values)
    if stat == "SampleCount":
        return float(len(values))
    match = _PERCENTILE.match(stat)
    if match is None:
        raise ValueError(f"unknown statistic {stat!r}")
    ordered = sorted(values)
    rank = max(1, math.ceil(round(float(match.group(1)) * len(ordered) / 100.0, 9)))
    return ordered[min(rank, len(ordered)) - 1]


def _epoch(value: Any) -> float:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    if isinstance(value, int | float):
        return float(value)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


class LocalMetricReader:
    """``conveyor.board.sources.MetricReader`` over moto's CloudWatch store (read incrementally: it only grows)."""

    def __init__(self, backend: Any) -> None:
        self._backend = backend
        self._seen = 0
        self._series: dict[SeriesKey, list[tuple[float, float]]] = {}
        self._lock = threading.Lock()

    def _refresh(self) -> None:
        data = self._backend.metric_data
        end = len(data)
        for datum in data[self._seen : end]:
            value = getattr(datum, "value", None)
            if value is None or datum.namespace != NAMESPACE:
                continue
            dims = {d.name: d.value for d in datum.dimensions}
            if "model" not in dims or set(dims) - {"model", "version"}:
                continue
            key = (datum.name, dims["model"], dims.get("version", ""))
            self._series.setdefault(key, []).append((_epoch(datum.timestamp), float(value)))
        self._seen = end

    def read(
        self, panels: tuple[Panel, ...], start: float, end: float, period: int
    ) -> dict[str, dict[str, dict[str, Points]]]:
        with self._lock:
            self._refresh()
            series = {key: list(points) for key, points in self._series.items()}
        result: dict[str, dict[str, dict[str, Points]]] = {}
        for panel in panels:
            lines = result.setdefault(panel.key, {})
            for (metric, model, version), points in series.items():
                if metric != panel.metric or bool(version) != panel.by_version:
                    continue
                buckets: dict[float, list[float]] = {}
                for t, v in points:
                    if start <= t < end:
                        buckets.setdefault(t // period * period, []).append(v)
                if buckets:
                    lines.setdefault(model, {})[version] = [
                        (t, statistic(values, panel.stat)) for t, values in sorted(buckets.items())
                    ]
        return result
