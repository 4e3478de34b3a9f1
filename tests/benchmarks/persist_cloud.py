"""One local cloud process for the persistence benchmark (run by test_persist_bench.py in a fresh process
per step, since moto's backends live as long as the process).

    python -m tests.benchmarks.persist_cloud empty|populate|restore DATA_DIR

Prints one JSON line: what was measured.
"""

from __future__ import annotations

import gc
import json
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

MODELS = 20
VERSIONS_PER_MODEL = 10  # 200 versions
OBJECTS = 10_000
CAPTURE_RECORDS = 1_000_000
CAPTURE_FILES = 2_000  # 500 records each
ROUNDS = 8  # windows without snapshots and windows with snapshots, alternated
WINDOW_SECONDS = 2.0
SNAPSHOT_EVERY = 0.2  # in a window with snapshots: 10 times the cloud's rate (one every 2 s when state changed)
FIRST_READS = 200  # restored objects read twice: the first read loads the body from its blob


def _outputs(info: Any, name: str) -> str:
    return next(v for k, v in info.outputs.items() if k.startswith(name))


def populate(info: Any) -> dict[str, int]:
    """20 models, 200 registry versions, 10,000 objects of which 2,000 capture files with 1,000,000 records."""
    from moto.dynamodb.models import dynamodb_backends
    from moto.s3.models import s3_backends

    s3 = s3_backends["123456789012"]["aws"]
    table = dynamodb_backends["123456789012"][info.region].tables[_outputs(info, "RegistryTableName")]
    artifacts, captures = _outputs(info, "ArtifactBucketName"), _outputs(info, "CaptureBucketName")
    per_file = CAPTURE_RECORDS // CAPTURE_FILES
    for f in range(CAPTURE_FILES):
        model = f"model-{f % MODELS:02d}"
        lines = (
            f'{{"request_id":"r{f}-{i}","model":"{model}","model_version":1,"role":"champion",'
            f'"features":{{"age":{i % 90},"hhninc":{i % 7}.5,"edlevel":"1"}},"prediction":{i % 2},"score":0.{i:04d}}}'
            for i in range(per_file)
        )
        s3.put_object(captures, f"{model}/capture/2026/01/01/{f % 24:02d}/{f:06d}.jsonl", "\n".join(lines).encode())
    others = OBJECTS - CAPTURE_FILES
    for n in range(others):
        model = f"model-{n % MODELS:02d}"
        s3.put_object(artifacts, f"{model}/versions/{n // MODELS}/object-{n}.json", json.dumps({"n": n}).encode() * 20)
    for m in range(MODELS):
        for v in range(1, VERSIONS_PER_MODEL + 1):
            table.put_item(
                {
                    "pk": {"S": f"MODEL#model-{m:02d}"},
                    "sk": {"S": f"VERSION#{v:06d}"},
                    "version": {"N": str(v)},
                    "status": {"S": "archived"},
                    "metrics": {"M": {"roc_auc": {"N": "0.71"}}},
                }
            )
    return {"objects": OBJECTS, "capture_records": CAPTURE_RECORDS, "versions": MODELS * VERSIONS_PER_MODEL}


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "requests": len(ordered),
        "p50_ms": round(statistics.median(ordered), 2),
        "p99_ms": round(ordered[max(int(len(ordered) * 0.99) - 1, 0)], 2),
        "max_ms": round(ordered[-1], 2),
    }


class Load:
    """Small S3 PUTs over HTTP, one after the other, each with its start and end (perf_counter)."""

    def __init__(self, info: Any) -> None:
        import boto3

        self.s3 = boto3.client("s3", endpoint_url=info.endpoint, region_name=info.region)
        self.bucket = _outputs(info, "DataBucketName")
        self.requests: list[tuple[float, float]] = []
        self._running = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-load")

    def __enter__(self) -> Load:
        self._running.set()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._running.clear()
        self._thread.join()

    def _run(self) -> None:
        n = 0
        while self._running.is_set():
            started = time.perf_counter()
            self.s3.put_object(Bucket=self.bucket, Key=f"bench/load/{n % 50}.csv", Body=b"a,b\n1,2\n")
            self.requests.append((started, time.perf_counter()))
            n += 1


def split(
    requests: list[tuple[float, float]], busy: list[tuple[float, float]], since: float
) -> tuple[list[float], list[float]]:
    """Latencies (ms) of the requests that overlapped a ``busy`` interval, and of the others."""
    during: list[float] = []
    without: list[float] = []
    for started, ended in requests:
        if started < since:
            continue
        overlaps = any(started < b_end and ended > b_start for b_start, b_end in busy)
        (during if overlaps else without).append((ended - started) * 1000)
    return during, without


