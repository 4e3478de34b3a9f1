"""CloudWatch embedded metric format (EMF) on the local cloud.

On AWS, CloudWatch Logs turns every EMF line a function prints into metric data. Locally the handlers run
in this process and print to its stdout, so ``StdoutTee`` stands where the log service stands: it passes
everything through unchanged and hands each complete line that is an EMF document to a callback. The
serving code is the same code that runs on AWS; nothing in it knows about the tee.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

log = logging.getLogger(__name__)

_EMF_START = '{"_aws"'


@dataclass(frozen=True)
class Sample:
    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...]  # sorted (name, value) pairs: the metric's identity
    timestamp: float  # epoch seconds
    value: float
    unit: str = "None"


def parse_emf(line: str) -> list[Sample]:
    """The metric samples of one EMF document (every dimension set, every value of a value array)."""
    document = json.loads(line)
    meta = document["_aws"]
    timestamp = float(meta.get("Timestamp", time.time() * 1000)) / 1000.0
    samples: list[Sample] = []
    for directive in meta.get("CloudWatchMetrics", []):
        namespace = str(directive["Namespace"])
        for dimension_set in directive.get("Dimensions") or [[]]:
            dimensions = tuple(sorted((str(k), str(document[k])) for k in dimension_set))
            for metric in directive.get("Metrics", []):
                raw = document.get(metric["Name"])
                values = raw if isinstance(raw, list) else [raw]
                unit = str(metric.get("Unit", "None"))
                samples.extend(
                    Sample(namespace, str(metric["Name"]), dimensions, timestamp, float(v), unit)
                    for v in values
                    if isinstance(v, int | float)
                )
    return samples


class StdoutTee:
    """A stand-in for ``sys.stdout``: writes go through to ``stream``; complete EMF lines also go to
    ``on_samples``. Lines are assembled per thread (``print`` writes the text and the newline apart)."""

    def __init__(self, stream: TextIO, on_samples: Callable[[list[Sample]], None]) -> None:
        self.stream = stream
        self._on_samples = on_samples
        self._local = threading.local()

    def write(self, text: str) -> int:
        written = self.stream.write(text)
        pending: str = getattr(self._local, "pending", "") + text
        if "\n" in pending:
            *lines, pending = pending.split("\n")
            for line in lines:
                if line.startswith(_EMF_START):
                    self._deliver(line)
        # Only EMF lines need assembling; keep nothing else (a long log line costs no memory).
        keep = pending.startswith(_EMF_START) or _EMF_START.startswith(pending)
        self._local.pending = pending if keep else ""
        return written

    def _deliver(self, line: str) -> None:
        try:
            samples = parse_emf(line)
        except (ValueError, KeyError, TypeError):
            log.warning("an EMF line could not be read", exc_info=True)
            return
        if samples:
            self._on_samples(samples)

    def flush(self) -> None:
        self.stream.flush()

    def __getattr__(self, name: str) -> Any:  # encoding, fileno, isatty...: the real stream's
        return getattr(self.stream, name)
