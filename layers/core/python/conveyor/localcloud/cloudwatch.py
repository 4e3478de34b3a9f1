"""The local cloud's CloudWatch: metric data from the functions' EMF lines, and alarms that evaluate.

moto stores metric data and alarms but never evaluates an alarm, and Lambda's EMF lines go nowhere
locally. ``LocalCloudWatch``:

1. installs a stdout tee (``conveyor.localcloud.emf``) that turns each EMF line the in-process handlers
   print into metric data in moto's CloudWatch store (so ``aws cloudwatch list-metrics`` shows them too);
   PutMetricData calls (the live monitor's) land in the same store;
2. evaluates every metric alarm moto holds with CloudWatch's semantics (``conveyor.localcloud.alarm_eval``)
   right after metric data arrives and at each period boundary;
3. on a state change: sets the state in moto (``SetAlarmState``), puts the "CloudWatch Alarm State Change"
   event on the default bus (so the stack's rule -> alarm queue -> alarm-action function path runs, as on
   AWS) and publishes CloudWatch's alarm message to the alarm's SNS actions.

Like AWS, a new alarm starts in INSUFFICIENT_DATA and an updated alarm (PutMetricAlarm on an existing
name) keeps its state: moto resets it, so the evaluator restores the state it knew, silently (what it
knew is kept across restarts with a data directory: :meth:`LocalCloudWatch.dump` / ``load``).

Time is the local cloud's clock (``clock``: the schedules' clock, which ``conveyor monitor --advance``
moves forward). Metric data are stamped on it: a datum without a timestamp (the live monitor's
PutMetricData) at the clock's now, an EMF line at its own time plus the clock's lead over the wall
clock; alarms are evaluated at the clock's now, and once more right after each advance, so evaluation
periods pass with the clock (a request alarm that treats missing data as not breaching returns to OK
when advanced past its periods; a live-monitor alarm that ignores missing data keeps its state).
"""

from __future__ import annotations

import json
import logging
import math
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from conveyor.localcloud.alarm_eval import (
    ALARM,
    INSUFFICIENT,
    OK,
    AlarmConfig,
    Evaluation,
    UnsupportedAlarm,
    datapoints,
    epoch,
    evaluate,
)
from conveyor.localcloud.emf import Sample, StdoutTee
from conveyor.localcloud.resolver import ACCOUNT

log = logging.getLogger(__name__)

STATE_CHANGE = "CloudWatch Alarm State Change"
_CREATED = "Unchecked: Initial alarm creation"
_DEBOUNCE_SECONDS = 0.1
MetricKey = tuple[str, str, tuple[tuple[str, str], ...]]


