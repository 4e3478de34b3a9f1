"""The CloudWatch custom widget of the dashboard: the registry's view (what serves, traffic split,
approvals waiting) with approve and reject buttons.

CloudWatch calls the widget's Lambda with the widget's ``params`` and a ``widgetContext``; a button is
a ``<cwdb-action action="call">`` whose JSON body is merged into the next call's event, so one function
renders and acts. The reviewer recorded is what the context tells: CloudWatch passes no user identity
(``widgetContext`` has the account, dashboard, widget id, title, locale, time range...), so the board
records ``cloudwatch-dashboard:{dashboardName}/{widgetId} (account {accountId})``; CloudTrail's
``lambda:Invoke`` data events (when enabled) name the console user who called the function.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from html import escape
from typing import Any

from conveyor.board.actions import ACTIONS, Reviewing, review
from conveyor.board.document import registry_view
from conveyor.errors import ConveyorError

DESCRIPTION = (
    "## Conveyor registry\nWhat serves for every model, the traffic split, and candidates waiting for a "
    "reviewer, with approve and reject buttons (calls `conveyor.deployment.approval`, as `conveyor approve`)."
)


def reviewer(context: dict[str, Any]) -> str:
    """Who pressed the button, as far as the widget context tells (no user identity is passed)."""
    dashboard = context.get("dashboardName") or "?"
    widget = context.get("widgetId") or "?"
    return f"cloudwatch-dashboard:{dashboard}/{widget} (account {context.get('accountId') or '?'})"


def _button(label: str, kind: str, endpoint: str, params: dict[str, Any], confirmation: str) -> str:
    return (
        f'<a class="btn {kind}">{escape(label)}</a>'
        f'<cwdb-action action="call" display="widget" endpoint="{escape(endpoint)}" '
        f'confirmation="{escape(confirmation)}">{escape(json.dumps(params))}</cwdb-action>'
    )


def _pending_cell(model: dict[str, Any], endpoint: str) -> str:
    cells = []
    for p in model["pending"]:
        name, version = model["model"], p["version"]
        approve = _button(
            "Approve",
            "btn-primary",
            endpoint,
            {"action": "approve", "model": name, "version": version},
            f"Approve {name} v{version}?",
        )
        reject = _button(
            "Reject",
            "",
            endpoint,
            {"action": "reject", "model": name, "version": version},
            f"Reject {name} v{version}?",
        )
        field = f'<input name="reason-{escape(name)}-{version}" placeholder="reason to reject">'
        cells.append(f"<div>v{version} since {escape((p['since'] or '-')[:16])} {approve} {field} {reject}</div>")
    return "".join(cells) or "-"


def widget_html(models: list[dict[str, Any]], endpoint: str, flash: str = "") -> str:
    rows = "".join(
        f"<tr><td>{escape(m['model'])}</td><td>"
        + (", ".join(f"v{s['version']} {s['role']} {s['weight']:.0%}" for s in m["serving"]) or "nothing serves")
        + (" <b>KILLED</b>" if m["killed"] else "")
        + f"</td><td>{_pending_cell(m, endpoint)}</td></tr>"
        for m in models
    )
    note = f"<p><b>{escape(flash)}</b></p>" if flash else ""
    return (
        f"{note}<form><table><thead><tr><th>model</th><th>serving (traffic)</th><th>waiting for approval</th></tr>"
        f"</thead><tbody>{rows}</tbody></table></form>"
    )


def handle_widget_event(
    event: dict[str, Any], *, endpoint: str, ports: Reviewing, registry_items: Callable[[], list[dict[str, Any]]]
) -> str | dict[str, str]:
    """Render the widget, after applying the button's action when the event carries one."""
    if event.get("describe"):
        return {"markdown": DESCRIPTION}
    context = event.get("widgetContext") or {}
    flash = ""
    action = event.get("action")
    if action in ACTIONS:
        params = dict(event)
        forms = (context.get("forms") or {}).get("all") or {}
        params["reason"] = forms.get(f"reason-{event.get('model')}-{event.get('version')}") or ""
        try:
            result = review(ports, str(action), params, by=reviewer(context))
            flash = f"{result['model']} v{result['version']}: {result['status']} by {reviewer(context)}"
        except ConveyorError as error:
            flash = f"{action} failed: {error}"
    models = registry_view(registry_items())
    return widget_html(models, endpoint, flash)


def render_widget(event: dict[str, Any], *, endpoint: str) -> str | dict[str, str]:
    """The widget for one call, on this container's adapters (built at its first call)."""
    ports, items = _ports()
    return handle_widget_event(event, endpoint=endpoint, ports=ports, registry_items=items)


@functools.cache
def _ports() -> tuple[Reviewing, Callable[[], list[dict[str, Any]]]]:
    from conveyor.adapters.aws import DynamoTable, EventBridgePublisher, RegistryScan, StepFunctionsCallbacks
    from conveyor.config import Settings
    from conveyor.deployment import Deployments
    from conveyor.registry import Registry

    table_name = Settings.from_env().registry_table
    table = DynamoTable(table_name)
    reviewing = Reviewing(Registry(table), Deployments(table), StepFunctionsCallbacks(), EventBridgePublisher())
    return reviewing, RegistryScan(table_name)
