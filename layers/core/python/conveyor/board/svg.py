"""Small inline SVG line charts (no script, no external resource): one line per version, an optional
dashed reference line (the holdout metric), the value range and the window's ends as labels."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape

PALETTE = ("#2563eb", "#ea580c", "#16a34a", "#9333ea", "#dc2626", "#0891b2")
WIDTH, HEIGHT = 300, 96
_LEFT, _RIGHT, _TOP, _BOTTOM = 34, 6, 8, 16


def color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def number(value: float | None, digits: int = 3) -> str:
    """A short label: 1234567 -> 1.23M, 0.01234 -> 0.0123, None -> '-'."""
    if value is None or not math.isfinite(value):
        return "-"
    size = abs(value)
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e4, "k")):
        if size >= limit:
            return f"{value / limit:.{digits - 1}g}{suffix}"
    if size >= 100:
        return f"{value:.0f}"
    return f"{value:.{digits}g}"


def _day(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%m-%d %H:%M")


def _bounds(lines: dict[str, Sequence[Sequence[float]]], reference: float | None) -> tuple[float, float]:
    values = [float(p[1]) for points in lines.values() for p in points if math.isfinite(float(p[1]))]
    if reference is not None:
        values.append(reference)
    low, high = min([0.0, *values]), max(values)
    if high - low < 1e-12:
        high = low + (abs(low) or 1.0)
    return low, high


def line_chart(
    lines: dict[str, Sequence[Sequence[float]]],
    start: float,
    end: float,
    *,
    title: str,
    reference: float | None = None,
) -> str:
    """An SVG chart of ``{label: [[epoch, value], ...]}`` over ``[start, end]``."""
    label = f'<text x="{_LEFT}" y="{HEIGHT / 2}" class="empty">no data</text>'
    if not any(lines.values()):
        return _frame(title, label, "")
    low, high = _bounds(lines, reference)
    span = max(end - start, 1.0)
    plot_w, plot_h = WIDTH - _LEFT - _RIGHT, HEIGHT - _TOP - _BOTTOM

    def x(t: float) -> float:
        return _LEFT + (t - start) / span * plot_w

    def y(v: float) -> float:
        return _TOP + (high - v) / (high - low) * plot_h

    parts = []
    for index, (name, points) in enumerate(sorted(lines.items())):
        coords = " ".join(f"{x(float(t)):.1f},{y(float(v)):.1f}" for t, v in points if math.isfinite(float(v)))
        parts.append(
            f'<polyline points="{coords}" fill="none" stroke="{color(index)}" stroke-width="1.5">'
            f"<title>{escape(name or title)}</title></polyline>"
        )
    if reference is not None:
        parts.append(
            f'<line x1="{_LEFT}" x2="{WIDTH - _RIGHT}" y1="{y(reference):.1f}" y2="{y(reference):.1f}" '
            f'class="reference"><title>holdout {number(reference)}</title></line>'
        )
    axes = (
        f'<text x="{_LEFT - 3}" y="{_TOP + 8}" class="tick" text-anchor="end">{number(high)}</text>'
        f'<text x="{_LEFT - 3}" y="{HEIGHT - _BOTTOM}" class="tick" text-anchor="end">{number(low)}</text>'
        f'<text x="{_LEFT}" y="{HEIGHT - 3}" class="tick">{_day(start)}</text>'
        f'<text x="{WIDTH - _RIGHT}" y="{HEIGHT - 3}" class="tick" text-anchor="end">{_day(end)}</text>'
        f'<line x1="{_LEFT}" x2="{_LEFT}" y1="{_TOP}" y2="{HEIGHT - _BOTTOM}" class="axis"/>'
        f'<line x1="{_LEFT}" x2="{WIDTH - _RIGHT}" y1="{HEIGHT - _BOTTOM}" y2="{HEIGHT - _BOTTOM}" class="axis"/>'
    )
    return _frame(title, "".join(parts), axes)


def _frame(title: str, body: str, axes: str) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">{axes}{body}</svg>'
    )
