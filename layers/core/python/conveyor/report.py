"""The evidence report of one candidate version: a self-contained HTML page.

Inline CSS and inline SVG charts only: no JavaScript, no external URL, nothing fetched when
the page opens, so it can be stored next to the model and opened from anywhere. Every string
taken from the evidence goes through ``html.escape``: model names, gate messages and lineage
values may come from user-written specs and data files.

The evidence dict (missing optional sections are omitted from the page)::

    model, version, status, decision            -- the header
    metrics: {candidate: {...}, champion: {...} | None}
    gates: [{name, value, threshold, passed, message}]
    lineage: {data, spec_hash, code_version, libraries, parameters, parent_champion, execution}
    slices      -- conveyor.gates.GateReport.to_dict()["slices"]
    importance  -- GateReport.to_dict()["importance"] (or a plain {feature: importance})
    latency     -- GateReport.to_dict()["latency"]
    drift       -- conveyor.drift.DriftReport.to_dict() (or {features: [{name, method, value, threshold,
                   drifted, message}], verdict})
    robustness  -- {flip_rate, ...}
    agreement   -- GateReport.to_dict()["agreement"]
    verdict     -- {passed, status, reason, failed_gates}

:func:`build_evidence` assembles that dict; the Register stage and ``conveyor evaluate`` both use it.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeGuard

PASSED_STATUSES = frozenset({"passed", "approved", "promoted", "deployed", "champion", "serving"})
REJECTED_STATUSES = frozenset({"rejected", "failed", "error"})
CHART_LABEL_WIDTH = 170
CHART_BAR_WIDTH = 260
CHART_ROW_HEIGHT = 20
MAX_CHART_ROWS = 20
MAX_DEPTH = 4  # nesting shown for lineage values; deeper values are written inline

_CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0;color:#1f2328;background:#f6f8fa}
main{max-width:1080px;margin:0 auto;padding:16px 24px 48px}
header{padding:20px 24px;border-radius:8px;color:#fff;margin:16px 0}
header.passed{background:#1a7f37}header.rejected{background:#cf222e}header.other{background:#9a6700}
header h1{margin:0 0 6px;font-size:24px}header p{margin:4px 0;font-size:16px}
section{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:12px 20px;margin:16px 0}
h2{font-size:18px;margin:6px 0 12px}h3{font-size:15px;margin:14px 0 8px}
table{border-collapse:collapse;width:100%;font-size:14px;margin:6px 0 10px}
th,td{border-bottom:1px solid #eaeef2;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;color:#fff}
.badge.pass{background:#1a7f37}.badge.fail{background:#cf222e}.badge.none{background:#6e7781}
svg{display:block;margin:4px 0 8px}svg text{font-size:12px;fill:#1f2328}
.muted{color:#6e7781;font-size:13px}dl{margin:0}dt{font-weight:600;margin-top:8px}dd{margin:2px 0 0 16px}
ul.value{margin:2px 0;padding-left:18px}code{font-size:13px}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _finite(value: Any) -> TypeGuard[int | float]:
    return _is_number(value) and math.isfinite(value)


def _num(value: Any) -> str:
    """A cell value as escaped text: floats to 4 significant digits, None as a dash."""
    if value is None:
        return "&#8212;"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return "&#8212;" if not math.isfinite(value) else _e(f"{value:.4g}")
    if isinstance(value, Mapping):
        return _e(", ".join(f"{k} {_plain(v)}" for k, v in value.items() if v is not None))
    return _e(value)


def _plain(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) and math.isfinite(value) else str(value)


def _badge(passed: Any) -> str:
    if passed is None:
        return '<span class="badge none">n/a</span>'
    return '<span class="badge pass">pass</span>' if passed else '<span class="badge fail">fail</span>'


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], numeric: Sequence[int] = ()) -> str:
    """A table; ``rows`` cells are already-escaped HTML, ``numeric`` the column indexes to right-align."""
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="num">{cell}</td>' if i in numeric else f"<td>{cell}</td>" for i, cell in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _bar_chart(bars: Sequence[tuple[str, float | None]], title: str, *, max_value: float | None = None) -> str:
    """A horizontal bar chart as inline SVG; negative and missing values draw no bar but keep their label."""
    bars = list(bars)[:MAX_CHART_ROWS]
    if not bars:
        return ""
    finite = [abs(v) for _, v in bars if _finite(v)]
    top = max_value if max_value is not None else max(finite, default=0.0)
    height = CHART_ROW_HEIGHT * len(bars) + 6
    width = CHART_LABEL_WIDTH + CHART_BAR_WIDTH + 70
    parts = [
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="{_e(title)}">',
        f"<title>{_e(title)}</title>",
    ]
    for i, (label, value) in enumerate(bars):
        y = i * CHART_ROW_HEIGHT + 3
        shown = label if len(label) <= 26 else label[:25] + "\u2026"
        parts.append(
            f'<text x="{CHART_LABEL_WIDTH - 6}" y="{y + 13}" text-anchor="end">{_e(shown)}</text>' if shown else ""
        )
        if not _finite(value):
            parts.append(f'<text x="{CHART_LABEL_WIDTH + 4}" y="{y + 13}">n/a</text>')
            continue
        length = CHART_BAR_WIDTH * max(0.0, value) / top if top > 0 else 0.0
        colour = "#0969da" if value >= 0 else "#cf222e"
        parts.append(
            f'<rect x="{CHART_LABEL_WIDTH}" y="{y}" width="{length:.1f}" height="{CHART_ROW_HEIGHT - 6}" fill="{colour}"/>'
        )
        parts.append(f'<text x="{CHART_LABEL_WIDTH + length + 4:.1f}" y="{y + 13}">{_e(_plain(value))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _pair_chart(candidate: float | None, champion: float | None, title: str) -> str:
    """Two small bars (candidate, champion) on a shared scale, for one metric row."""
    values = [v for v in (candidate, champion) if _finite(v)]
    top = max((abs(v) for v in values), default=0.0)
    parts = [f'<svg width="170" height="28" viewBox="0 0 170 28" role="img" aria-label="{_e(title)}">']
    for i, (value, colour) in enumerate(((candidate, "#0969da"), (champion, "#8c959f"))):
        if _finite(value) and top > 0:
            parts.append(
                f'<rect x="0" y="{i * 14 + 1}" width="{150 * abs(value) / top:.1f}" height="11" fill="{colour}"/>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _section(title: str, body: str, anchor: str) -> str:
    return f'<section id="{_e(anchor)}"><h2>{_e(title)}</h2>{body}</section>'


# --- sections --------------------------------------------------------------------------------


def _header(evidence: Mapping[str, Any]) -> str:
    status = str(evidence.get("status") or "unknown")
    kind = (
        "passed"
        if status.lower() in PASSED_STATUSES
        else "rejected"
        if status.lower() in REJECTED_STATUSES
        else "other"
    )
    model, version = evidence.get("model", "model"), evidence.get("version", "")
    decision = evidence.get("decision")
    line = f"<p>{_e(decision)}</p>" if decision else ""
    verdict = evidence.get("verdict")
    failed = verdict.get("failed_gates") if isinstance(verdict, Mapping) else None
    if failed:
        line += f"<p>Failed gates: {_e(', '.join(map(str, failed)))}</p>"
    return (
        f'<header class="{kind}"><h1>{_e(model)} &#183; version {_e(version)}</h1>'
        f"<p><strong>{_e(status.upper())}</strong></p>{line}</header>"
    )


def _metrics(metrics: Mapping[str, Any]) -> str:
    candidate = metrics.get("candidate") or {}
    champion = metrics.get("champion") or {}
    names = list(dict.fromkeys([*candidate, *champion]))
    if not names:
        return ""
    rows = []
    for name in names:
        ours, theirs = candidate.get(name), champion.get(name)
        delta = ours - theirs if _is_number(ours) and _is_number(theirs) else None
        rows.append(
            [
                _e(name),
                _num(ours),
                _num(theirs),
                _num(delta),
                _pair_chart(ours, theirs, f"{name}: candidate vs champion"),
            ]
        )
    note = "" if metrics.get("champion") else '<p class="muted">No champion: nothing to compare with.</p>'
    legend = '<p class="muted">Bars: candidate (blue) above champion (grey), per metric on its own scale.</p>'
    table = _table(["metric", "candidate", "champion", "difference", "chart"], rows, numeric=(1, 2, 3))
    return _section("Metrics vs champion", note + table + legend, "metrics")


def _gates(gates: Sequence[Mapping[str, Any]]) -> str:
    if not gates:
        return ""
    rows = [
        [
            f"<code>{_e(gate.get('name', ''))}</code>",
            _badge(gate.get("passed")),
            _num(gate.get("value")),
            _num(gate.get("threshold")),
            _e(gate.get("message", "")),
        ]
        for gate in gates
    ]
    failed = sum(1 for gate in gates if gate.get("passed") is False)
    summary = f'<p class="muted">{len(gates) - failed} of {len(gates)} gates passed.</p>'
    return _section(
        "Gates", summary + _table(["gate", "result", "value", "threshold", "detail"], rows, (2, 3)), "gates"
    )


def _chart_metric(slices: Mapping[str, Any]) -> str | None:
    for metric in ("auc", "accuracy", "mae", "positive_rate"):
        if any(isinstance(row, Mapping) and row.get(metric) is not None for row in slices.values()):
            return metric
    return None


def _slices(slices: Mapping[str, Any]) -> str:
    parts = []
    for column, entry in slices.items():
        parts.append(f"<h3>{_e(column)}</h3>")
        if not isinstance(entry, Mapping) or "error" in entry:
            message = entry.get("error") if isinstance(entry, Mapping) else entry
            parts.append(f'<p class="muted">{_e(message)}</p>')
            continue
        values = entry.get("slices") or {}
        metrics = list(dict.fromkeys(key for row in values.values() if isinstance(row, Mapping) for key in row))
        rows = [[_e(name), *(_num(row.get(m)) for m in metrics)] for name, row in values.items()]
        parts.append(_table(["slice", *metrics], rows, numeric=range(1, len(metrics) + 1)))
        metric = _chart_metric(values)
        if metric is not None:
            bars = [(str(name), row.get(metric)) for name, row in values.items()]
            parts.append(f'<p class="muted">{_e(metric)} per slice</p>')
            parts.append(_bar_chart(bars, f"{column}: {metric} per slice", max_value=1.0 if metric != "mae" else None))
        gaps = entry.get("gaps") or {}
        if gaps:
            gap_rows = [
                [_e(m), _num(g.get("gap")), _e(g.get("low", "")), _e(g.get("high", ""))]
                for m, g in gaps.items()
                if isinstance(g, Mapping)
            ]
            parts.append(_table(["metric", "largest gap", "lowest slice", "highest slice"], gap_rows, (1,)))
        small = entry.get("small_slices") or []
        if small:
            parts.append(f'<p class="muted">Too small to gate: {_e(", ".join(map(str, small)))}</p>')
    return _section("Slices", "".join(parts), "slices") if parts else ""


def _importance(importance: Mapping[str, Any]) -> str:
    features = importance.get("features")
    if isinstance(features, list):
        rows = [
            (str(f.get("name", "")), f.get("share"), f.get("importance")) for f in features if isinstance(f, Mapping)
        ]
    else:  # a plain {feature: importance}
        rows = [(str(k), None, v) for k, v in importance.items() if _is_number(v)]
        rows.sort(key=lambda row: row[2] if row[2] is not None else 0.0, reverse=True)
    if not rows:
        return ""
    use_share = any(share is not None for _, share, _ in rows)
    bars = [(name, share if use_share else value) for name, share, value in rows]
    what = "share of total permutation importance" if use_share else "permutation importance"
    about = []
    if importance.get("metric"):
        about.append(f"metric drop of {importance['metric']}")
    if importance.get("rows"):
        about.append(f"{importance['rows']} rows")
    if importance.get("n_repeats"):
        about.append(f"{importance['n_repeats']} repeats")
    note = f'<p class="muted">{_e(what)}{_e(" (" + ", ".join(about) + ")" if about else "")}</p>'
    table = _table(["feature", "importance", "share"], [[_e(n), _num(v), _num(s)] for n, s, v in rows], (1, 2))
    return _section("Feature importance", note + _bar_chart(bars, what) + table, "importance")


def _latency(latency: Mapping[str, Any]) -> str:
    rows = []
    for key, label in (("single", "1 row"), ("batch", f"{latency.get('batch_rows', 'batch')} rows")):
        entry = latency.get(key)
        if isinstance(entry, Mapping):
            runs = latency.get(f"{key}_runs")
            rows.append([_e(label), _num(entry.get("p50_ms")), _num(entry.get("p99_ms")), _num(runs)])
    body = _table(["call", "p50 ms", "p99 ms", "runs"], rows, (1, 2, 3)) if rows else ""
    if latency.get("model_mb") is not None:
        body += f"<p>ONNX model size: {_num(latency['model_mb'])} MB</p>"
    return _section("Latency and size", body, "latency") if body else ""


def _drift_value(feature: Mapping[str, Any]) -> Any:
    if feature.get("value") is not None:
        return feature["value"]
    values = feature.get("values")
    if isinstance(values, Mapping):
        return {k: v for k, v in values.items() if v is not None} or None
    return None


def _drift(drift: Mapping[str, Any]) -> str:
    verdict = drift.get("verdict")
    parts = []
    if verdict is not None:
        badge = _badge(str(verdict) != "drift")
        parts.append(f"<p>{badge} verdict: <strong>{_e(verdict)}</strong></p>")
    if drift.get("summary"):
        parts.append(f'<p class="muted">{_e(drift["summary"])}</p>')
    features = [f for f in drift.get("features") or [] if isinstance(f, Mapping)]
    if features:
        rows = [
            [
                _e(f.get("name", "")),
                _e(f.get("method", "")),
                _num(_drift_value(f)),
                _num(f.get("threshold", f.get("thresholds"))),
                _badge(None if f.get("drifted") is None else not f["drifted"]),
                _e(f.get("message", "")),
            ]
            for f in features
        ]
        parts.append(_table(["feature", "method", "value", "threshold", "stable", "detail"], rows))
    return _section("Drift", "".join(parts), "drift") if parts else ""


def _robustness(robustness: Mapping[str, Any], agreement: Mapping[str, Any]) -> str:
    items = []
    if robustness.get("flip_rate") is not None:
        items.append(f"<li>Predictions changed under input noise: {_num(robustness['flip_rate'])}</li>")
    for key, value in robustness.items():
        if key != "flip_rate":
            items.append(f"<li>{_e(key)}: {_num(value)}</li>")
    for key in ("holdout", "live"):
        if agreement.get(key) is not None:
            rows = f" ({_num(agreement.get('live_rows'))} requests)" if key == "live" else ""
            items.append(f"<li>Agreement with the champion on {key} rows{rows}: {_num(agreement[key])}</li>")
    return _section("Robustness", f"<ul>{''.join(items)}</ul>", "robustness") if items else ""


def _value(value: Any, depth: int = 0) -> str:
    """Any JSON-like value as escaped HTML: nested lists and mappings as nested lists."""
    if depth >= MAX_DEPTH:
        return f"<code>{_e(value)}</code>"
    if isinstance(value, Mapping):
        if not value:
            return "&#8212;"
        items = "".join(f"<li><strong>{_e(k)}</strong>: {_value(v, depth + 1)}</li>" for k, v in value.items())
        return f'<ul class="value">{items}</ul>'
    if isinstance(value, list | tuple):
        if not value:
            return "&#8212;"
        return '<ul class="value">' + "".join(f"<li>{_value(v, depth + 1)}</li>" for v in value) + "</ul>"
    return _num(value)


def _lineage(lineage: Mapping[str, Any]) -> str:
    if not lineage:
        return ""
    items = "".join(f"<dt>{_e(key)}</dt><dd>{_value(value)}</dd>" for key, value in lineage.items())
    return _section("Lineage", f"<dl>{items}</dl>", "lineage")


def _mapping(evidence: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = evidence.get(key)
    return value if isinstance(value, Mapping) else {}


def build_evidence(
    version: Mapping[str, Any],
    *,
    evaluation: Mapping[str, Any],
    training: Mapping[str, Any] | None = None,
    details: Mapping[str, Any] | None = None,
    drift: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything that decided a candidate's fate, in one JSON-able dict (what :func:`render_report` draws).

    ``version`` holds the header and registry facts (model, version, status, decision, metrics,
    gates, lineage...); ``evaluation`` is the Evaluate stage's output (or ``CandidateAssessment.to_dict``);
    ``details`` the gate measurements (``CandidateAssessment.details()``: slices, importance,
    latency, flip rate, agreement); ``drift`` the drift report of the data that triggered the run.
    """
    evidence: dict[str, Any] = dict(version)
    evidence.setdefault(
        "metrics", {"candidate": evaluation.get("candidate") or {}, "champion": evaluation.get("champion")}
    )
    evidence.setdefault("gates", list(evaluation.get("gates") or []))
    evidence.update(evaluation=dict(evaluation), training=dict(training or {}))
    if details:
        evidence.update(
            slices=details.get("slices"),
            importance=details.get("importance"),
            latency=details.get("latency"),
            robustness={"flip_rate": details.get("flip_rate")},
            agreement=details.get("agreement"),
        )
    if drift:
        evidence["drift"] = dict(drift)
    gates = [g for g in evidence.get("gates") or [] if isinstance(g, Mapping)]
    evidence["verdict"] = {
        "passed": bool(evaluation.get("passed")),
        "status": evidence.get("status"),
        "reason": str(evaluation.get("reason", evidence.get("decision", ""))),
        "failed_gates": [str(g.get("name")) for g in gates if g.get("passed") is False],
    }
    return evidence


def render_report(evidence: Mapping[str, Any]) -> str:
    """A self-contained HTML page (inline CSS and SVG, no scripts, no URLs) for one candidate version.

    Only ``model``, ``version`` and ``status`` are expected; every other section is omitted
    when absent. Every string from ``evidence`` is escaped.
    """
    gates = [g for g in evidence.get("gates") or [] if isinstance(g, Mapping)]
    body = "".join(
        [
            _header(evidence),
            _metrics(_mapping(evidence, "metrics")),
            _gates(gates),
            _robustness(_mapping(evidence, "robustness"), _mapping(evidence, "agreement")),
            _slices(_mapping(evidence, "slices")),
            _importance(_mapping(evidence, "importance")),
            _latency(_mapping(evidence, "latency")),
            _drift(_mapping(evidence, "drift")),
            _lineage(_mapping(evidence, "lineage")),
        ]
    )
    title = f"{evidence.get('model', 'model')} version {evidence.get('version', '')}: {evidence.get('status', '')}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )
