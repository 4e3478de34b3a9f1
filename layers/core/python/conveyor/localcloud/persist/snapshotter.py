"""Persistence of the local cloud: restore at start, snapshot every few seconds when something changed, and at stop.

A snapshot is taken in two steps. *Collect* copies what moto holds into plain records, quickly and
in this order: Step Functions executions, DynamoDB items (under the write lock), S3 key references,
SQS messages, SNS subscriptions, CloudWatch data. Executions first: a state the history shows as
finished has its effects in the data collected after it, so resuming an interrupted execution never
skips work (it may redo a stage, and the stages are idempotent). *Write* hashes and stores new
object bodies and writes the JSON-lines sections, outside any lock, in this thread.

A snapshot costs what changed, not what is stored: S3 keys, finished executions and metric data points
are encoded once and their lines reused (``s3state``, ``executions``, ``services.MetricChunks``), and a
section is written in one call. So a snapshot of 10,000 objects after a few PUTs runs for milliseconds
of Python, allocates almost nothing the garbage collector tracks (a burst of long-lived allocations
brings on a full collection, which holds the GIL for hundreds of milliseconds), and holds up no request.
A restore runs with the collector paused and then freezes what it built (and what the start built),
and each snapshot freezes what the state gained since the last one: the collector never walks that
long-lived state again (a full collection of it held the GIL for ~170 ms, stalling every request).

Change detection: every request to the moto server that is not a read (GET/HEAD, or an action named
Get*/List*/Describe*/Query/Scan/Receive*) bumps a counter; Step Functions history events and metric
data points that arrive without a request count too.

Loss on ``kill -9``: at most ``interval`` seconds (2 s) plus one snapshot's write time.
"""

from __future__ import annotations

import gc
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from conveyor.localcloud.persist import executions, s3state, services
from conveyor.localcloud.persist.store import DataDir, Snapshot, StateDirError

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 2.0
_READ_ACTION = re.compile(r"^(Get|List|Describe|Query|Scan|Receive|BatchGet|Head)")
_changes = [0]  # requests that may have changed state (a list: bumped from moto's request threads)


def _is_read(environ: dict[str, Any]) -> bool:
    if environ.get("REQUEST_METHOD") in ("GET", "HEAD", "OPTIONS"):
        return True
    target = str(environ.get("HTTP_X_AMZ_TARGET") or "")
    if target:
        return bool(_READ_ACTION.match(target.rsplit(".", 1)[-1]))
    path = str(environ.get("PATH_INFO") or "")
    if "/operation/" in path:  # smithy RPC v2 (CBOR): /service/X/operation/Action
        return bool(_READ_ACTION.match(path.rsplit("/", 1)[-1]))
    return path.startswith("/moto-api")


