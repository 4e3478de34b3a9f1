"""What happens when a per-model alarm changes state: the spec's ``monitoring.on_alarm`` action.

The alarm-action function receives CloudWatch's "CloudWatch Alarm State Change" events (EventBridge
rule -> SQS alarm queue -> function, on AWS and on the local cloud alike) and calls ``on_alarm_event``.

- One action per alarm **episode** (from the state change into ALARM until the alarm leaves ALARM):
  the episode is claimed by a conditional write of ``MODEL#{model}`` / ``ALARM#{signal}#{episode}``,
  so a redelivered event, or a second consumer, acts once.
- No action while a deployment of the model is in progress: its bake owns the decision then. The
  episode is recorded with action ``none`` and the reason.
- ``notify``: a message on the alerts topic (CloudWatch's own alarm notification is sent beside it).
- ``rollback``: the version that served before takes all traffic; the one that breached becomes
  ``rejected`` with the alarm as the reason, as a failed bake does; the model's alarms follow the
  thresholds of the version now serving.
- ``retrain``: a run of the pipeline with ``{"retrain": {...}}`` (the input ``conveyor impact --retrain``
  starts), named after the episode so that one episode starts one run.

Every action is recorded on the episode's item (the model's history in the registry) and published as
``AlarmActionTaken``.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from conveyor.events import RegistryEvent
from conveyor.monitoring.alarms import parse_alarm_name, sync_model_alarms
from conveyor.ports import Alarms, ConditionFailed, EventPublisher, ExecutionStarter, Notifier, Table
from conveyor.registry import Registry, RegistryError, model_pk, version_sk

log = logging.getLogger(__name__)

ACTIONS = ("notify", "rollback", "retrain")
ALARM = "ALARM"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def settings_sk(version: int) -> str:
    """Where a version's ``monitoring:`` settings are kept, beside its registry item."""
    return "MONITORING#" + version_sk(version).split("#", 1)[1]


def remember_settings(table: Table, model: str, version: int, settings: Mapping[str, Any]) -> None:
    """Keep the version's ``monitoring:`` settings (from its deployment plan) for later alarm syncs."""
    table.put({"pk": model_pk(model), "sk": settings_sk(version), "model": model, "version": version, **settings})


def settings_of(table: Table, model: str, version: int) -> dict[str, Any] | None:
    item = table.get(model_pk(model), settings_sk(version))
    if item is None:
        return None
    return {k: v for k, v in item.items() if k not in {"pk", "sk", "model", "version"}}


@dataclass
class AlarmContext:
    table: Table
    notifier: Notifier
    events: EventPublisher
    starter: ExecutionStarter
    alarms: Alarms
    stack: str
    topic_arn: str = ""
    clock: Callable[[], float] = time.time

    @property
    def registry(self) -> Registry:
        return Registry(self.table)


@dataclass(frozen=True)
class StateChange:
    """The parts of CloudWatch's "CloudWatch Alarm State Change" event that decide an action."""

    alarm: str
    state: str
    previous: str
    reason: str
    timestamp: str

    @classmethod
    def parse(cls, event: Mapping[str, Any]) -> StateChange:
        detail = event.get("detail") or {}
        state = detail.get("state") or {}
        return cls(
            alarm=str(detail.get("alarmName", "")),
            state=str(state.get("value", "")),
            previous=str((detail.get("previousState") or {}).get("value", "")),
            reason=str(state.get("reason", "")),
            timestamp=str(state.get("timestamp") or event.get("time") or ""),
        )

    def episode(self) -> str:
        """The episode's id: when the alarm entered ALARM (the same for a redelivered event)."""
        return _UNSAFE.sub("", self.timestamp.replace(":", "").replace(".", ""))[:40] or "unknown"


def episode_sk(signal: str, episode: str = "") -> str:
    return f"ALARM#{signal}#{episode}"


