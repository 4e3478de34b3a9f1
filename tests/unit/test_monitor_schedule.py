"""The monitor tick (conveyor.monitoring.schedule), the dispatcher's label routing and the local
schedules' clock, on memory ports."""

from __future__ import annotations

import json

from conveyor.adapters.memory import MemoryInvoker, MemoryStarter
from conveyor.dispatch import dispatch
from conveyor.localcloud.schedules import LocalSchedules, Target
from conveyor.monitoring.schedule import handle, tick
from tests.unit.monitoring_world import MODEL, NOW, make_world

HOUR = 3600


def test_the_tick_runs_a_models_monitor_once_per_schedule_period(trained_model):
    world = make_world(trained_model, spec_changes={"monitoring": {"schedule": "rate(1 hour)"}})
    first = tick(world.ctx, NOW)
    assert first[0]["model"] == MODEL and first[0]["monitored"] is True
    assert first[0]["report_key"].startswith(f"{MODEL}/monitor/")
    assert tick(world.ctx, NOW + 300)[0]["monitored"] is False  # five minutes later: not due
    assert tick(world.ctx, NOW + HOUR)[0]["monitored"] is True
    reports = world.store.keys("capture", f"{MODEL}/monitor/")
    assert len(reports) == 2


def test_a_killed_or_unserved_model_is_not_monitored(trained_model):
    world = make_world(trained_model)
    world.ctx.registry.kill(MODEL, mode="none")
    assert tick(world.ctx, NOW) == []


def test_the_retrain_schedule_starts_one_retrain_per_period_when_no_data_arrives(trained_model):
    world = make_world(trained_model, spec_changes={"retrain": {"schedule": "rate(1 day)"}})
    # the version was created a day before NOW (monitoring_world): the schedule is due
    outcome = tick(world.ctx, NOW)[0]
    assert outcome["retrain"] == f"{MODEL}-scheduled-v1-{int(NOW // 86400)}"
    payload = world.starter.executions[outcome["retrain"]]
    assert payload["retrain"]["model"] == MODEL and payload["retrain"]["excluded"] == []
    assert "rate(1 day)" in payload["retrain"]["reason"]
    assert tick(world.ctx, NOW + HOUR)[0]["retrain"] == ""  # same period: no second run
    assert len(world.starter.executions) == 1


def test_no_scheduled_retrain_without_a_schedule_or_before_it_is_due(trained_model):
    world = make_world(trained_model, spec_changes={"retrain": {"schedule": "rate(7 days)"}})
    assert tick(world.ctx, NOW)[0]["retrain"] == ""
    world = make_world(trained_model)
    assert tick(world.ctx, NOW + 400 * 86400)[0]["retrain"] == ""
    assert world.starter.executions == {}


def test_the_monitor_function_runs_a_model_now_and_refuses_other_requests(trained_model):
    world = make_world(trained_model)
    result = handle({"action": "run", "model": MODEL, "window": 600}, world.ctx, NOW)
    assert result["versions"][0]["window"]["seconds"] == 600
    assert handle({"action": "tick", "time": "2027-01-15T08:00:00Z"}, world.ctx, 0.0)["models"][0]["monitored"]
    try:
        handle({"action": "nothing"}, world.ctx, NOW)
    except ValueError:
        pass
    else:
        raise AssertionError("an unknown request must fail")


def _created(key: str) -> str:
    detail = {"bucket": {"name": "data"}, "object": {"key": key, "version-id": "v1", "etag": "e", "size": 3}}
    return json.dumps({"detail-type": "Object Created", "source": "aws.s3", "detail": detail})


def test_the_dispatcher_hands_label_files_to_the_label_ingest_never_to_the_pipeline():
    starter, invoker = MemoryStarter(), MemoryInvoker()
    from conveyor.adapters.memory import MemoryObjectStore

    outcomes = dispatch(_created("m/labels/day1.csv"), starter=starter, store=MemoryObjectStore(), labels=invoker)
    assert outcomes == [{"key": "m/labels/day1.csv", "outcome": "labels"}]
    assert invoker.payloads == [
        {"bucket": "data", "key": "m/labels/day1.csv", "version_id": "v1", "etag": "e", "size": 3}
    ]
    assert starter.executions == {}
    dispatch(_created("m/incoming/a.csv"), starter=starter, store=MemoryObjectStore(), labels=invoker)
    assert len(starter.executions) == 1 and len(invoker.payloads) == 1


def test_local_schedules_fire_on_an_advanced_clock_with_the_target_input():
    calls: list[tuple[str, dict]] = []
    schedules = LocalSchedules(lambda name, event: calls.append((name, event)), clock=lambda: NOW)
    transformer = Target("monitor", paths={"time": "$.time"}, template='{"action":"tick","time":<time>}')
    schedules.add("tick", "arn:aws:events:us-east-1:123456789012:rule/tick", "rate(5 minutes)", [transformer])
    assert schedules.fire_due() == [] and calls == []
    fired = schedules.advance(301)
    assert [f["rule"] for f in fired] == ["tick"]
    assert calls == [("monitor", {"action": "tick", "time": "2027-01-15T08:05:00Z"})]
    schedules.advance(900)  # three more periods passed: fired three times, each at its own time
    assert [c[1]["time"] for c in calls[1:]] == ["2027-01-15T08:10:00Z", "2027-01-15T08:15:00Z", "2027-01-15T08:20:00Z"]


def test_an_advance_answers_with_every_firing_it_caused_while_the_background_tick_runs():
    """The background tick used to take an advance's firings (it saw the moved clock first): the
    e2e `monitor --advance` then answered ``fired: []`` on a busy machine."""
    import threading

    schedules = LocalSchedules(lambda name, event: None, clock=lambda: NOW)
    schedules.add("tick", "arn:aws:events:us-east-1:123456789012:rule/tick", "rate(5 minutes)", [Target("monitor")])
    stop = threading.Event()

    def background() -> None:
        while not stop.is_set():
            schedules.fire_due()

    thread = threading.Thread(target=background)
    thread.start()
    try:
        answers = [len(schedules.advance(300)) for _ in range(300)]
    finally:
        stop.set()
        thread.join()
    assert answers == [1] * 300