def install_change_counter() -> None:
    """Count the moto server's state-changing requests (a class-level patch, like the Lambda runtime's)."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    call = DomainDispatcherApplication.__call__
    if getattr(call, "__conveyor_counted__", False):
        return

    def counted(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
        if not _is_read(environ):
            _changes[0] += 1
        return call(self, environ, start_response)

    counted.__conveyor_counted__ = True  # type: ignore[attr-defined]
    DomainDispatcherApplication.__call__ = counted  # type: ignore[method-assign]


def _no_changes() -> int:
    return 0


@dataclass
class Extension:
    """State kept by a part of the local cloud outside moto (e.g. schedules): records out, records in, and
    a counter of its changes (a change that comes with no request to moto still leads to a snapshot)."""

    dump: Callable[[], list[dict[str, Any]]]
    load: Callable[[list[dict[str, Any]]], None]
    changes: Callable[[], int] = _no_changes


@dataclass
class RestoreReport:
    snapshot: str | None = None
    objects: int = 0
    items: int = 0
    executions: int = 0
    messages: int = 0
    metric_data: int = 0
    interrupted: list[str] = field(default_factory=list)
    skipped_tables: list[str] = field(default_factory=list)
    seconds: float = 0.0
    read_seconds: float = 0.0  # reading and verifying the snapshot, before any of it is applied


class Persistence:
    """One data directory for one running local cloud."""

    def __init__(self, data: DataDir, region: str, *, interval: float = DEFAULT_INTERVAL) -> None:
        self.data = data
        self.region = region
        self.interval = interval
        self.extensions: dict[str, Extension] = {}
        self.snapshots = 0
        self.last_seconds = 0.0
        self.read_seconds = 0.0
        self._s3 = s3state.S3Collector()
        self._executions = executions.ExecutionCollector()
        self._metrics = services.MetricChunks()
        self._lock = threading.Lock()  # one snapshot at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seen: tuple[int, ...] = ()
        # per kept snapshot: (its S3 records, the other blobs it names); the S3 blobs are listed when needed
        self._referenced: list[tuple[dict[str, s3state.BucketRecords], set[str]]] = []
        self._usable = False  # False until the restore succeeded: a failed start never overwrites state

    # restore ------------------------------------------------------------------------------------
    def open(self) -> Snapshot | None:
        """Check, lock and fully read (and verify) the current snapshot; nothing is applied yet."""
        started = time.perf_counter()
        self.data.open()
        snapshot = self.data.read_current()
        if snapshot is not None:
            s3state.read_segments(self.data, snapshot)
            needed = s3state.blobs(snapshot.section(s3state.SECTION_OBJECTS))
            needed |= {e["history"] for e in snapshot.section(executions.SECTION)}
            needed |= {m["chunk"] for m in snapshot.section("cloudwatch_metrics") if "chunk" in m}
            self.data.verify_blobs(needed)
        self.read_seconds = time.perf_counter() - started
        return snapshot

    def restore(self, snapshot: Snapshot | None) -> RestoreReport:
        """Put ``snapshot`` into moto's backends (the stack's resources exist already)."""
        started = time.perf_counter()
        report = RestoreReport()
        collecting = gc.isenabled()
        gc.disable()  # tens of thousands of long-lived objects: collections on the way would walk them all
        try:
            if snapshot is not None:
                report.snapshot = snapshot.name
                self._apply_or_refuse(snapshot, report)
        finally:
            if collecting:
                gc.enable()
        gc.freeze()  # the start's and the restored state's objects: no later collection walks them
        self._seen = self._fingerprint()
        self._usable = True
        report.seconds = time.perf_counter() - started
        report.read_seconds = self.read_seconds
        return report

    def _apply_or_refuse(self, snapshot: Snapshot, report: RestoreReport) -> None:
        try:
            self._apply(snapshot, report)
        except Exception as error:
            log.exception("restoring %s failed", self.data.path)
            raise StateDirError(
                f"{self.data.path}: snapshot {snapshot.name} could not be restored ({type(error).__name__}: "
                f"{error}); nothing on disk was changed. {self.data._advice()}"
            ) from error

    def _apply(self, snapshot: Snapshot, report: RestoreReport) -> None:
        region, data = self.region, self.data
        names = (s3state.SECTION_BUCKETS, s3state.SECTION_OBJECTS, s3state.SECTION_TAGS, s3state.SEGMENT_REFERENCES)
        s3_sections = {name: snapshot.section(name) for name in names}
        report.objects = s3state.restore(
            data, {**s3_sections, "lines": snapshot.section_lines(s3state.SECTION_OBJECTS)}, self._s3
        )
        report.items, report.skipped_tables = services.restore_dynamodb(region, snapshot.section("dynamodb"))
        services.restore_sns(region, snapshot.section("sns"))
        report.metric_data = services.restore_cloudwatch(
            data, region, snapshot.section("cloudwatch_metrics"), snapshot.section("cloudwatch_alarms")
        )
        self._metrics.chunks = [
            (m["count"], m["chunk"]) for m in snapshot.section("cloudwatch_metrics") if "chunk" in m
        ]
        self._metrics.tail = [  # the data points after the chunks, as they were encoded
            line[len(b'{"datum":') : -1]
            for line in snapshot.section_lines("cloudwatch_metrics")
            if line.startswith(b'{"datum":')
        ]
        saved = snapshot.section(executions.SECTION)
        report.executions = len(saved)
        lines = snapshot.section_lines(executions.SECTION)
        report.interrupted = executions.restore(data, region, saved, lines, self._executions)
        for name, extension in self.extensions.items():
            extension.load(snapshot.section(f"x_{name}"))
        report.messages = services.restore_sqs(region, snapshot.section("sqs"))  # last: they refer to the rest

    # snapshots ------------------------------------------------------------------------------------
    def _fingerprint(self) -> tuple[int, ...]:
        events = 0
        for machine in list(executions.backend(self.region).state_machines):
            for execution in list(machine.executions):
                manager = getattr(getattr(execution.exec_worker, "env", None), "event_manager", None)
                events += len(getattr(manager, "_history_event_list", None) or ())
        from moto.cloudwatch.models import cloudwatch_backends

        metric_data = len(cloudwatch_backends[s3state.ACCOUNT][self.region].metric_data)
        extensions = sum(extension.changes() for extension in self.extensions.values())
        return (_changes[0], events, metric_data, extensions)

    def snapshot(self, *, force: bool = False) -> bool:
        """Write a snapshot if anything changed since the last one (or ``force``); whether one was written."""
        if not self._usable:
            return False
        with self._lock:
            seen = self._fingerprint()
            if seen == self._seen and not force:
                return False
            started = time.perf_counter()
            # What the state gained since the last snapshot (and then the snapshot's own caches) moves out
            # of the cyclic collector's reach, as the restored state does: a full collection walks every
            # tracked object holding the GIL (about 170 ms with 10,000 objects, a stall for every request),
            # and a snapshot's allocations would bring one on. Freed by reference counting as before; only
            # a reference cycle that dies after its freeze stays (the price of no full-collection pauses).
            gc.freeze()
            self._write()
            gc.freeze()
            self._seen = seen
            self.snapshots += 1
            self.last_seconds = time.perf_counter() - started
            return True

    def _write(self) -> None:
        data, region = self.data, self.region
        # Collect (quick copies, in the order the module docstring explains), then write.
        execution_lines, execution_blobs = self._executions.collect(data, region)
        tables = services.collect_dynamodb(region)
        s3 = self._s3.collect()
        queues = services.collect_sqs(region)
        subscriptions = services.collect_sns(region)
        metric_lines = self._metrics.collect(data, region)
        alarms = services.collect_alarms(region)
        extra = {name: extension.dump() for name, extension in self.extensions.items()}
        with data.new_snapshot() as writer:
            writer.add(s3state.SECTION_BUCKETS, s3.buckets)
            writer.add_lines(s3state.SECTION_OBJECTS, self._s3.lines(data, s3))
            writer.add(s3state.SECTION_TAGS, s3.tags)
            writer.add("dynamodb", tables)
            writer.add("sqs", queues)
            writer.add("sns", subscriptions)
            writer.add_lines("cloudwatch_metrics", metric_lines)
            writer.add("cloudwatch_alarms", alarms)
            writer.add_lines(executions.SECTION, execution_lines)
            for name, records in extra.items():
                writer.add(f"x_{name}", records)
        others = execution_blobs | {blob for _, blob in self._metrics.chunks}
        self._referenced = [*self._referenced[-1:], (self._s3.cache, others)]

    def collect_garbage(self) -> int:
        """Delete blobs neither of the kept snapshots names (only once both were written by this process),
        nor a restored body not read yet."""
        if len(self._referenced) < 2:
            return 0
        referenced = s3state.pending_blobs()
        for s3_records, others in self._referenced:
            referenced |= s3state.named_blobs(s3_records) | others
        return self.data.collect_garbage(referenced)

    # background ---------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="local-cloud-snapshots", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                if self.snapshot() and self.snapshots % 30 == 0:
                    self.collect_garbage()
            except Exception:
                log.exception("snapshot of %s failed; the previous one stays current", self.data.path)

    def stop(self) -> None:
        """The last snapshot (everything up to now), then release the directory."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        try:
            self.snapshot()
            self.collect_garbage()
        finally:
            self.data.close()
