"""The monitor tick: one static schedule (every few minutes) runs each serving model's live monitor
when its ``monitoring.schedule`` is due, and applies the retrain ``schedule`` when no data arrives.

- *Serving models*: every ``{model}/spec.yaml`` of the artifact bucket whose routing record has a
  champion and is not killed (no index to keep in step: the specs are the list of models).
- *Due*: the model's last run (registry item ``MODEL#{model}`` / ``MONITOR``) is at least
  ``monitoring.schedule`` ago. The tick claims the run by a conditional write of that item before
  running, so two overlapping ticks run a model's monitor once.
- *Scheduled retrain*: with ``retrain.schedule`` set and the latest trained version older than it,
  a retrain execution starts with the input ``conveyor impact --retrain`` uses
  (``{"retrain": {"model", "reason", "excluded": []}}``), named after the model, the latest version
  and the schedule period: a version is retrained at most once per period, however often the tick runs.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from conveyor.monitoring.context import MonitorContext
from conveyor.monitoring.live import run_monitor
from conveyor.ports import ConditionFailed
from conveyor.registry import model_pk

log = logging.getLogger(__name__)

MONITOR_SK = "MONITOR"
_SPEC_KEY = re.compile(r"^([a-z0-9-]{1,63})/spec\.yaml$")


def serving_models(ctx: MonitorContext) -> list[str]:
    models = []
    for key in ctx.store.keys(ctx.settings.artifact_bucket):
        match = _SPEC_KEY.match(key)
        if match:
            routing = ctx.registry.routing(match.group(1))
            if routing is not None and routing.champion is not None and not routing.killed:
                models.append(match.group(1))
    return models


def claim_run(ctx: MonitorContext, model: str, now: float, every: float) -> bool:
    """Record ``now`` as the model's last monitor run if one is due; False if not due (or another tick won)."""
    state = ctx.table.get(model_pk(model), MONITOR_SK)
    last = float(state["last_run"]) if state else None
    if last is not None and now - last < every:
        return False
    item = {"pk": model_pk(model), "sk": MONITOR_SK, "model": model, "last_run": now}
    try:
        if last is None:
            ctx.table.put(item, if_absent=True)
        else:
            ctx.table.put(item, if_equals=("last_run", state["last_run"] if state else None))
    except ConditionFailed:
        return False
    return True


def scheduled_retrain(ctx: MonitorContext, model: str, schedule: str | None, every: float | None, now: float) -> str:
    """Start a retrain when the latest training is older than ``retrain.schedule``; the execution name or ""."""
    latest = ctx.registry.latest_version_number(model)
    if not schedule or not every or not latest:
        return ""
    age = now - ctx.registry.get(model, latest).created_at
    if age < every:
        return ""
    name = f"{model}-scheduled-v{latest}-{int(now // every)}"[:80]
    reason = f"retrain schedule {schedule}: v{latest} was trained {age / 86400:.1f} days ago and no data arrived since"
    started = ctx.starter.start(name, {"retrain": {"model": model, "reason": reason, "excluded": []}})
    log.info("scheduled retrain", extra={"model": model, "execution": name, "started": started})
    return name if started else ""


def tick(ctx: MonitorContext, now: float) -> list[dict[str, Any]]:
    """One pass over the serving models (module docstring); what was done for each."""
    outcomes = []
    for model in serving_models(ctx):
        outcome: dict[str, Any] = {"model": model, "monitored": False, "retrain": ""}
        try:
            spec = ctx.spec(model)
            if claim_run(ctx, model, now, spec.monitoring.schedule_seconds()):
                run = run_monitor(model, ctx, now)
                outcome.update(monitored=True, report_key=run.report_key)
            outcome["retrain"] = scheduled_retrain(
                ctx, model, spec.retrain.schedule, spec.retrain.schedule_seconds(), now
            )
        except Exception as error:  # one model's failure never stops the others' monitors
            log.exception("monitor tick failed for a model", extra={"model": model})
            outcome["error"] = type(error).__name__
        outcomes.append(outcome)
    return outcomes


def handle(event: dict[str, Any], ctx: MonitorContext, now: float) -> dict[str, Any]:
    """The monitor function's two requests: ``{"action": "tick", "time": ISO}`` (the schedule) and
    ``{"action": "run", "model": M, "window": seconds?}`` (``conveyor monitor M --now``)."""
    from datetime import datetime

    action = event.get("action")
    if action == "tick":
        when = event.get("time")
        at = datetime.fromisoformat(str(when).replace("Z", "+00:00")).timestamp() if when else now
        return {"action": "tick", "models": tick(ctx, at)}
    if action == "run" and event.get("model"):
        window = event.get("window")
        run = run_monitor(str(event["model"]), ctx, now, int(window) if window else None)
        return {"action": "run", "report_key": run.report_key, **run.to_dict()}
    raise ValueError("the monitor takes {'action': 'tick'} or {'action': 'run', 'model': M}")
