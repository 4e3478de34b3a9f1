"""The board as one JSON-able document: the registry's view of every model (what serves, traffic,
versions, approvals waiting), its metric series, its alarms, and the pipeline's last runs.

``registry_view`` alone is what the CloudWatch custom widget shows (the dashboard's graphs draw the
metrics there); ``board_document`` is the whole local board.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from conveyor.board.panels import PANELS
from conveyor.board.sources import BoardSources, ItemsTable, Points
from conveyor.deployment.records import IN_PROGRESS, Deployments
from conveyor.registry import ModelVersion, Registry, Routing
from conveyor.value import VALUE_METRIC

WEEK_HOURS = 7 * 24
ALARM_ORDER = {"ALARM": 0, "INSUFFICIENT_DATA": 1, "OK": 2}


def iso(epoch: float | None) -> str | None:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds") if epoch else None


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _version_row(version: ModelVersion) -> dict[str, Any]:
    candidate = version.metrics.get("candidate") or {}
    metric = version.metrics.get("primary")
    return {
        "version": version.version,
        "status": version.status,
        "metric": metric,
        "holdout": _finite(candidate.get(metric)) if metric else None,
        "value_per_1000": _finite(candidate.get(VALUE_METRIC)),
        "created": iso(version.created_at),
        "decision": version.decision,
    }


def _serving(routing: Routing | None) -> list[dict[str, Any]]:
    """Serving versions with their share of requests and role (a shadow scores everything, serves nothing)."""
    if routing is None or routing.champion is None:
        return []
    traffic = routing.traffic()
    rows = [{"version": int(v), "weight": w, "role": "champion"} for v, w in traffic.items()]
    if routing.challenger is not None and len(rows) > 1:
        rows[1]["role"] = "challenger"
    if routing.shadow is not None:
        rows.append({"version": int(routing.shadow["version"]), "weight": 0.0, "role": "shadow"})
    return rows


def model_view(registry: Registry, deployments: Deployments, model: str) -> dict[str, Any]:
    """One model as the registry sees it."""
    routing = registry.routing(model)
    versions = registry.versions(model)
    records = deployments.for_model(model)
    pending = [
        {
            "version": int(record["version"]),
            "execution": record.get("execution"),
            "since": iso(_finite(record.get("updated_at"))),
        }
        for record in records
        if record.get("state") == "awaiting_approval" and record.get("token")
    ]
    in_progress = [
        {"version": int(record["version"]), "state": record.get("state"), "phase": record.get("phase")}
        for record in records
        if record.get("state") in IN_PROGRESS and record.get("state") != "awaiting_approval"
    ]
    champion = routing.champion["version"] if routing and routing.champion else None
    rows = [_version_row(v) for v in versions]
    serving_row = next((r for r in rows if r["version"] == champion), None)
    return {
        "model": model,
        "champion": champion,
        "killed": bool(routing and routing.killed),
        "revision": routing.revision if routing else 0,
        "traffic": routing.traffic() if routing else {},
        "serving": _serving(routing),
        "versions": rows,
        "pending": sorted(pending, key=lambda p: p["version"]),
        "deployments": in_progress,
        "holdout": {"metric": serving_row["metric"], "value": serving_row["holdout"]} if serving_row else None,
        "value_per_1000": serving_row["value_per_1000"] if serving_row else None,
    }


def registry_view(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every model of a snapshot of the registry table's items."""
    table = ItemsTable(items)
    registry, deployments = Registry(table), Deployments(table)
    return [model_view(registry, deployments, name) for name in table.model_names()]


def _latest(series: dict[str, Points]) -> float | None:
    """The most recent value over every line of a panel (None without data)."""
    latest: tuple[float, float] | None = None
    for points in series.values():
        if points and (latest is None or points[-1][0] > latest[0]):
            latest = points[-1]
    return latest[1] if latest else None


def _summary(metrics: dict[str, dict[str, Points]]) -> dict[str, Any]:
    requests = metrics.get("requests", {})
    return {
        "requests": sum(v for points in requests.values() for _, v in points),
        **{
            key: _latest(metrics.get(key, {}))
            for key in ("latency_p99", "error_rate", "drifted_features", "live_metric", "value")
        },
    }


def board_document(sources: BoardSources, *, now: float, hours: int = WEEK_HOURS, period: int = 3600) -> dict[str, Any]:
    """Everything the board shows, for the ``hours`` before ``now`` in points of ``period`` seconds."""
    start = (now - hours * 3600) // period * period
    series = sources.metrics.read(PANELS, start, now, period)
    alarms = sorted(sources.alarms.alarms(), key=lambda a: (ALARM_ORDER.get(a["state"], 3), a["name"]))
    entries = []
    for view in registry_view(sources.registry_items()):
        name = view["model"]
        metrics = {panel.key: series.get(panel.key, {}).get(name, {}) for panel in PANELS}
        view["metrics"] = {
            key: {label: [[t, v] for t, v in points] for label, points in lines.items()}
            for key, lines in metrics.items()
        }
        view["summary"] = _summary(metrics)
        view["alarms"] = [a for a in alarms if a.get("model") == name]
        entries.append(view)
    return {
        "stack": sources.stack,
        "generated": iso(now),
        "window": {"start": iso(start), "end": iso(now), "period": period, "hours": hours},
        "panels": [
            {"key": p.key, "title": p.title, "metric": p.metric, "stat": p.stat, "unit": p.unit} for p in PANELS
        ],
        "models": entries,
        "alarms": [a for a in alarms if a.get("model") is None],
        "runs": [
            {**run, "started": iso(run.get("started")), "stopped": iso(run.get("stopped")), "seconds": _seconds(run)}
            for run in sources.runs.recent(10)
        ],
    }


def _seconds(run: dict[str, Any]) -> float | None:
    started, stopped = run.get("started"), run.get("stopped")
    return round(stopped - started, 1) if started and stopped else None
