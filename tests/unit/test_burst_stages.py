"""The stages of one retrain per burst and of the compare-and-set promotion, on the in-memory adapters
with an injected clock (driven as the state machine drives them)."""

from __future__ import annotations

from typing import Any

import yaml

from conveyor.deployment import Deployments
from conveyor.layout import spec_key
from conveyor.stages.bursts import claim_retrain, finish_run, start_retrain
from conveyor.stages.context import StageEvent
from conveyor.stages.deployment import plan, promote
from tests.unit.test_deployment_stages import ARTIFACTS, MODEL, T0, World, _world

ALL_AT_ONCE = {"strategy": "all_at_once"}


def _drop(world: World, key: str) -> dict[str, Any]:
    return {
        "detail": {"bucket": {"name": "data"}, "object": {"key": key}},
        "validation": {"model": MODEL, "verdict": "accepted"},
        "drift": {"verdict": "no_drift", "retrain": True, "summary": ""},
    }


def _with_retrain_spec(world: World, **retrain: Any) -> None:
    spec = yaml.safe_load(world.store.get(ARTIFACTS, f"{MODEL}/versions/1/spec.yaml"))
    spec["retrain"] = {"batch_window_seconds": 2, **retrain}
    world.store.put(ARTIFACTS, spec_key(MODEL), yaml.safe_dump(spec).encode())


def test_a_burst_claims_once_settles_and_trains_once_more_for_late_drops() -> None:
    world = _world(ALL_AT_ONCE)
    _with_retrain_spec(world)
    clock = {"clock": lambda: world.now}
    owner_state = _drop(world, f"{MODEL}/incoming/export/part-0.csv")
    claim = claim_retrain(StageEvent(owner_state, "exec-owner"), world.ctx, **clock)
    assert claim["outcome"] == "owner" and claim["wait_seconds"] == 2
    owner_state["claim"] = claim
    world.now += 1
    folded = claim_retrain(
        StageEvent(_drop(world, f"{MODEL}/incoming/export/part-1.csv"), "exec-2"), world.ctx, **clock
    )
    assert folded["outcome"] == "folded" and folded["owner"] == "exec-owner" and "folded into" in folded["summary"]
    waiting = start_retrain(StageEvent(owner_state, "exec-owner"), world.ctx, **clock)
    assert waiting["ready"] is False and waiting["wait_seconds"] == 2
    world.now += 2
    ready = start_retrain(StageEvent(owner_state, "exec-owner"), world.ctx, **clock)
    assert ready["ready"] is True and ready["round"] == 1
    late = claim_retrain(StageEvent(_drop(world, f"{MODEL}/incoming/late.csv"), "exec-3"), world.ctx, **clock)
    assert late["outcome"] == "folded" and late["state"] == "running" and "once more" in late["summary"]
    owner_state["registration"] = {"model": MODEL, "version": 2, "status": "rejected"}
    finished = finish_run(StageEvent(owner_state, "exec-owner"), world.ctx)
    assert finished["ending"] == "candidate_rejected" and finished["pending"] is True
    follow_up = finished["next"]
    assert follow_up["claim"]["round"] == 2 and follow_up["claim"]["owner"] == "exec-owner"
    assert "registration" not in follow_up and follow_up["detail"] == owner_state["detail"]


def test_wait_for_waits_for_the_marker_of_an_export_folder_only() -> None:
    world = _world(ALL_AT_ONCE)
    _with_retrain_spec(world, wait_for="_SUCCESS")
    clock = {"clock": lambda: world.now}
    state = _drop(world, f"{MODEL}/incoming/export/part-0.csv")
    state["claim"] = claim_retrain(StageEvent(state, "exec-1"), world.ctx, **clock)
    world.now += 10
    assert start_retrain(StageEvent(state, "exec-1"), world.ctx, **clock)["ready"] is False
    world.store.put("data", f"{MODEL}/incoming/export/_SUCCESS", b"")
    assert start_retrain(StageEvent(state, "exec-1"), world.ctx, **clock)["ready"] is True
    finish_run(StageEvent({**state, "promotion": {"version": 2}}, "exec-1"), world.ctx)
    single = _drop(world, f"{MODEL}/incoming/single.csv")  # not an export: no marker to wait for
    single["claim"] = claim_retrain(StageEvent(single, "exec-2"), world.ctx, **clock)
    world.now += 10
    assert start_retrain(StageEvent(single, "exec-2"), world.ctx, **clock)["ready"] is True


def test_a_plan_against_a_replaced_champion_is_stale_and_starts_no_deployment() -> None:
    world = _world(ALL_AT_ONCE)
    world.state["evaluation"] = {"champion_version": None}  # evaluated when nothing served; v1 serves now
    planned = world.run(plan, "deployment")
    assert planned["stale"] is True and "evaluated against" in planned["note"]
    assert Deployments(world.ctx.table).get(MODEL, 2) is None
    world.state["evaluation"] = {"champion_version": 1}
    assert world.run(plan, "deployment")["stale"] is False


def test_the_promotion_is_refused_when_the_champion_changed_after_the_evaluation() -> None:
    world = _world(ALL_AT_ONCE)
    world.state["evaluation"] = {"champion_version": 1}
    world.run(plan, "deployment")
    world.ctx.registry.promote(MODEL, 1)  # someone promoted (here: v1 again, a new revision)
    world.state["evaluation"] = {"champion_version": None}
    promoted = world.run(promote, "promotion")
    assert promoted["stale"] is True and "evaluating it again" in promoted["summary"]
    assert world.ctx.registry.champion(MODEL).version == 1  # type: ignore[union-attr]
    world.state["evaluation"] = {"champion_version": 1}
    assert world.run(promote, "promotion").get("stale") is None
    assert world.ctx.registry.champion(MODEL).version == 2  # type: ignore[union-attr]


def test_a_run_that_ends_without_serving_leaves_no_version_approved_and_frees_the_lock() -> None:
    world = _world(ALL_AT_ONCE)
    world.state["evaluation"] = {"champion_version": 1}
    world.run(plan, "deployment")
    world.state["error"] = {"Error": "States.TaskFailed", "Cause": "boom"}
    world.state["validation"] = {"model": MODEL}
    finished = world.run(finish_run, "finish")
    assert finished["ending"] == "failed" and finished["pending"] is False
    version = world.ctx.registry.get(MODEL, 2)
    assert version.status == "rejected" and "not deployed" in version.history[-1]["reason"]
    assert version.history[-1]["champion"] == 1
    Deployments(world.ctx.table).acquire(MODEL, 3, "exec-other", until=T0 + 100, now=T0)  # the lock is free
