"""Monitoring commands against the running local cloud: ``conveyor alarms``.

Exit codes: 0 listed; 1 no running local cloud (start one with ``conveyor up``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from conveyor.cli.common import JsonFlag, StackOption, StateOption, load_target, out

_STYLE = {"ALARM": "bold red", "OK": "green", "INSUFFICIENT_DATA": "yellow"}


def alarms_document(statuses: list[Any], stack: str, model: str | None = None) -> dict[str, Any]:
    """The per-model alarms (``{stack}-{model}-{signal}``), optionally of one model, by model and signal."""
    from conveyor.monitoring.alarms import parse_alarm_name

    rows = []
    for status in statuses:
        parsed = parse_alarm_name(stack, status.name)
        if parsed is None or (model is not None and parsed[0] != model):
            continue
        rows.append(
            {
                "name": status.name,
                "model": parsed[0],
                "signal": parsed[1],
                "state": status.state,
                "reason": status.reason,
                "updated": datetime.fromtimestamp(status.updated, UTC).isoformat(timespec="seconds")
                if status.updated
                else None,
            }
        )
    return {"alarms": sorted(rows, key=lambda r: (r["model"], r["signal"]))}


def alarms(
    model: Annotated[str | None, typer.Argument(help="Only this model's alarms.")] = None,
    state: StateOption = None,
    stack: StackOption = None,
    as_json: JsonFlag = False,
) -> None:
    """List the per-model alarms (one per signal: latency, errors, drift, ...) with state, reason and
    when the state last changed. A model has alarms while it serves (the pipeline creates them when a
    version is promoted).

    Exit codes: 0 listed; 1 no running local cloud (start one with `conveyor up`).
    """
    from conveyor.adapters.aws import CloudWatchAlarms

    target = load_target(state, stack)
    prefix = target.outputs.get("StackName") or "Conveyor"
    document = alarms_document(CloudWatchAlarms(target.client("cloudwatch")).describe(f"{prefix}-"), prefix, model)
    if as_json:
        typer.echo(json.dumps(document, indent=2))
        return
    if not document["alarms"]:
        out.print(f"no alarms{f' for {model}' if model else ''}: a model has alarms once a version of it serves")
        return
    grid = Table()
    for column in ("model", "signal", "state", "updated", "reason"):
        grid.add_column(column, overflow="fold")
    for row in document["alarms"]:
        style = _STYLE.get(row["state"], "")
        grid.add_row(
            row["model"],
            row["signal"],
            f"[{style}]{row['state']}[/]" if style else row["state"],
            (row["updated"] or "-")[:19].replace("T", " "),
            escape(row["reason"][:160]),
        )
    out.print(grid)
