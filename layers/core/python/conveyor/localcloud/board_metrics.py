"""The local board's metric series, read from the local cloud's CloudWatch (moto's metric store).

What the functions publish lands there: PutMetricData (the live monitor) and the predict function's
EMF lines (turned into metric data by the local cloud). moto's GetMetricData fails on percentile
statistics and scans the whole store once per query, so the board reads the raw datapoints once,
indexed by metric and dimensions, and computes each period's statistic itself with CloudWatch's
definitions (``conveyor.localcloud.alarm_eval.statistic``, the alarm evaluator's: percentiles by
nearest rank on the raw samples). For Sum, Average, SampleCount, Minimum
and Maximum the values equal GetMetricData's (tests/unit/test_board_metrics.py checks it).
"""

from __future__ import annotations

import threading
from typing import Any

from conveyor.board.panels import NAMESPACE, Panel
from conveyor.board.sources import Points
from conveyor.localcloud.alarm_eval import epoch, statistic  # CloudWatch's statistics: one copy, the alarms' too

INDEX_PERIOD = 3600
SeriesKey = tuple[str, str, str]  # (metric, model, version or "" for the {model} dimension set)


class LocalMetricReader:
    """``conveyor.board.sources.MetricReader`` over moto's CloudWatch store.

    The store only grows, so it is indexed incrementally: each series' samples by the hour they fall in
    (the board's period), kept raw so any statistic (percentiles too) is exact. ``refresh`` runs on
    every read and may run in the background, so a read seldom indexes much.
    """

    def __init__(self, backend: Any) -> None:
        self._backend = backend
        self._seen = 0
        self._series: dict[SeriesKey, dict[float, list[float]]] = {}
        # Statistics of (series, hour, stat) already computed; dropped when that hour gets a sample.
        self._computed: dict[tuple[SeriesKey, float], dict[str, float]] = {}
        self._lock = threading.Lock()

    def refresh(self) -> None:
        with self._lock:
            data = self._backend.metric_data
            end = len(data)
            series = self._series
            for datum in data[self._seen : end]:
                value = getattr(datum, "value", None)
                if value is None or datum.namespace != NAMESPACE:
                    continue
                dims = {d.name: d.value for d in datum.dimensions}
                if "model" not in dims or len(dims) > 2 or (len(dims) == 2 and "version" not in dims):
                    continue
                hour = epoch(datum.timestamp) // INDEX_PERIOD * INDEX_PERIOD
                key = (datum.name, dims["model"], dims.get("version", ""))
                series.setdefault(key, {}).setdefault(hour, []).append(float(value))
                self._computed.pop((key, hour), None)
            self._seen = end

    def _hourly_points(self, key: SeriesKey, start: float, end: float, stat: str) -> Points:
        points = []
        for hour, values in sorted(self._series[key].items()):
            if start <= hour < end:
                known = self._computed.setdefault((key, hour), {})
                if stat not in known:
                    known[stat] = statistic(values, stat)
                points.append((hour, known[stat]))
        return points

    @staticmethod
    def _merged(
        hourly: dict[float, list[float]], start: float, end: float, period: int
    ) -> list[tuple[float, list[float]]]:
        """Periods of whole hours (an hour's samples all fall in one period), computed afresh."""
        merged: dict[float, list[float]] = {}
        for t, values in hourly.items():
            if start <= t < end:
                merged.setdefault(t // period * period, []).extend(values)
        return sorted(merged.items())

    def read(
        self, panels: tuple[Panel, ...], start: float, end: float, period: int
    ) -> dict[str, dict[str, dict[str, Points]]]:
        if period % INDEX_PERIOD:
            raise ValueError(f"the local board reads periods of whole hours, not {period} s")
        self.refresh()
        result: dict[str, dict[str, dict[str, Points]]] = {}
        with self._lock:
            for panel in panels:
                lines = result.setdefault(panel.key, {})
                for key, hourly in self._series.items():
                    metric, model, version = key
                    if metric != panel.metric or bool(version) != panel.by_version:
                        continue
                    if period == INDEX_PERIOD:
                        points = self._hourly_points(key, start, end, panel.stat)
                    else:
                        merged = self._merged(hourly, start, end, period)
                        points = [(t, statistic(values, panel.stat)) for t, values in merged]
                    if points:
                        lines.setdefault(model, {})[version] = points
        return result
