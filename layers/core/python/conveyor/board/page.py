"""The board document as one self-contained HTML page: inline CSS and SVG, no external resource.

``interactive=True`` (the board served by the local cloud) adds the approve/reject buttons and a small
script that posts them and refreshes the page's content by itself; the static page (``conveyor board
--out``) has neither. Elements carry ``data-*`` attributes with the raw values (model, version, weight,
alarm state) so tests compare what is shown with ``conveyor status --json`` and ``conveyor alarms --json``.
"""

from __future__ import annotations

import json
from datetime import datetime
from html import escape
from typing import Any

from conveyor.board.svg import color, line_chart, number

REFRESH_SECONDS = 30
_STYLE = """
*{box-sizing:border-box}body{font:13px/1.4 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1f2937}
header{background:#111827;color:#f9fafb;padding:10px 16px;display:flex;gap:16px;align-items:baseline;flex-wrap:wrap}
header h1{font-size:17px;margin:0}main{padding:12px 16px}h2{font-size:15px;margin:18px 0 6px}
table{border-collapse:collapse;background:#fff;width:100%}th,td{padding:4px 8px;border-bottom:1px solid #e5e7eb;
text-align:left;vertical-align:top}th{background:#f3f4f6;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;border-radius:9px;padding:0 7px;margin:1px 2px;font-size:12px;background:#e5e7eb}
.ALARM{background:#fee2e2;color:#991b1b;font-weight:600}.OK{background:#dcfce7;color:#166534}
.INSUFFICIENT_DATA{background:#fef9c3;color:#854d0e}.killed{background:#fecaca;color:#7f1d1d}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(640px,1fr));gap:12px}
.card{background:#fff;border:1px solid #e5e7eb;border-radius:6px;padding:8px 10px}
.card h3{margin:0 0 4px;font-size:14px}.charts{display:grid;grid-template-columns:repeat(2,300px);gap:4px 12px}
.chart-title{font-size:12px;color:#4b5563;margin-top:4px}.chart .tick{font-size:9px;fill:#6b7280}
.chart .axis{stroke:#d1d5db}.chart .reference{stroke:#111827;stroke-dasharray:4 3}.chart .empty{font-size:11px;fill:#9ca3af}
.legend span{margin-right:8px;font-size:11px}.pending{background:#eff6ff;border:1px solid #bfdbfe;padding:6px;margin:4px 0;border-radius:4px}
button{font:inherit;padding:2px 10px;border-radius:4px;border:1px solid #9ca3af;cursor:pointer;background:#fff}
button.approve{background:#16a34a;color:#fff;border-color:#15803d}button.reject{background:#dc2626;color:#fff;border-color:#b91c1c}
#flash{padding:6px 16px;background:#fef3c7;display:none}#flash.shown{display:block}.muted{color:#6b7280}
"""
_SCRIPT = """
window.boardErrors=[];
function noteError(m){window.boardErrors.push(String(m));document.documentElement.dataset.errors=window.boardErrors.length;}
window.addEventListener('error',function(e){noteError(e.message);});
window.addEventListener('unhandledrejection',function(e){noteError(e.reason);});
function flash(text){var f=document.getElementById('flash');f.textContent=text;f.className='shown';}
async function refresh(){
  var r=await fetch(location.pathname+'?fragment=1',{cache:'no-store'});
  if(r.ok){document.getElementById('board').innerHTML=await r.text();}
}
async function act(button){
  var row=button.closest('[data-pending]');var reason=row.querySelector('input.reason');
  var body={model:button.dataset.model,version:Number(button.dataset.version),reason:reason?reason.value:''};
  button.disabled=true;
  var r=await fetch('api/'+button.dataset.action,{method:'POST',headers:{'Content-Type':'application/json',
    'X-Conveyor-Board':'1'},body:JSON.stringify(body)});
  var answer=await r.json();
  flash(r.ok?(body.model+' v'+body.version+': '+answer.status):('error: '+answer.error.message));
  document.documentElement.dataset.lastAction=r.ok?answer.status:'error';
  await refresh();
}
document.addEventListener('click',function(e){var b=e.target.closest('button[data-action]');if(b){act(b);}});
setInterval(function(){refresh().catch(noteError);},REFRESH_MS);
"""


def _when(text: str | None) -> str:
    return escape(text[:16].replace("T", " ")) if text else "-"


def _traffic(model: dict[str, Any]) -> str:
    if not model["serving"]:
        return '<span class="muted">nothing serves</span>'
    badges = "".join(
        f'<span class="badge traffic" data-version="{s["version"]}" data-weight="{s["weight"]}" data-role="{s["role"]}">'
        f"v{s['version']} {s['role']} {s['weight']:.0%}</span>"
        for s in model["serving"]
    )
    return badges + ('<span class="badge killed">KILLED</span>' if model["killed"] else "")


def _alarm_badges(alarms: list[dict[str, Any]]) -> str:
    return (
        "".join(
            f'<span class="badge alarm {escape(a["state"])}" data-alarm="{escape(a["name"])}" data-state="{escape(a["state"])}" '
            f'title="{escape(a.get("reason") or "")}">{escape(a.get("signal") or a["name"])}</span>'
            for a in alarms
        )
        or '<span class="muted">none</span>'
    )


