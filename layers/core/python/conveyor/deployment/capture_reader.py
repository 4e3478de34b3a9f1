"""Reading capture records (``docs/capture.md``) of a time window from the capture bucket."""

from __future__ import annotations

import json
import logging
from typing import Any

from conveyor.layout import capture_prefix
from conveyor.ports import ObjectStore

log = logging.getLogger(__name__)


def capture_prefixes(model: str, start: float, end: float) -> list[str]:
    """The hourly prefixes (``{model}/capture/YYYY/MM/DD/HH/``) that can hold records from [start, end].

    A file sits under the hour of its first record, so the hour before ``start`` is read too.
    """
    hour = int(start // 3600) - 1
    last = int(end // 3600)
    prefixes = []
    while hour <= last:
        prefixes.append(capture_prefix(model, hour * 3600))
        hour += 1
    return prefixes


def read_capture_prefix(store: ObjectStore, bucket: str, prefix: str, model: str) -> list[dict[str, Any]]:
    """Every capture record of ``model`` in the files under ``prefix`` (one hour); unreadable lines are skipped."""
    records: list[dict[str, Any]] = []
    skipped = 0
    for key in store.keys(bucket, prefix):
        for line in store.get(bucket, key).splitlines():
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                float(record["timestamp"])
            except (ValueError, KeyError, TypeError):
                skipped += 1
                continue
            if isinstance(record, dict) and record.get("model", model) == model:
                records.append(record)
    if skipped:
        log.warning("unreadable capture lines skipped", extra={"model": model, "skipped": skipped, "prefix": prefix})
    return records


def read_capture(store: ObjectStore, bucket: str, model: str, start: float, end: float) -> list[dict[str, Any]]:
    """Every capture record of ``model`` with ``start <= timestamp <= end``; unreadable lines are skipped."""
    return [
        record
        for prefix in capture_prefixes(model, start, end)
        for record in read_capture_prefix(store, bucket, prefix, model)
        if start <= float(record["timestamp"]) <= end
    ]
