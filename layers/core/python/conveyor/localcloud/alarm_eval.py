"""CloudWatch's metric-alarm semantics, as pure functions (the local cloud's alarm evaluator uses them).

- **Periods** are aligned to the epoch: period k covers ``[k * P, (k + 1) * P)``. An evaluation at time
  ``now`` looks at the ``EvaluationPeriods`` most recent periods, the one in progress included (as
  CloudWatch does: an alarm can fire before its period ends).
- **Statistics**: ``Sum``, ``Average``, ``Minimum``, ``Maximum``, ``SampleCount`` and percentiles ``pNN``
  (``p99``, ``p99.9``) by nearest rank, without interpolation: the value at rank ``ceil(NN / 100 * n)``
  of the sorted samples.
- **M out of N**: ALARM when at least ``DatapointsToAlarm`` (M) of the N datapoints breach.
- **Missing data** (a period without samples): ``notBreaching`` counts it as within the threshold,
  ``breaching`` as beyond it; ``missing`` and ``ignore`` leave it out. When every datapoint is missing,
  ``missing`` goes to INSUFFICIENT_DATA and ``ignore`` keeps the current state.
  (Simplification: CloudWatch also looks back beyond N periods to fill gaps for ``missing`` and
  ``ignore``; here the evaluation range is exactly N periods.)
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

OK, ALARM, INSUFFICIENT = "OK", "ALARM", "INSUFFICIENT_DATA"
_PERCENTILE = re.compile(r"^p(\d{1,2}(?:\.\d+)?|100)$")
_COMPARISONS = {
    "GreaterThanThreshold": (lambda v, t: v > t, "greater than"),
    "GreaterThanOrEqualToThreshold": (lambda v, t: v >= t, "greater than or equal to"),
    "LessThanThreshold": (lambda v, t: v < t, "less than"),
    "LessThanOrEqualToThreshold": (lambda v, t: v <= t, "less than or equal to"),
}


class UnsupportedAlarm(ValueError):
    """An alarm the local evaluator cannot evaluate (metric math, anomaly bands, unknown statistics)."""


def statistic(values: list[float], stat: str) -> float:
    """One period's statistic of its samples (``values`` is not empty)."""
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
        raise UnsupportedAlarm(f"statistic {stat!r}")
    ordered = sorted(values)
    rank = max(1, math.ceil(round(float(match.group(1)) * len(ordered) / 100.0, 9)))  # 99.9% of 1000 is 999
    return ordered[min(rank, len(ordered)) - 1]


def epoch(value: Any) -> float:
    """Epoch seconds of a CloudWatch timestamp as moto keeps it (a datetime, naive meaning UTC), a number or ISO text."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    if isinstance(value, int | float):
        return float(value)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


@dataclass(frozen=True)
class AlarmConfig:
    statistic: str
    threshold: float
    comparison: str
    period: int
    evaluation_periods: int
    datapoints_to_alarm: int
    treat_missing_data: str = "missing"

    @classmethod
    def from_alarm(cls, alarm: Mapping[str, Any]) -> AlarmConfig:
        """From DescribeAlarms' ``MetricAlarms`` entry."""
        if alarm.get("Metrics") or alarm.get("ComparisonOperator") not in _COMPARISONS:
            raise UnsupportedAlarm(f"{alarm.get('AlarmName')}: metric math or anomaly detection")
        stat = alarm.get("ExtendedStatistic") or alarm.get("Statistic")
        if not stat:
            raise UnsupportedAlarm(f"{alarm.get('AlarmName')}: no statistic")
        evaluation_periods = int(alarm["EvaluationPeriods"])
        return cls(
            statistic=str(stat),
            threshold=float(alarm["Threshold"]),
            comparison=str(alarm["ComparisonOperator"]),
            period=int(alarm["Period"]),
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=int(alarm.get("DatapointsToAlarm") or evaluation_periods),
            treat_missing_data=str(alarm.get("TreatMissingData") or "missing"),
        )

    def breaches(self, value: float) -> bool:
        return bool(_COMPARISONS[self.comparison][0](value, self.threshold))


@dataclass(frozen=True)
class Datapoint:
    start: float  # the period's start (epoch seconds)
    value: float | None  # None: no sample in the period


def datapoints(samples: Iterable[tuple[float, float]], config: AlarmConfig, now: float) -> list[Datapoint]:
    """The evaluation range: one datapoint per period, oldest first, the period holding ``now`` last."""
    period = config.period
    last = math.floor(now / period) * period
    first = last - (config.evaluation_periods - 1) * period
    buckets: dict[float, list[float]] = {}
    for timestamp, value in samples:
        if first <= timestamp < last + period:
            buckets.setdefault(math.floor(timestamp / period) * period, []).append(value)
    starts = [first + i * period for i in range(config.evaluation_periods)]
    return [Datapoint(s, statistic(buckets[s], config.statistic) if s in buckets else None) for s in starts]


@dataclass(frozen=True)
class Evaluation:
    state: str
    reason: str
    reason_data: dict[str, Any]


def _when(start: float) -> str:
    return datetime.fromtimestamp(start, UTC).strftime("%d/%m/%y %H:%M:%S")


def evaluate(config: AlarmConfig, points: list[Datapoint], current: str, now: float) -> Evaluation:
    """The alarm's state after looking at ``points`` (see the module docstring for the rules)."""
    treat = config.treat_missing_data
    present = [p for p in points if p.value is not None]
    counted: list[bool] = []
    for point in points:
        if point.value is not None:
            counted.append(config.breaches(point.value))
        elif treat == "breaching":
            counted.append(True)
        elif treat == "notBreaching":
            counted.append(False)
    data = {
        "version": "1.0",
        "queryDate": datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds"),
        "statistic": config.statistic,
        "period": config.period,
        "recentDatapoints": [p.value for p in reversed(present)],
        "threshold": config.threshold,
        "evaluatedDatapoints": [
            {"timestamp": datetime.fromtimestamp(p.start, UTC).isoformat(), "value": p.value} for p in reversed(present)
        ],
    }
    if not counted:  # every datapoint missing, and missing data is not counted
        if treat == "ignore":
            return Evaluation(current, "no datapoints: the current state is kept (treat missing data: ignore)", data)
        return Evaluation(INSUFFICIENT, "Insufficient Data: no datapoints in the evaluation range", data)
    breaching = sum(counted)
    words = _COMPARISONS[config.comparison][1]
    shown = ", ".join(f"{p.value:g} ({_when(p.start)})" for p in reversed(present)) or "none present"
    state = ALARM if breaching >= config.datapoints_to_alarm else OK
    verb = "were" if breaching != 1 else "was"
    reason = (
        f"Threshold Crossed: {breaching} out of the last {len(counted)} datapoints [{shown}] {verb} {words} "
        f"the threshold ({config.threshold:g}) (minimum {config.datapoints_to_alarm} datapoint"
        f"{'s' if config.datapoints_to_alarm != 1 else ''} for OK -> ALARM transition)."
    )
    return Evaluation(state, reason, data)