def _pending(model: dict[str, Any], interactive: bool) -> str:
    rows = []
    for p in model["pending"]:
        version = p["version"]
        buttons = ""
        if interactive:
            attrs = f'data-model="{escape(model["model"])}" data-version="{version}"'
            buttons = (
                f' <button class="approve" data-action="approve" {attrs}>Approve</button>'
                f' <input class="reason" placeholder="reason to reject" size="18">'
                f' <button class="reject" data-action="reject" {attrs}>Reject</button>'
            )
        rows.append(
            f'<div class="pending" data-pending="{escape(model["model"])}" data-version="{version}">'
            f"v{version} waits for approval since {_when(p['since'])}{buttons}</div>"
        )
    return "".join(rows)


def _overview(models: list[dict[str, Any]]) -> str:
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "model",
            "serving (traffic)",
            "requests",
            "p99 ms",
            "5xx",
            "drifted",
            "live vs holdout",
            "value/1k",
            "alarms",
            "waiting",
        )
    )
    rows = []
    for m in models:
        s = m["summary"]
        holdout = m["holdout"] or {}
        live = f"{number(s['live_metric'])} / {number(holdout.get('value'))}"
        value = s["value"] if s["value"] is not None else m["value_per_1000"]
        rows.append(
            f'<tr data-model="{escape(m["model"])}"><td><a href="#model-{escape(m["model"])}">{escape(m["model"])}</a></td>'
            f"<td>{_traffic(m)}</td><td class=num>{number(s['requests'])}</td><td class=num>{number(s['latency_p99'])}</td>"
            f"<td class=num>{number(s['error_rate'])}</td><td class=num>{number(s['drifted_features'])}</td>"
            f"<td class=num>{live}</td><td class=num>{number(value)}</td><td>{_alarm_badges(m['alarms'])}</td>"
            f"<td class=num>{len(m['pending']) or ''}</td></tr>"
        )
    return f'<table class="overview"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _card(model: dict[str, Any], document: dict[str, Any], interactive: bool) -> str:
    start = datetime.fromisoformat(document["window"]["start"]).timestamp()
    end = datetime.fromisoformat(document["window"]["end"]).timestamp()
    labels = sorted({label for lines in model["metrics"].values() for label in lines if label})
    legend = "".join(
        f'<span style="color:{color(i)}">&#9632; v{escape(label)}</span>' for i, label in enumerate(labels)
    )
    charts = []
    for panel in document["panels"]:
        lines = model["metrics"].get(panel["key"], {})
        reference = (model["holdout"] or {}).get("value") if panel["key"] == "live_metric" else None
        title = f"{panel['title']}" + (f" ({panel['unit']})" if panel["unit"] else "")
        chart = line_chart(lines, start, end, title=title, reference=reference)
        charts.append(f'<div><div class="chart-title">{escape(title)}</div>{chart}</div>')
    versions = " ".join(
        f'<span class="badge" data-version="{v["version"]}" data-status="{escape(v["status"])}">v{v["version"]} {escape(v["status"])}</span>'
        for v in model["versions"][-8:]
    )
    return (
        f'<section class="card" id="model-{escape(model["model"])}" data-card="{escape(model["model"])}">'
        f"<h3>{escape(model['model'])} {_traffic(model)}</h3><div>versions: {versions}</div>"
        f"<div>alarms: {_alarm_badges(model['alarms'])}</div>{_pending(model, interactive)}"
        f'<div class="legend">{legend}</div><div class="charts">{"".join(charts)}</div></section>'
    )


def _runs(runs: list[dict[str, Any]]) -> str:
    rows = "".join(
        f'<tr data-run="{escape(r["name"])}"><td>{escape(r["name"])}</td><td><span class="badge {escape(r["status"])}">'
        f"{escape(r['status'])}</span></td><td>{_when(r['started'])}</td><td class=num>{number(r['seconds'])}</td></tr>"
        for r in runs
    )
    return (
        "<table class=runs><thead><tr><th>execution</th><th>status</th><th>started</th><th>seconds</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def board_body(document: dict[str, Any], *, interactive: bool) -> str:
    """The page's content (what the served board refreshes in place)."""
    models = document["models"]
    waiting = [m for m in models if m["pending"]]
    firing = sum(1 for m in models for a in m["alarms"] if a["state"] == "ALARM")
    return (
        f'<p class="muted">{len(models)} models, {firing} alarms firing, {sum(len(m["pending"]) for m in waiting)} '
        f"waiting for approval; {document['window']['hours']} h to {_when(document['generated'])} UTC "
        f"in points of {document['window']['period'] // 60} min</p>"
        + (f"<h2>Waiting for approval</h2>{''.join(_pending(m, interactive) for m in waiting)}" if waiting else "")
        + f"<h2>Models</h2>{_overview(models)}"
        + f"<h2>System alarms</h2><div>{_alarm_badges(document['alarms'])}</div>"
        + f"<h2>Last pipeline runs</h2>{_runs(document['runs'])}"
        + f'<h2>Over time</h2><div class="cards">{"".join(_card(m, document, interactive) for m in models)}</div>'
    )


def board_page(document: dict[str, Any], *, interactive: bool) -> str:
    """The whole page; the served board (``interactive``) refreshes itself every ``REFRESH_SECONDS``."""
    script = (
        f"<script>{_SCRIPT.replace('REFRESH_MS', json.dumps(REFRESH_SECONDS * 1000))}</script>" if interactive else ""
    )
    mode = "served" if interactive else "static, read-only"
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,">'
        f"<title>Conveyor board: {escape(document['stack'])}</title><style>{_STYLE}</style></head>"
        f'<body data-mode="{"served" if interactive else "static"}"><header><h1>Conveyor board</h1>'
        f"<span>stack {escape(document['stack'])}</span><span>{mode}</span></header>"
        f'<div id="flash"></div><main id="board">{board_body(document, interactive=interactive)}</main>{script}</body></html>'
    )
