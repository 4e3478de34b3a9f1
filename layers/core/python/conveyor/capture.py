"""Capture: the records the prediction API writes of each request (format: ``docs/capture.md``).

Records are JSON lines. In the cloud the predict function writes each one as a line of its log
(``LogLineCapture``, after the response: ``conveyor.afterwork``); a CloudWatch Logs subscription
filter sends those lines to Kinesis Data Firehose, which partitions them by model into
``{model}/capture/YYYY/MM/DD/HH/`` of the capture bucket. Locally (and wherever no log delivery is
configured) ``BatchingS3Capture`` writes the same lines to the same layout itself, in batches.
Standard library only: this is on the predict path.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import logging
import sys
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from conveyor.jsonsafe import json_safe  # noqa: F401  (re-exported: serving imports it from here)
from conveyor.layout import capture_key

if TYPE_CHECKING:
    from conveyor.ports import ObjectStore

log = logging.getLogger(__name__)

MAX_RECORD_BYTES = 1_000_000  # Firehose refuses records over 1,000 KiB: a bigger one is cut to its metadata
# A CloudWatch Logs event is at most 256 KiB (with 26 bytes of overhead): a longer log line is split
# into several events, which the subscription filter would not recognise. Cut to its metadata too.
MAX_LOG_LINE_BYTES = 256 * 1024 - 26
# The fields that identify a capture line in the function's log (the subscription filter's pattern).
CAPTURE_LINE_FIELDS = ("request_id", "routing_key", "role", "served")


def captured(request_id: str, sample_rate: float) -> bool:
    """Whether a request is in the sample: a stable hash of its request id against the rate, so a
    retried request (same id) is captured or not alike. Salted apart from the traffic split's hash,
    so sampling does not favour the champion's or the challenger's side."""
    if sample_rate >= 1.0:
        return True
    if sample_rate <= 0.0:
        return False
    digest = hashlib.sha256(b"capture\0" + request_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < sample_rate


def record_line(record: dict[str, Any], limit: int = MAX_RECORD_BYTES) -> bytes:
    """One record as a JSON line (newline-terminated). A record over ``limit`` bytes (Firehose's
    record limit) keeps its metadata and drops its inputs and outputs, saying so in ``truncated``."""
    line = json.dumps(record, separators=(",", ":"), allow_nan=False, default=str).encode() + b"\n"
    if len(line) <= limit:
        return line
    slim = {**record, "inputs": [], "predictions": [], "probabilities": None, "truncated": True}
    return json.dumps(slim, separators=(",", ":"), allow_nan=False, default=str).encode() + b"\n"


_writers: weakref.WeakSet[BatchingS3Capture] = weakref.WeakSet()


def flush_all() -> None:
    """Flush every batching writer of this process (at shutdown: atexit, or the local cloud's stop)."""
    for writer in list(_writers):
        writer.flush()


atexit.register(flush_all)


class BatchingS3Capture:
    """Buffers capture records and writes them to ``bucket`` as one JSON-lines object per model and
    batch: when ``max_records`` are buffered, when the oldest has waited ``max_seconds`` (a
    background thread checks), and at shutdown (``flush_all``).

    A failed write is logged and its records counted in ``dropped``; it never reaches a request.
    """

    def __init__(
        self,
        store: ObjectStore,
        bucket: str,
        *,
        max_records: int = 100,
        max_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        background: bool = True,
    ) -> None:
        self._store = store
        self._bucket = bucket
        self._max_records = max_records
        self._max_seconds = max_seconds
        self._clock = clock
        self._buffer: list[dict[str, Any]] = []
        self._oldest = 0.0
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._background = background
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.written = 0
        self.dropped = 0
        self.objects = 0
        _writers.add(self)

    def put(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        with self._lock:
            if not self._buffer:
                self._oldest = self._clock()
            self._buffer.extend(records)
            due = len(self._buffer) >= self._max_records
        if due:
            self.flush()
        elif self._background and self._thread is None:
            self._start_timer()

    def flush_if_due(self) -> None:
        with self._lock:
            due = bool(self._buffer) and self._clock() - self._oldest >= self._max_seconds
        if due:
            self.flush()

    def flush(self) -> None:
        with self._flush_lock:
            with self._lock:
                batch, self._buffer = self._buffer, []
            by_model: dict[str, list[dict[str, Any]]] = {}
            for record in batch:
                by_model.setdefault(str(record.get("model", "unknown")), []).append(record)
            for model, records in by_model.items():
                try:
                    body = b"".join(record_line(r) for r in records)
                    key = capture_key(model, float(records[0].get("timestamp") or time.time()))
                    self._store.put(self._bucket, key, body, "application/x-ndjson")
                except Exception:  # a capture failure is never a request's failure
                    self.dropped += len(records)
                    log.warning("capture write failed", exc_info=True, extra={"model": model, "records": len(records)})
                else:
                    self.written += len(records)
                    self.objects += 1

    def close(self) -> None:
        self._stop.set()
        self.flush()

    def _start_timer(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="capture-flush", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._max_seconds / 4):
            self.flush_if_due()


class LogLineCapture:
    """Each record as one line of the function's log (stdout), for the subscription filter to send to
    Firehose (infra/constructs/serving.py). The line is the record itself, as it lands in the bucket;
    one ``write`` per record, so lines from two threads never interleave."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self.written = 0

    def put(self, records: list[dict[str, Any]]) -> None:
        stream = self._stream or sys.stdout  # looked up per call: a test (or the local cloud) may swap it
        for record in records:
            stream.write(record_line(record, MAX_LOG_LINE_BYTES).decode())
            self.written += 1
        stream.flush()

    def flush(self) -> None:
        return


class NullCapture:
    """No capture bucket configured: records are dropped (counted)."""

    def __init__(self) -> None:
        self.dropped = 0

    def put(self, records: list[dict[str, Any]]) -> None:
        self.dropped += len(records)

    def flush(self) -> None:
        return
