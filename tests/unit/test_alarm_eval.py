"""The local alarm evaluator against CloudWatch's documented semantics; EMF lines into metric samples."""

from __future__ import annotations

import io
import json
import threading

import pytest

from conveyor.localcloud.alarm_eval import (
    ALARM,
    INSUFFICIENT,
    OK,
    AlarmConfig,
    Datapoint,
    UnsupportedAlarm,
    datapoints,
    evaluate,
    statistic,
)
from conveyor.localcloud.emf import StdoutTee, parse_emf


def _config(**overrides: object) -> AlarmConfig:
    values: dict[str, object] = {
        "statistic": "Maximum",
        "threshold": 10.0,
        "comparison": "GreaterThanThreshold",
        "period": 60,
        "evaluation_periods": 3,
        "datapoints_to_alarm": 2,
        "treat_missing_data": "missing",
    }
    values.update(overrides)
    return AlarmConfig(**values)  # type: ignore[arg-type]


def _points(*values: float | None) -> list[Datapoint]:
    return [Datapoint(60.0 * i, v) for i, v in enumerate(values)]


def _state(config: AlarmConfig, *values: float | None, current: str = OK) -> str:
    return evaluate(config, _points(*values), current, 1000.0).state


def test_statistics() -> None:
    values = [4.0, 1.0, 3.0, 2.0]
    assert statistic(values, "Sum") == 10.0 and statistic(values, "Average") == 2.5
    assert statistic(values, "Minimum") == 1.0 and statistic(values, "Maximum") == 4.0
    assert statistic(values, "SampleCount") == 4.0
    with pytest.raises(UnsupportedAlarm):
        statistic(values, "TM(10%:90%)")


def test_percentiles_are_nearest_rank_without_interpolation() -> None:
    hundred = [float(v) for v in range(1, 101)]
    assert statistic(hundred, "p99") == 99.0 and statistic(hundred, "p50") == 50.0
    assert statistic(hundred, "p100") == 100.0 and statistic(hundred, "p0.5") == 1.0
    # 10 samples: rank ceil(0.99 * 10) = 10 -> the largest value, never an interpolated 9.91
    assert statistic([float(v) for v in range(1, 11)], "p99") == 10.0
    assert statistic([1.0, 2.0, 3.0, 4.0], "p50") == 2.0  # rank ceil(2.0) = 2, not 2.5
    assert statistic([7.0], "p99") == 7.0
    assert statistic([float(v) for v in range(1, 1001)], "p99.9") == 999.0


def test_m_out_of_n() -> None:
    config = _config()  # 2 of 3
    assert _state(config, 11, 0, 12) == ALARM
    assert _state(config, 11, 0, 0) == OK
    assert _state(config, 11, 11, 11, current=OK) == ALARM
    assert _state(_config(datapoints_to_alarm=3), 11, 0, 12) == OK
    assert _state(_config(evaluation_periods=1, datapoints_to_alarm=1), 11) == ALARM


def test_comparisons_are_strict_or_not_as_named() -> None:
    assert _state(_config(evaluation_periods=1, datapoints_to_alarm=1), 10) == OK
    assert (
        _state(_config(evaluation_periods=1, datapoints_to_alarm=1, comparison="GreaterThanOrEqualToThreshold"), 10)
        == ALARM
    )
    assert _state(_config(evaluation_periods=1, datapoints_to_alarm=1, comparison="LessThanThreshold"), 9) == ALARM
    assert (
        _state(_config(evaluation_periods=1, datapoints_to_alarm=1, comparison="LessThanOrEqualToThreshold"), 10)
        == ALARM
    )


@pytest.mark.parametrize(
    ("treatment", "values", "current", "expected"),
    [
        # every datapoint missing
        ("missing", (None, None, None), OK, INSUFFICIENT),
        ("ignore", (None, None, None), ALARM, ALARM),
        ("ignore", (None, None, None), OK, OK),
        ("breaching", (None, None, None), OK, ALARM),
        ("notBreaching", (None, None, None), ALARM, OK),
        # one breaching datapoint, two missing (M = 2)
        ("missing", (None, 11, None), OK, OK),
        ("ignore", (None, 11, None), OK, OK),
        ("breaching", (None, 11, None), OK, ALARM),
        ("notBreaching", (None, 11, None), OK, OK),
        # two breaching, one missing
        ("missing", (11, None, 11), OK, ALARM),
        ("notBreaching", (11, None, 11), OK, ALARM),
        # one good datapoint, two missing
        ("breaching", (None, 0, None), OK, ALARM),
        ("missing", (None, 0, None), ALARM, OK),
    ],
)
def test_treat_missing_data(treatment: str, values: tuple[float | None, ...], current: str, expected: str) -> None:
    assert _state(_config(treat_missing_data=treatment), *values, current=current) == expected


