"""``training.window``: which accepted data objects a retrain reads.

Without a window Train reads every accepted, non-excluded object of the model, so its input grows
with every drop; a window bounds it to the newest data: the last N rows (whole objects, newest
first, until N rows are covered; the frame is then cut to its last N rows), the objects accepted
in the last N days, or the last N objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from conveyor.spec import TrainingWindow


def window_datasets(
    datasets: Sequence[dict[str, Any]], window: TrainingWindow | None, now: float
) -> list[dict[str, Any]]:
    """The objects to read, oldest first (``datasets`` is oldest first, as the registry lists them)."""
    chosen = list(datasets)
    if window is None:
        return chosen
    if window.objects is not None:
        return chosen[-window.objects :]
    if window.days is not None:
        since = now - window.days * 86400
        return [d for d in chosen if float(d.get("accepted_at") or 0.0) >= since]
    assert window.rows is not None
    covered, start = 0, len(chosen)
    while start > 0 and covered < window.rows:
        start -= 1
        covered += int(chosen[start].get("rows") or 0)
    return chosen[start:]


def window_rows(window: TrainingWindow | None) -> int | None:
    """The last rows to keep of the concatenated objects (None: all of them)."""
    return None if window is None else window.rows