def aws_time(seconds: float) -> str:
    """CloudWatch's timestamp format in alarm events and messages: ``2026-01-02T03:04:05.678+0000``."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


class MetricIndex:
    """moto's metric data, indexed by metric identity (namespace, name, exact dimension set); read
    incrementally (moto's store only grows)."""

    def __init__(self, backend: Any) -> None:
        self._backend = backend
        self._seen = 0
        self._series: dict[MetricKey, list[tuple[float, float]]] = {}
        self._lock = threading.Lock()

    def refresh(self) -> None:
        with self._lock:
            data = self._backend.metric_data
            end = len(data)
            for datum in data[self._seen : end]:
                value = getattr(datum, "value", None)
                if value is None:  # StatisticValues sets: no samples to take percentiles of
                    continue
                key = (datum.namespace, datum.name, tuple(sorted((d.name, d.value) for d in datum.dimensions)))
                self._series.setdefault(key, []).append((epoch(datum.timestamp), float(value)))
            self._seen = end

    def series(self, namespace: str, name: str, dimensions: dict[str, str]) -> list[tuple[float, float]]:
        with self._lock:
            return list(self._series.get((namespace, name, tuple(sorted(dimensions.items()))), []))


class LocalCloudWatch:
    def __init__(
        self,
        *,
        endpoint: str,
        region: str,
        clock: Callable[[], float] = time.time,
        max_wait_seconds: float = 5.0,
    ) -> None:
        from moto.cloudwatch.models import cloudwatch_backends

        self.region = region
        self._clock = clock
        self._max_wait = max_wait_seconds
        self._backend = cloudwatch_backends[ACCOUNT][region]
        self.index = MetricIndex(self._backend)
        self._clients = _Clients(endpoint, region)
        self._known: dict[str, tuple[str, str]] = {}  # alarm -> (state, reason) as last evaluated
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._evaluating = threading.Lock()  # the background loop and an advance evaluate one at a time
        self._thread = threading.Thread(target=self._run, name="local-cloudwatch", daemon=True)
        self._tee: StdoutTee | None = None
        self.evaluations = 0
        self.changes: list[dict[str, Any]] = []

    # lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        put = self._backend.put_metric_data

        def put_and_wake(namespace: str, metric_data: list[dict[str, Any]]) -> None:
            now = datetime.fromtimestamp(self._clock(), UTC).replace(tzinfo=None)  # naive UTC, as moto stamps it
            put(namespace, [d if d.get("Timestamp") else {**d, "Timestamp": now} for d in metric_data])
            self._wake.set()

        self._backend.put_metric_data = put_and_wake  # type: ignore[method-assign]  # PutMetricData and EMF alike
        self._tee = StdoutTee(sys.stdout, self.put_samples)
        sys.stdout = self._tee
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)
        if self._tee is not None and sys.stdout is self._tee:
            sys.stdout = self._tee.stream
        self._backend.__dict__.pop("put_metric_data", None)

    def put_samples(self, samples: list[Sample]) -> None:
        """Metric data from EMF lines, into moto's store (what CloudWatch Logs does with EMF on AWS)."""
        by_namespace: dict[str, list[dict[str, Any]]] = {}
        lead = self._clock() - time.time()  # the local clock's lead (what was advanced), 0 when not advanced
        for s in samples:
            by_namespace.setdefault(s.namespace, []).append(
                {
                    "MetricName": s.name,
                    "Dimensions": [{"Name": k, "Value": v} for k, v in s.dimensions],
                    "Value": s.value,
                    "Unit": s.unit,
                    # Naive UTC, as moto keeps request timestamps: one aware datum breaks its GetMetricData.
                    "Timestamp": datetime.fromtimestamp(s.timestamp + lead, UTC).replace(tzinfo=None),
                }
            )
        for namespace, data in by_namespace.items():
            self._backend.put_metric_data(namespace, data)

    # evaluation ---------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            periods: list[int] = []
            try:
                periods = self.evaluate_all()
            except Exception:
                log.exception("alarm evaluation failed")
            now = self._clock()
            waits = [p - math.fmod(now, p) + 0.05 for p in periods]
            self._wake.wait(timeout=min([self._max_wait, *waits]))
            if self._wake.is_set():
                self._stop.wait(_DEBOUNCE_SECONDS)  # let a burst of metric data land first
            self._wake.clear()

    def evaluate_all(self) -> list[int]:
        """Evaluate every metric alarm once; returns their periods (the loop wakes at their boundaries)."""
        with self._evaluating:
            return self._evaluate_all()

    def _evaluate_all(self) -> list[int]:
        self.index.refresh()
        now = self._clock()
        self.evaluations += 1
        periods: list[int] = []
        paginator = self._clients.cloudwatch.get_paginator("describe_alarms")
        for page in paginator.paginate(AlarmTypes=["MetricAlarm"]):
            for alarm in page.get("MetricAlarms", []):
                try:
                    config = AlarmConfig.from_alarm(alarm)
                except UnsupportedAlarm:
                    continue
                periods.append(config.period)
                self._evaluate_one(alarm, config, now)
        return sorted(set(periods))

    def dump(self) -> list[dict[str, Any]]:
        """The states the evaluator knows (an updated alarm keeps its state through them): records out."""
        with self._evaluating:
            return [{"alarm": name, "state": state, "reason": reason} for name, (state, reason) in self._known.items()]

    def load(self, records: list[dict[str, Any]]) -> None:
        with self._evaluating:
            self._known.update({str(r["alarm"]): (str(r["state"]), str(r["reason"])) for r in records})

    def _evaluate_one(self, alarm: dict[str, Any], config: AlarmConfig, now: float) -> None:
        name = alarm["AlarmName"]
        state, reason = str(alarm["StateValue"]), str(alarm.get("StateReason", ""))
        if reason == _CREATED:  # moto's fresh alarm: new (AWS starts it in INSUFFICIENT_DATA) or updated
            state, reason = self._known.get(name, (INSUFFICIENT, _CREATED))
        dimensions = {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])}
        series = self.index.series(alarm["Namespace"], alarm["MetricName"], dimensions)
        result = evaluate(config, datapoints(series, config, now), state, now)
        if result.state == state:
            if alarm["StateValue"] != state or alarm.get("StateReason") == _CREATED:
                self._set_state(name, state, reason if reason != _CREATED else result.reason, result)
            return
        self._set_state(name, result.state, result.reason, result)
        self._announce(alarm, state, reason, result, now)

    def _set_state(self, name: str, state: str, reason: str, result: Evaluation) -> None:
        self._clients.cloudwatch.set_alarm_state(
            AlarmName=name, StateValue=state, StateReason=reason[:1023], StateReasonData=json.dumps(result.reason_data)
        )
        self._known[name] = (state, reason)

    def _announce(
        self, alarm: dict[str, Any], previous: str, previous_reason: str, result: Evaluation, now: float
    ) -> None:
        """What CloudWatch does on a state change: the EventBridge event, and the state's SNS actions."""
        name = alarm["AlarmName"]
        stat = alarm.get("ExtendedStatistic") or alarm.get("Statistic")
        detail = {
            "alarmName": name,
            "state": {
                "value": result.state,
                "reason": result.reason,
                "reasonData": json.dumps(result.reason_data),
                "timestamp": aws_time(now),
            },
            "previousState": {"value": previous, "reason": previous_reason},
            "configuration": {
                "description": alarm.get("AlarmDescription", ""),
                "metrics": [
                    {
                        "id": "m1",
                        "metricStat": {
                            "metric": {
                                "namespace": alarm["Namespace"],
                                "name": alarm["MetricName"],
                                "dimensions": {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])},
                            },
                            "period": alarm["Period"],
                            "stat": stat,
                        },
                        "returnData": True,
                    }
                ],
            },
        }
        self.changes.append({"alarm": name, "from": previous, "to": result.state, "at": now})
        self._clients.events.put_events(
            Entries=[
                {
                    "Source": "aws.cloudwatch",
                    "DetailType": STATE_CHANGE,
                    "Detail": json.dumps(detail),
                    "Resources": [alarm["AlarmArn"]],
                }
            ]
        )
        actions = {ALARM: "AlarmActions", OK: "OKActions", INSUFFICIENT: "InsufficientDataActions"}[result.state]
        if alarm.get("ActionsEnabled", True):
            for topic in alarm.get(actions, []):
                if ":sns:" in topic:
                    self._clients.sns.publish(
                        TopicArn=topic,
                        Subject=f'{result.state}: "{name}" in {self.region}'[:100],
                        Message=json.dumps(self._message(alarm, previous, result, now)),
                    )

    def _message(self, alarm: dict[str, Any], previous: str, result: Evaluation, now: float) -> dict[str, Any]:
        """CloudWatch's alarm notification (the JSON AWS publishes to an alarm's SNS topics)."""
        trigger: dict[str, Any] = {
            "MetricName": alarm["MetricName"],
            "Namespace": alarm["Namespace"],
            "StatisticType": "ExtendedStatistic" if alarm.get("ExtendedStatistic") else "Statistic",
            "Statistic": alarm.get("ExtendedStatistic") or str(alarm.get("Statistic", "")).upper(),
            "Unit": alarm.get("Unit"),
            "Dimensions": [{"value": d["Value"], "name": d["Name"]} for d in alarm.get("Dimensions", [])],
            "Period": alarm["Period"],
            "EvaluationPeriods": alarm["EvaluationPeriods"],
            "DatapointsToAlarm": alarm.get("DatapointsToAlarm", alarm["EvaluationPeriods"]),
            "ComparisonOperator": alarm["ComparisonOperator"],
            "Threshold": alarm["Threshold"],
            "TreatMissingData": alarm.get("TreatMissingData", "missing"),
            "EvaluateLowSampleCountPercentile": alarm.get("EvaluateLowSampleCountPercentile", ""),
        }
        return {
            "AlarmName": alarm["AlarmName"],
            "AlarmDescription": alarm.get("AlarmDescription"),
            "AWSAccountId": ACCOUNT,
            "AlarmConfigurationUpdatedTimestamp": aws_time(epoch(alarm["AlarmConfigurationUpdatedTimestamp"])),
            "NewStateValue": result.state,
            "NewStateReason": result.reason,
            "StateChangeTime": aws_time(now),
            "Region": self.region,
            "AlarmArn": alarm["AlarmArn"],
            "OldStateValue": previous,
            "OKActions": alarm.get("OKActions", []),
            "AlarmActions": alarm.get("AlarmActions", []),
            "InsufficientDataActions": alarm.get("InsufficientDataActions", []),
            "Trigger": trigger,
        }


class _Clients:
    def __init__(self, endpoint: str, region: str) -> None:
        import boto3

        self.cloudwatch, self.events, self.sns = (
            boto3.client(s, endpoint_url=endpoint, region_name=region) for s in ("cloudwatch", "events", "sns")
        )