def test_periods_are_aligned_to_the_epoch_and_include_the_one_in_progress() -> None:
    config = _config(statistic="Sum", period=60, evaluation_periods=3)
    samples = [(59.0, 100.0), (60.0, 1.0), (119.9, 2.0), (125.0, 4.0), (179.0, 8.0), (180.0, 16.0)]
    points = datapoints(samples, config, now=150.0)
    assert [(p.start, p.value) for p in points] == [(0.0, 100.0), (60.0, 3.0), (120.0, 12.0)]
    later = datapoints(samples, config, now=200.0)
    assert [(p.start, p.value) for p in later] == [(60.0, 3.0), (120.0, 12.0), (180.0, 16.0)]
    assert datapoints([], config, now=200.0)[0].value is None


def test_reason_names_the_datapoints_and_the_threshold() -> None:
    result = evaluate(_config(evaluation_periods=1, datapoints_to_alarm=1), _points(12.5), OK, 1000.0)
    assert result.state == ALARM and result.reason.startswith("Threshold Crossed: 1 out of the last 1 datapoints [12.5")
    assert "greater than the threshold (10)" in result.reason
    assert result.reason_data["recentDatapoints"] == [12.5] and result.reason_data["threshold"] == 10.0


def test_config_from_describe_alarms() -> None:
    alarm = {
        "AlarmName": "S-m-latency",
        "ExtendedStatistic": "p99",
        "Threshold": 250.0,
        "ComparisonOperator": "GreaterThanThreshold",
        "Period": 60,
        "EvaluationPeriods": 3,
        "DatapointsToAlarm": 2,
        "TreatMissingData": "notBreaching",
        "Metrics": [],
    }
    config = AlarmConfig.from_alarm(alarm)
    assert (config.statistic, config.datapoints_to_alarm, config.treat_missing_data) == ("p99", 2, "notBreaching")
    assert (
        AlarmConfig.from_alarm({**alarm, "DatapointsToAlarm": None, "TreatMissingData": None}).datapoints_to_alarm == 3
    )
    with pytest.raises(UnsupportedAlarm):
        AlarmConfig.from_alarm({**alarm, "Metrics": [{"Id": "m1", "Expression": "a+b"}]})


EMF = {
    "_aws": {
        "Timestamp": 1_700_000_000_123,
        "CloudWatchMetrics": [
            {
                "Namespace": "Conveyor",
                "Dimensions": [["model", "version"], ["model"]],
                "Metrics": [{"Name": "Latency", "Unit": "Milliseconds"}, {"Name": "Errors", "Unit": "Count"}],
            }
        ],
    },
    "model": "m",
    "version": "2",
    "Latency": [12.5, 7.0],
    "Errors": 0.0,
}


def test_emf_documents_become_samples_for_every_dimension_set_and_value() -> None:
    samples = parse_emf(json.dumps(EMF))
    keys = sorted((s.name, s.dimensions, s.value) for s in samples)
    assert keys == [
        ("Errors", (("model", "m"),), 0.0),
        ("Errors", (("model", "m"), ("version", "2")), 0.0),
        ("Latency", (("model", "m"),), 7.0),
        ("Latency", (("model", "m"),), 12.5),
        ("Latency", (("model", "m"), ("version", "2")), 7.0),
        ("Latency", (("model", "m"), ("version", "2")), 12.5),
    ]
    assert {s.timestamp for s in samples} == {1_700_000_000.123} and {s.namespace for s in samples} == {"Conveyor"}


def test_the_stdout_tee_passes_everything_through_and_picks_out_emf_lines_per_thread() -> None:
    stream = io.StringIO()
    seen: list[str] = []
    tee = StdoutTee(stream, lambda samples: seen.extend(s.name for s in samples))
    line = json.dumps(EMF)

    def emit() -> None:
        for _ in range(50):
            print(line[:10], end="", file=tee)
            print(line[10:], file=tee)
            print('{"level": "INFO", "message": "scored"}', file=tee)

    threads = [threading.Thread(target=emit) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 4 * 50 * 6  # every EMF line, whole, however the writes interleaved
    assert stream.getvalue().count('"scored"') == 200 and stream.getvalue().count('"_aws"') == 200
    print("not json {", file=tee)
    print('{"_aws": broken', file=tee)
    assert len(seen) == 1200
