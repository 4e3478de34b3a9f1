"""Per-model alarm definitions and their sync; the on_alarm actions (episodes, deployments, rollback, retrain)."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor.adapters.memory import MemoryAlarms, MemoryEvents, MemoryNotifier, MemoryStarter, MemoryTable
from conveyor.deployment import Deployments
from conveyor.monitoring.actions import AlarmContext, history, on_alarm_event, remember_settings
from conveyor.monitoring.alarms import DEFAULTS, SIGNALS, alarm_definitions, parse_alarm_name, sync_model_alarms
from conveyor.registry import ModelVersion, Registry
from conveyor.spec import SIGNALS as SPEC_SIGNALS
from conveyor.spec import MonitoringSettings

STACK = "Conveyor-dev"
MODEL = "doctor-visits"
TOPIC = "arn:aws:sns:us-east-1:123456789012:alerts"


def test_defaults_and_signals_are_the_specs() -> None:
    dumped = MonitoringSettings().model_dump(mode="json")
    assert {k: dumped[k] for k in DEFAULTS} == DEFAULTS
    assert SIGNALS == SPEC_SIGNALS


def test_one_alarm_per_signal_with_the_specs_thresholds() -> None:
    settings = MonitoringSettings(max_latency_p99_ms=80, period_seconds=30, schedule="rate(15 minutes)")
    alarms = {a.name: a for a in alarm_definitions(STACK, MODEL, settings.model_dump(mode="json"), topic_arn=TOPIC)}
    assert sorted(alarms) == sorted(f"{STACK}-{MODEL}-{s}" for s in SIGNALS)
    latency = alarms[f"{STACK}-{MODEL}-latency"]
    assert (latency.metric, latency.statistic, latency.threshold) == ("Latency", "p99", 80.0)
    assert (latency.period, latency.evaluation_periods, latency.datapoints_to_alarm) == (30, 3, 2)
    assert latency.treat_missing_data == "notBreaching" and latency.dimensions == {"model": MODEL}
    errors = alarms[f"{STACK}-{MODEL}-errors"]
    assert (errors.metric, errors.statistic, errors.threshold) == ("Errors", "Average", 0.01)
    assert alarms[f"{STACK}-{MODEL}-capture_errors"].statistic == "Sum"
    assert alarms[f"{STACK}-{MODEL}-breaker"].metric == "BreakerOpen"
    live = alarms[f"{STACK}-{MODEL}-live_metric"]
    assert (live.metric, live.comparison, live.threshold) == ("LiveMetricDegradation", "GreaterThanThreshold", 0.05)
    drift = alarms[f"{STACK}-{MODEL}-drift"]
    assert (drift.metric, drift.statistic, drift.period, drift.evaluation_periods) == (
        "LiveDriftedFeatures",
        "Maximum",
        900,
        1,
    )
    assert drift.treat_missing_data == "ignore"
    for alarm in alarms.values():
        assert alarm.actions == (TOPIC,) and alarm.namespace == "Conveyor"
        assert alarm.tags == {
            "conveyor:stack": STACK,
            "conveyor:model": MODEL,
            "conveyor:signal": alarm.name.rsplit("-", 1)[1],
        }


def test_periods_are_ones_cloudwatch_accepts() -> None:
    for seconds, expected in ((10, 10), (25, 30), (45, 60), (90, 60), (3600, 3600), (604800, 86400)):
        (latency, *_) = alarm_definitions(STACK, MODEL, {"period_seconds": seconds})
        assert latency.period == expected, seconds


def test_alarm_names_parse_back_and_system_alarms_do_not() -> None:
    assert parse_alarm_name(STACK, f"{STACK}-{MODEL}-domain_classifier") == (MODEL, "domain_classifier")
    assert parse_alarm_name(STACK, f"{STACK}-System-PredictErrors") is None
    assert parse_alarm_name(STACK, f"Other-{MODEL}-latency") is None
    assert parse_alarm_name(STACK, f"{STACK}-{MODEL}-unknown") is None


def test_sync_puts_then_deletes_a_models_alarms_only() -> None:
    alarms = MemoryAlarms()
    sync_model_alarms(alarms, stack=STACK, model="other", settings=None)
    names = sync_model_alarms(alarms, stack=STACK, model=MODEL, settings={"max_latency_p99_ms": 5})
    assert len(alarms.describe(f"{STACK}-{MODEL}-")) == len(SIGNALS) == len(names)
    alarms.set_state(names[0], "ALARM", "breach")
    sync_model_alarms(alarms, stack=STACK, model=MODEL, settings={"max_latency_p99_ms": 9})  # an update keeps state
    assert alarms.status(names[0]).state == "ALARM" and alarms.status(names[0]).threshold == 9.0
    sync_model_alarms(alarms, stack=STACK, model=MODEL, settings=None, serving=False)
    assert alarms.describe(f"{STACK}-{MODEL}-") == [] and len(alarms.describe(f"{STACK}-other-")) == len(SIGNALS)


# --- actions -------------------------------------------------------------------------------------


def _version(registry: Registry, status: str = "approved") -> int:
    return registry.register(ModelVersion(MODEL, 0, status, f"{MODEL}/a.onnx", "ab" * 32)).version


@pytest.fixture
def ctx() -> AlarmContext:
    table = MemoryTable()
    context = AlarmContext(
        table=table,
        notifier=MemoryNotifier(),
        events=MemoryEvents(),
        starter=MemoryStarter(),
        alarms=MemoryAlarms(),
        stack=STACK,
        topic_arn=TOPIC,
        clock=lambda: 1000.0,
    )
    registry = Registry(table)
    v1, v2 = _version(registry), _version(registry)
    registry.promote(MODEL, v1)
    remember_settings(table, MODEL, v1, {"max_latency_p99_ms": 250.0})
    registry.promote(MODEL, v2)
    remember_settings(
        table, MODEL, v2, {"max_latency_p99_ms": 0.001, "on_alarm": {"latency": "rollback", "drift": "retrain"}}
    )
    return context


def _event(signal: str, state: str = "ALARM", at: str = "2026-12-02T10:49:05.856+0000") -> dict[str, Any]:
    return {
        "source": "aws.cloudwatch",
        "detail-type": "CloudWatch Alarm State Change",
        "detail": {
            "alarmName": f"{STACK}-{MODEL}-{signal}",
            "state": {"value": state, "reason": "Threshold Crossed: 1 datapoint", "timestamp": at},
            "previousState": {"value": "OK"},
        },
    }


def _taken(ctx: AlarmContext) -> list[dict[str, Any]]:
    return [d for _, name, d in ctx.events.events if name == "AlarmActionTaken"]  # type: ignore[attr-defined]


def test_rollback_serves_the_previous_version_and_rejects_the_breaching_one(ctx: AlarmContext) -> None:
    outcome = on_alarm_event(_event("latency"), ctx)
    assert outcome["action"] == "rollback" and outcome["champion"] == 1 and outcome["rolled_back"] == 2
    registry = Registry(ctx.table)
    routing = registry.routing(MODEL)
    assert routing is not None and routing.champion is not None and routing.champion["version"] == 1
    rejected = registry.get(MODEL, 2)
    assert rejected.status == "rejected" and rejected.decision.startswith(f"rolled back: alarm {STACK}-{MODEL}-latency")
    # The alarms now follow v1's thresholds.
    latency = ctx.alarms.definitions[f"{STACK}-{MODEL}-latency"]  # type: ignore[attr-defined]
    assert latency.threshold == 250.0
    names = [name for _, name, _ in ctx.events.events]  # type: ignore[attr-defined]
    assert names == ["ModelRolledBack", "AlarmActionTaken"]
    (taken,) = _taken(ctx)
    assert taken["details"]["action"] == "rollback" and taken["model"] == MODEL and taken["model_version"] == 2
    assert any("rolled back" in subject for subject, _ in ctx.notifier.messages)  # type: ignore[attr-defined]
    (episode,) = history(ctx.table, MODEL)
    assert episode["action"] == "rollback" and episode["signal"] == "latency" and episode["version"] == 2


def test_one_action_per_episode_however_often_the_event_arrives(ctx: AlarmContext) -> None:
    first = on_alarm_event(_event("drift"), ctx)
    again = on_alarm_event(_event("drift"), ctx)
    assert first["action"] == "retrain" and first["started"] is True
    assert again["action"] == "none" and again["reason"] == "episode handled"
    assert len(ctx.starter.executions) == 1  # type: ignore[attr-defined]
    (payload,) = ctx.starter.executions.values()  # type: ignore[attr-defined]
    assert payload["retrain"]["model"] == MODEL and "drift" in payload["retrain"]["reason"]
    on_alarm_event(_event("drift", state="OK", at="2026-12-02T11:00:00.000+0000"), ctx)
    (closed,) = history(ctx.table, MODEL)
    assert closed["ended_state"] == "OK"
    # A new episode: a new action, and a new run.
    assert on_alarm_event(_event("drift", at="2026-12-02T12:00:00.000+0000"), ctx)["action"] == "retrain"
    assert len(ctx.starter.executions) == 2 and len(_taken(ctx)) == 2  # type: ignore[attr-defined]


def test_no_action_while_a_deployment_of_the_model_is_in_progress(ctx: AlarmContext) -> None:
    Deployments(ctx.table).start(
        {"model": MODEL, "version": 3, "strategy": "canary", "approval": "auto", "phases": []}, execution="x"
    )
    outcome = on_alarm_event(_event("latency"), ctx)
    assert outcome["action"] == "none" and "deployment" in outcome["reason"]
    routing = Registry(ctx.table).routing(MODEL)
    assert routing is not None and routing.champion is not None and routing.champion["version"] == 2
    (taken,) = _taken(ctx)
    assert taken["details"]["action"] == "none"


def test_notify_by_default_and_system_alarms_are_ignored(ctx: AlarmContext) -> None:
    outcome = on_alarm_event(_event("errors"), ctx)
    assert outcome["action"] == "notify"
    assert ctx.notifier.messages and "errors" in ctx.notifier.messages[-1][0]  # type: ignore[attr-defined]
    system = _event("errors")
    system["detail"]["alarmName"] = f"{STACK}-System-PredictErrors"
    assert on_alarm_event(system, ctx)["reason"] == "not a per-model alarm"


def test_rollback_without_an_earlier_version_notifies(ctx: AlarmContext) -> None:
    table = MemoryTable()
    registry = Registry(table)
    registry.promote(MODEL, _version(registry))
    remember_settings(table, MODEL, 1, {"on_alarm": {"latency": "rollback"}})
    lone = AlarmContext(table, MemoryNotifier(), MemoryEvents(), MemoryStarter(), MemoryAlarms(), STACK)
    outcome = on_alarm_event(_event("latency"), lone)
    assert outcome["action"] == "notify" and "no earlier version" in outcome["reason"]
    assert registry.get(MODEL, 1).status == "production"


def test_promotion_syncs_the_models_alarms_from_the_plans_monitoring_settings() -> None:
    from conveyor.adapters.memory import MemoryMetrics, MemoryObjectStore
    from conveyor.config import Settings
    from conveyor.monitoring.actions import settings_of
    from conveyor.stages.context import PipelineContext, StageEvent
    from conveyor.stages.deployment import promote

    table = MemoryTable()
    version = _version(Registry(table))
    plan = {"model": MODEL, "version": version, "strategy": "all_at_once", "approval": "auto", "phases": []}
    Deployments(table).start(plan, execution="e")
    settings = Settings("d", "a", "c", "t", TOPIC, stack_name=STACK)
    alarms = MemoryAlarms()
    ctx = PipelineContext(
        settings, MemoryObjectStore(), table, MemoryNotifier(), MemoryMetrics(), MemoryEvents(), alarms
    )
    state: Any = {
        "registration": {"model": MODEL, "version": version},
        "deployment": {**plan, "monitoring": {"max_latency_p99_ms": 42.0}},
    }
    result = promote(StageEvent(state=state, execution_id="e"), ctx)
    assert sorted(result["alarms"]["synced"]) == sorted(f"{STACK}-{MODEL}-{s}" for s in SIGNALS)
    assert alarms.definitions[f"{STACK}-{MODEL}-latency"].threshold == 42.0
    assert alarms.definitions[f"{STACK}-{MODEL}-latency"].actions == (TOPIC,)
    assert settings_of(table, MODEL, version) == {"max_latency_p99_ms": 42.0}
