"""S3 keys of the monitoring work (``conveyor/layout.py`` does not exist yet on main: when it does,
these move there).

- capture bucket ``{model}/monitor/YYYY/MM/DD/HH/{run}.json``: one live-monitor report per run,
  under the UTC hour of the window's end;
- capture bucket ``{model}/labels-joined/YYYY/MM/DD/HH/{label-object}.jsonl``: labels joined with
  the served records they label, under the hour of the *request* (so the monitor reads the
  labels of its window by the same hourly prefixes as the capture);
- data bucket ``{model}/labels/...``: label files as dropped (CSV or Parquet);
- data bucket ``{model}/quarantine/labels/...``: a malformed label file and its report.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

LABELS = "labels"


def _hour(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y/%m/%d/%H")


def hour_prefixes(model: str, kind: str, start: float, end: float) -> list[str]:
    """``{model}/{kind}/YYYY/MM/DD/HH/`` for every UTC hour that overlaps [start, end]."""
    hour, last = int(start // 3600), int(end // 3600)
    return [f"{model}/{kind}/{_hour(h * 3600)}/" for h in range(hour, last + 1)]


def monitor_report_key(model: str, end: float, run: str) -> str:
    return f"{model}/monitor/{_hour(end)}/{run}.json"


def labels_joined_key(model: str, request_timestamp: float, label_object: str) -> str:
    """One file per (label object version, request hour): a label object delivered twice rewrites the same keys."""
    return f"{model}/labels-joined/{_hour(request_timestamp)}/{label_object}.jsonl"


def label_object_id(bucket: str, key: str, version: str | None) -> str:
    """A stable name for one version of one label object."""
    return hashlib.sha256(f"{bucket}\n{key}\n{version or ''}".encode()).hexdigest()[:32]


def model_of_label_key(key: str) -> str | None:
    """``{model}/labels/...`` -> model, or None for any other key."""
    parts = key.split("/")
    if len(parts) >= 3 and parts[1] == LABELS and parts[0] and parts[-1]:
        return parts[0]
    return None


def label_quarantine_key(key: str) -> str:
    """``{model}/labels/x.csv`` -> ``{model}/quarantine/labels/x.csv``."""
    model, rest = key.split("/", 1)
    return f"{model}/quarantine/{rest}"
