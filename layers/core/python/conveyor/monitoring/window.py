"""The capture of one time window, per serving version, as the live monitor needs it.

Only served records (``served: true``, so never a shadow's) with status 200 count: they are the
answers clients received. Records are streamed file by file and reduced at once to columns of the
spec's features and one score per row, so a million records fit in memory (the records
themselves are never all held).

A feature is *masked* when the spec says it is masked in capture (``capture.pii``) or any of its
captured values is ``"***"`` (a version without a serving contract masks everything): it is left
out of drift, never compared as the string ``"***"``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from conveyor.deployment.capture_reader import capture_prefixes
from conveyor.monitoring.scores import row_score
from conveyor.ports import ObjectStore

log = logging.getLogger(__name__)

MASK = "***"


@dataclass
class VersionWindow:
    """What one version served in the window."""

    version: int
    requests: int = 0
    rows: int = 0
    columns: dict[str, list[Any]] = field(default_factory=dict)
    scores: list[float | str] = field(default_factory=list)
    masked: set[str] = field(default_factory=set)

    def add(self, record: dict[str, Any], features: list[str]) -> None:
        self.requests += 1
        inputs = record.get("inputs") or []
        predictions = record.get("predictions") or []
        probabilities = record.get("probabilities") or []
        for index, row in enumerate(inputs):
            if not isinstance(row, dict):
                continue
            self.rows += 1
            for name in features:
                value = row.get(name)
                if value == MASK:
                    self.masked.add(name)
                self.columns[name].append(value)
            if index < len(predictions):
                distribution = probabilities[index] if index < len(probabilities) else None
                self.scores.append(row_score(predictions[index], distribution))


@dataclass
class CaptureWindow:
    model: str
    start: float
    end: float
    versions: dict[int, VersionWindow] = field(default_factory=dict)
    skipped_lines: int = 0
    other_records: int = 0  # records in the window that do not count (shadow, refused, failed)


def _version(record: dict[str, Any]) -> int | None:
    try:
        return int(record["model_version"])
    except (KeyError, TypeError, ValueError):
        return None


def lines(store: ObjectStore, bucket: str, model: str, start: float, end: float) -> Iterator[bytes]:
    """Every capture line of the files that can hold records of [start, end] (hourly prefixes)."""
    for prefix in capture_prefixes(model, start, end):
        for key in store.keys(bucket, prefix):
            yield from store.get(bucket, key).splitlines()


def read_window(
    records: Iterable[bytes | dict[str, Any]], model: str, start: float, end: float, features: list[str]
) -> CaptureWindow:
    """Reduce capture lines (or parsed records) to a :class:`CaptureWindow` of [start, end]."""
    window = CaptureWindow(model, start, end)
    for item in records:
        if isinstance(item, dict):
            record = item
        else:
            if not item.strip():
                continue
            try:
                record = json.loads(item)
            except ValueError:
                window.skipped_lines += 1
                continue
        if not isinstance(record, dict) or record.get("model", model) != model:
            continue
        try:
            timestamp = float(record["timestamp"])
        except (KeyError, TypeError, ValueError):
            window.skipped_lines += 1
            continue
        if not start <= timestamp <= end:
            continue
        version = _version(record)
        if record.get("served") is False or record.get("role") == "shadow" or record.get("status") != 200:
            window.other_records += 1
            continue
        if version is None:
            window.skipped_lines += 1
            continue
        if version not in window.versions:
            window.versions[version] = VersionWindow(version, columns={name: [] for name in features})
        window.versions[version].add(record, features)
    if window.skipped_lines:
        log.warning("unreadable capture lines skipped", extra={"model": model, "skipped": window.skipped_lines})
    return window