def on_alarm_event(event: Mapping[str, Any], ctx: AlarmContext) -> dict[str, Any]:
    """Apply the model's ``on_alarm`` action to one alarm state change (see the module docstring)."""
    change = StateChange.parse(event)
    parsed = parse_alarm_name(ctx.stack, change.alarm)
    if parsed is None:
        return {"alarm": change.alarm, "state": change.state, "action": "none", "reason": "not a per-model alarm"}
    model, signal = parsed
    if change.state != ALARM:
        _close_episode(ctx, model, signal, change)
        return {"alarm": change.alarm, "model": model, "signal": signal, "state": change.state, "action": "none"}
    routing = ctx.registry.routing(model)
    version = int(routing.champion["version"]) if routing is not None and routing.champion else None
    settings = settings_of(ctx.table, model, version) if version is not None else None
    wanted = str(((settings or {}).get("on_alarm") or {}).get(signal, "notify"))
    record: dict[str, Any] = {
        "pk": model_pk(model),
        "sk": episode_sk(signal, change.episode()),
        "model": model,
        "signal": signal,
        "alarm": change.alarm,
        "episode": change.episode(),
        "version": version,
        "requested": wanted,
        "action": "pending",
        "alarm_reason": change.reason,
        "started_at": ctx.clock(),
    }
    try:
        ctx.table.put(record, if_absent=True)
    except ConditionFailed:
        return {"alarm": change.alarm, "model": model, "signal": signal, "action": "none", "reason": "episode handled"}
    from conveyor.deployment import Deployments

    if Deployments(ctx.table).in_progress(model):
        outcome = {"action": "none", "reason": f"a deployment of {model} is in progress: its bake decides"}
    elif version is None:
        outcome = {"action": "none", "reason": f"{model} serves no version"}
    else:
        outcome = _act(ctx, wanted, model, signal, version, change)
    record.update(outcome, acted_at=ctx.clock())
    ctx.table.put(record)
    _emit(
        ctx,
        RegistryEvent(
            name="AlarmActionTaken",
            model=model,
            model_version=version,
            correlation_id=change.alarm,
            details={k: record[k] for k in ("alarm", "signal", "episode", "requested", "alarm_reason") if k in record}
            | outcome,
        ),
    )
    return {"alarm": change.alarm, "model": model, "signal": signal, "version": version, **outcome}


def _act(ctx: AlarmContext, action: str, model: str, signal: str, version: int, change: StateChange) -> dict[str, Any]:
    why = f"alarm {change.alarm} ({signal}) in ALARM: {change.reason}"
    if action == "rollback":
        return _roll_back(ctx, model, signal, version, why)
    if action == "retrain":
        name = _UNSAFE.sub("-", f"{model}-alarm-{signal}-{change.episode()}")[:80]
        started = ctx.starter.start(name, {"retrain": {"model": model, "reason": why}})
        ctx.notifier.publish(f"Conveyor: {model} retraining on its {signal} alarm", f"{why}\nRetrain run: {name}.")
        return {"action": "retrain", "execution": name, "started": started, "reason": why}
    ctx.notifier.publish(f"Conveyor: {model} {signal} alarm", f"{why}\n{model} v{version} serves.")
    return {"action": "notify", "reason": why}


def _roll_back(ctx: AlarmContext, model: str, signal: str, version: int, why: str) -> dict[str, Any]:
    previous = ctx.registry.previous_champion(model)
    if previous is None:
        reason = f"{why}; no earlier version to roll back to: notified only"
        ctx.notifier.publish(f"Conveyor: {model} {signal} alarm (no rollback possible)", reason)
        return {"action": "notify", "reason": reason}
    try:
        ctx.registry.rollback(model, previous.version)
    except (RegistryError, ConditionFailed) as error:  # somebody changed the routing first
        reason = f"{why}; the rollback to v{previous.version} failed: {error}"
        ctx.notifier.publish(f"Conveyor: {model} {signal} alarm (rollback failed)", reason)
        return {"action": "notify", "reason": reason}
    ctx.registry.set_status(model, version, "rejected", decision=f"rolled back: {why}")
    sync_model_alarms(
        ctx.alarms,
        stack=ctx.stack,
        model=model,
        settings=settings_of(ctx.table, model, previous.version),
        topic_arn=ctx.topic_arn,
    )
    _emit(
        ctx,
        RegistryEvent(
            name="ModelRolledBack",
            model=model,
            model_version=version,
            correlation_id=f"alarm:{signal}",
            details={"reason": why, "champion": previous.version, "alarm": signal, "trial_ended": False},
        ),
    )
    ctx.notifier.publish(
        f"Conveyor: {model} v{version} rolled back on its {signal} alarm",
        f"{why}\nv{previous.version} serves all traffic again; v{version} is rejected.",
    )
    return {"action": "rollback", "rolled_back": version, "champion": previous.version, "reason": why}


def _emit(ctx: AlarmContext, event: RegistryEvent) -> None:
    ctx.events.publish(event.source, event.name, event.detail())


def _close_episode(ctx: AlarmContext, model: str, signal: str, change: StateChange) -> None:
    latest = ctx.table.query(model_pk(model), episode_sk(signal), newest_first=True, limit=1)
    if latest and not latest[0].get("ended_at"):
        latest[0].update(ended_at=ctx.clock(), ended_state=change.state)
        ctx.table.put(latest[0])


def history(table: Table, model: str) -> list[dict[str, Any]]:
    """The model's alarm episodes and the actions taken, newest first."""
    items = table.query(model_pk(model), "ALARM#")
    return sorted(items, key=lambda i: float(i.get("started_at", 0.0)), reverse=True)
