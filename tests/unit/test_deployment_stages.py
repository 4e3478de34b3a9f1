"""The deployment's stages on the in-memory adapters, driven as the state machine drives them
(each result stored at its ResultPath), with capture records written where the predict function
writes them and an injected clock."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from conveyor.adapters.memory import MemoryEvents, MemoryMetrics, MemoryNotifier, MemoryObjectStore, MemoryTable
from conveyor.config import Settings
from conveyor.deployment import DeploymentError, DeploymentInProgress, Deployments
from conveyor.layout import artifact_key, version_key
from conveyor.registry import ModelVersion
from conveyor.stages.context import PipelineContext, StageEvent, StageInputError
from conveyor.stages.deployment import check_bake, plan, promote, request_approval, roll_back, start_phase
from tests.unit.test_deployment import record

MODEL = "m"
ARTIFACTS, CAPTURE = "artifacts", "capture"
T0 = 1_795_077_990.0


def _spec(deployment: dict[str, Any]) -> bytes:
    return yaml.safe_dump(
        {
            "name": MODEL,
            "task": "classification",
            "target": {"column": "y"},
            "features": {"x": {"type": "number"}},
            "estimator": {"type": "logistic_regression"},
            "deployment": deployment,
        }
    ).encode()


@dataclass
class World:
    ctx: PipelineContext
    store: MemoryObjectStore
    events: MemoryEvents
    notifier: MemoryNotifier
    state: dict[str, Any] = field(default_factory=dict)
    now: float = T0

    def run(self, stage: Any, result_path: str | None, **kwargs: Any) -> dict[str, Any]:
        result: dict[str, Any] = stage(StageEvent(self.state, "arn:exec:1", **kwargs), self.ctx, **self._clock(stage))
        if result_path:
            self.state[result_path] = result
        return result

    def _clock(self, stage: Any) -> dict[str, Any]:
        return {"clock": lambda: self.now} if stage in (start_phase, check_bake, request_approval) else {}

    def capture(self, records: list[dict[str, Any]]) -> None:
        stamp = datetime.fromtimestamp(self.now, tz=UTC)
        key = f"{MODEL}/capture/{stamp:%Y/%m/%d/%H}/{self.now:.3f}.jsonl"
        self.store.put(CAPTURE, key, "\n".join(json.dumps({**r, "timestamp": self.now - 1}) for r in records).encode())

    def deployment_events(self) -> list[str]:
        return [name for _, name, _ in self.events.events]


def _world(deployment: dict[str, Any], *, champion: bool = True) -> World:
    store, table, events, notifier = MemoryObjectStore(), MemoryTable(), MemoryEvents(), MemoryNotifier()
    settings = Settings(
        data_bucket="data", artifact_bucket=ARTIFACTS, capture_bucket=CAPTURE, registry_table="t", alerts_topic_arn=""
    )
    ctx = PipelineContext(settings, store, table, notifier, MemoryMetrics(), events)
    for number in (1, 2) if champion else (1,):
        digest = str(number) * 64
        ctx.registry.register(
            ModelVersion(
                model=MODEL,
                version=0,
                status="approved" if deployment.get("approval", "auto") == "auto" or number == 1 else "candidate",
                artifact_key=artifact_key(MODEL, digest),
                sha256=digest,
            )
        )
        store.put(ARTIFACTS, version_key(MODEL, number, "spec.yaml"), _spec(deployment))
    new = 2 if champion else 1
    if champion:
        ctx.registry.promote(MODEL, 1)
    world = World(ctx, store, events, notifier)
    world.state["registration"] = {"model": MODEL, "version": new, "status": "approved", "summary": f"{MODEL} v{new}"}
    return world


def _healthy(n: int, role: str = "challenger") -> list[dict[str, Any]]:
    return [record(2, role, score=0.3 + 0.4 * (i % 10) / 10) for i in range(n)] + [
        record(1, "champion", score=0.3 + 0.4 * (i % 10) / 10) for i in range(n)
    ]


def test_a_canary_that_stays_healthy_is_promoted() -> None:
    world = _world({"strategy": "canary", "canary": {"weight": 0.5, "bake_seconds": 4}, "bake": {"min_requests": 50}})
    planned = world.run(plan, "deployment")
    assert planned["phases"] == [{"kind": "challenger", "weight": 0.5, "bake_seconds": 4}]
    started = world.run(start_phase, "deployment")
    assert started["phase"] == 0 and started["started_at"] == T0 and not started["has_next_phase"]
    routing = world.ctx.registry.routing(MODEL)
    assert routing is not None and routing.challenger is not None
    assert routing.challenger["version"] == 2 and routing.challenger_weight == 0.5
    world.now += 5
    world.capture(_healthy(80))
    bake = world.run(check_bake, "bake")
    assert bake["verdict"] == "pass", bake["summary"]
    assert bake["trial"]["requests"] == 80 and bake["champion"]["requests"] == 80
    promoted = world.run(promote, "promotion")
    assert promoted["strategy"] == "canary" and promoted["phases"] == ["canary at 50%"]
    routing = world.ctx.registry.routing(MODEL)
    assert routing is not None and routing.champion is not None and routing.challenger is None
    assert routing.champion["version"] == 2
    assert world.deployment_events() == ["ModelPromoted"]
    assert Deployments(world.ctx.table).get(MODEL, 2)["state"] == "promoted"  # type: ignore[index]


def test_a_canary_with_errors_is_rolled_back_and_rejected() -> None:
    world = _world({"strategy": "canary", "canary": {"weight": 0.5, "bake_seconds": 4}, "bake": {"min_requests": 50}})
    world.run(plan, "deployment")
    world.run(start_phase, "deployment")
    world.now += 5
    world.capture([record(2, "challenger", status=503) for _ in range(30)] + _healthy(10)[10:])
    bake = world.run(check_bake, "bake")
    assert bake["verdict"] == "breach" and "error rate 100.0%" in bake["summary"]
    result = world.run(roll_back, "rollback")
    assert "m v2 rolled back during its canary at 50%" in result["summary"]
    assert "v1 keeps serving all traffic" in result["summary"]
    routing = world.ctx.registry.routing(MODEL)
    assert routing is not None and routing.challenger is None and routing.challenger_weight == 0
    assert routing.champion is not None and routing.champion["version"] == 1
    version = world.ctx.registry.get(MODEL, 2)
    assert version.status == "rejected" and version.decision.startswith("rolled back: canary at 50%")
    ((_, name, detail),) = world.events.events
    assert name == "ModelRolledBack" and detail["details"]["trial_ended"] is True
    assert detail["details"]["checks"][0]["name"] == "error_rate"


def test_few_requests_extend_the_bake_then_roll_back_without_rejecting_on_an_error_path() -> None:
    world = _world(
        {
            "strategy": "canary",
            "canary": {"weight": 0.1, "bake_seconds": 4},
            "bake": {"min_requests": 100, "max_extensions": 1},
        }
    )
    world.run(plan, "deployment")
    world.run(start_phase, "deployment")
    world.now += 5
    world.capture(_healthy(20))
    first = world.run(check_bake, "bake")
    assert first["verdict"] == "extend" and first["extensions"] == 0 and first["extend_seconds"] == 4
    world.now += 5
    world.capture(_healthy(20))
    second = world.run(check_bake, "bake")
    assert second["verdict"] == "insufficient" and second["extensions"] == 1
    assert second["trial"]["requests"] == 40  # the window grows with each extension
    world.run(roll_back, "rollback")
    assert world.ctx.registry.get(MODEL, 2).status == "rejected"


def test_linear_steps_move_the_weight_up() -> None:
    world = _world(
        {"strategy": "linear", "linear": {"steps": [0.2, 0.6], "bake_seconds": 3}, "bake": {"min_requests": 10}}
    )
    world.run(plan, "deployment")
    weights = []
    while world.state["deployment"]["has_next_phase"]:
        world.run(start_phase, "deployment")
        routing = world.ctx.registry.routing(MODEL)
        assert routing is not None
        weights.append(routing.challenger_weight)
        world.now += 4
        world.capture(_healthy(20))
        assert world.run(check_bake, "bake")["verdict"] == "pass"
    assert weights == [0.2, 0.6]
    world.run(promote, "promotion")
    routing = world.ctx.registry.routing(MODEL)
    assert routing is not None and routing.champion is not None and routing.champion["version"] == 2


def test_shadow_then_canary_judges_the_shadow_first_then_the_challenger() -> None:
    world = _world(
        {
            "strategy": "shadow_then_canary",
            "shadow": {"bake_seconds": 3},
            "canary": {"weight": 0.3, "bake_seconds": 3},
            "bake": {"min_requests": 10},
        }
    )
    world.run(plan, "deployment")
    world.run(start_phase, "deployment")
    routing = world.ctx.registry.routing(MODEL)
    assert routing is not None and routing.shadow is not None and routing.challenger is None
    world.now += 4
    world.capture(_healthy(20, role="shadow"))
    assert world.run(check_bake, "bake")["verdict"] == "pass"
    world.run(start_phase, "deployment")
    routing = world.ctx.registry.routing(MODEL)
    assert routing is not None and routing.shadow is None and routing.challenger_weight == 0.3
    world.now += 4
    world.capture(_healthy(20))  # the shadow records of the first phase are outside this window
    bake = world.run(check_bake, "bake")
    assert bake["verdict"] == "pass" and bake["trial"]["role"] == "challenger"


def test_someone_else_changing_the_routing_interrupts_without_touching_it() -> None:
    world = _world({"strategy": "canary", "canary": {"weight": 0.5, "bake_seconds": 4}})
    world.run(plan, "deployment")
    world.run(start_phase, "deployment")
    world.ctx.registry.end_trial(MODEL, "an operator pulled it")
    world.now += 5
    bake = world.run(check_bake, "bake")
    assert bake["verdict"] == "interrupted" and "no longer has v2 as challenger" in bake["summary"]
    assert Deployments(world.ctx.table).get(MODEL, 2)["state"] == "interrupted"  # type: ignore[index]


def test_a_trial_of_another_version_makes_the_phase_wait() -> None:
    world = _world({"strategy": "canary"})
    world.ctx.registry.register(
        ModelVersion(model=MODEL, version=0, status="approved", artifact_key="k3", sha256="3" * 64)
    )
    world.ctx.registry.set_challenger(MODEL, 3, 0.1)
    world.run(plan, "deployment")
    with pytest.raises(DeploymentInProgress, match="v3 is on trial"):
        world.run(start_phase, "deployment")
    # A failure after that (retries exhausted) rolls back only what is ours: v3's trial stays.
    world.state["error"] = {"Error": "DeploymentInProgress", "Cause": json.dumps({"errorMessage": "m v3 is on trial"})}
    result = world.run(roll_back, "rollback")
    assert "DeploymentInProgress: m v3 is on trial" in result["reason"]
    routing = world.ctx.registry.routing(MODEL)
    assert routing is not None and routing.challenger is not None and routing.challenger["version"] == 3
    assert world.ctx.registry.get(MODEL, 2).status == "approved"  # an error is no verdict on the model


def test_a_killed_model_starts_no_trial() -> None:
    world = _world({"strategy": "canary"})
    world.ctx.registry.kill(MODEL, "none")
    world.run(plan, "deployment")
    with pytest.raises(DeploymentError, match="kill switch"):
        world.run(start_phase, "deployment")


def test_the_first_version_goes_straight_to_promotion() -> None:
    world = _world({"strategy": "canary"}, champion=False)
    planned = world.run(plan, "deployment")
    assert planned["phases"] == [] and planned["has_next_phase"] is False
    world.run(promote, "promotion")
    routing = world.ctx.registry.routing(MODEL)
    assert routing is not None and routing.champion is not None and routing.champion["version"] == 1


def test_an_approval_request_keeps_the_token_and_tells_the_reviewers() -> None:
    world = _world({"strategy": "canary", "approval": "manual", "approval_timeout_seconds": 600})
    world.run(plan, "deployment")
    with pytest.raises(StageInputError, match="task token"):
        world.run(request_approval, None)
    world.run(request_approval, None, task_token="tok-9")
    item = Deployments(world.ctx.table).get(MODEL, 2)
    assert item is not None and item["state"] == "awaiting_approval" and item["token"] == "tok-9"
    assert item["expires_at"] == T0 + 600
    ((subject, message),) = world.notifier.messages
    assert subject == "Conveyor: m v2 awaits approval"
    assert "conveyor approve m 2" in message and "canary at 10%" in message