class FullCollections:
    """The process's full garbage collections (generation 2), each as a (start, end) interval: they hold the
    GIL for as long as they walk moto's objects, snapshot or not, so a request they overlap is told apart."""

    def __init__(self) -> None:
        self.intervals: list[tuple[float, float]] = []
        self._started = 0.0

    def __enter__(self) -> FullCollections:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.intervals.append((self._started, time.perf_counter()))


def _overlaps(request: tuple[float, float], intervals: list[tuple[float, float]]) -> bool:
    return any(request[0] < end and request[1] > start for start, end in intervals)


def latency_under_snapshots(cloud: Any, info: Any) -> dict[str, Any]:
    """Windows without snapshots alternated with windows with a snapshot every SNAPSHOT_EVERY seconds, under
    a steady load of PUTs (each snapshot has their changes to write; the background snapshots are off: the
    windows decide when one runs). A request that overlapped a snapshot counts as during; every other
    request as without."""
    busy: list[tuple[float, float]] = []
    cpu: list[float] = []
    with FullCollections() as collections, Load(info) as load:
        time.sleep(1.0)  # the client's connections are warm
        since = time.perf_counter()
        for _ in range(ROUNDS):
            time.sleep(WINDOW_SECONDS)
            window_end = time.perf_counter() + WINDOW_SECONDS
            while time.perf_counter() < window_end:
                started, thread_started = time.perf_counter(), time.thread_time()
                cloud.persistence.snapshot(force=True)
                busy.append((started, time.perf_counter()))
                cpu.append(time.thread_time() - thread_started)
                time.sleep(max(0.0, started + SNAPSHOT_EVERY - time.perf_counter()))
    during, without = split(load.requests, busy, since)
    clear = [r for r in load.requests if not _overlaps(r, collections.intervals)]  # no full collection in them
    during_clear, without_clear = split(clear, busy, since)
    seconds = [end - start for start, end in busy]
    pauses = [end - start for start, end in collections.intervals]
    return {
        "without_snapshots": summary(without),
        "during_snapshots": summary(during),
        "without_snapshots_no_full_gc": summary(without_clear),
        "during_snapshots_no_full_gc": summary(during_clear),
        "full_collections": len(pauses),
        "full_collection_ms_max": round(max(pauses, default=0.0) * 1000, 1),
        "snapshots": len(busy),
        "snapshot_seconds_p50": round(statistics.median(seconds), 3),
        "snapshot_seconds_max": round(max(seconds), 3),
        "snapshot_cpu_ms_p50": round(statistics.median(cpu) * 1000, 1),
    }


def first_snapshot_under_load(cloud: Any, info: Any) -> dict[str, Any]:
    """The first snapshot of the populated state (every body new: hashed and written) under the same load."""
    with Load(info) as load:
        time.sleep(1.0)
        since = time.perf_counter()
        time.sleep(WINDOW_SECONDS)
        started = time.perf_counter()
        cloud.persistence.snapshot(force=True)
        ended = time.perf_counter()
        time.sleep(WINDOW_SECONDS)
    during, without = split(load.requests, [(started, ended)], since)
    return {"seconds": round(ended - started, 3), "during": summary(during), "without": summary(without)}


def first_reads(info: Any) -> dict[str, Any]:
    """GETs of restored capture files: the first read of each loads its body from the data directory."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=info.endpoint, region_name=info.region)
    bucket = _outputs(info, "CaptureBucketName")
    keys = [f"model-{f % MODELS:02d}/capture/2026/01/01/{f % 24:02d}/{f:06d}.jsonl" for f in range(FIRST_READS)]
    result = {}
    for name in ("first", "again"):
        latencies = []
        for key in keys:
            started = time.perf_counter()
            s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            latencies.append((time.perf_counter() - started) * 1000)
        result[name] = summary(latencies)
    return result


def main(step: str, data_dir: Path) -> dict[str, Any]:
    from conveyor.localcloud.cloud import LocalCloud

    cloud = LocalCloud(data_dir=data_dir)
    assert cloud.persistence is not None
    if step == "populate":
        cloud.persistence.interval = 3600.0  # no background snapshot: the benchmark decides when one runs
    started = time.perf_counter()
    info = cloud.start()
    result: dict[str, Any] = {"step": step, "start_seconds": round(time.perf_counter() - started, 3)}
    result["restored"] = info.restored
    try:
        if step == "populate":
            result["populated"] = populate(info)
            result["first_snapshot"] = first_snapshot_under_load(cloud, info)
            result["latency"] = latency_under_snapshots(cloud, info)
        if step == "restore":
            result["reads"] = first_reads(info)
    finally:
        began = time.perf_counter()
        cloud.stop()
        result["stop_seconds"] = round(time.perf_counter() - began, 3)
    size = sum(p.stat().st_size for p in data_dir.rglob("*") if p.is_file())
    result["data_dir_mb"] = round(size / 1e6, 1)
    return result


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], Path(sys.argv[2]))))
