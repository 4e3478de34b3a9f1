"""One local cloud process for the persistence benchmark (run by test_persist_bench.py in a fresh process
per step, since moto's backends live as long as the process).

    python -m tests.benchmarks.persist_cloud empty|populate|restore DATA_DIR

Prints one JSON line: what was measured.
"""

from __future__ import annotations

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
SNAPSHOTS_UNDER_LOAD = 5


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


def latency_under_snapshots(cloud: Any, info: Any) -> dict[str, float]:
    """Small S3 PUTs over HTTP, without snapshots and then while snapshots run back to back."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=info.endpoint, region_name=info.region)
    bucket = _outputs(info, "DataBucketName")
    running = threading.Event()
    samples: dict[str, list[float]] = {"idle": [], "snapshots": []}
    phase = ["idle"]

    def load() -> None:
        n = 0
        while running.is_set():
            started = time.perf_counter()
            s3.put_object(Bucket=bucket, Key=f"bench/load/{n % 50}.csv", Body=b"a,b\n1,2\n")
            samples[phase[0]].append((time.perf_counter() - started) * 1000)
            n += 1

    running.set()
    worker = threading.Thread(target=load)
    worker.start()
    time.sleep(3.0)
    phase[0] = "snapshots"
    durations = []
    for _ in range(SNAPSHOTS_UNDER_LOAD):
        started = time.perf_counter()
        cloud.persistence.snapshot(force=True)
        durations.append(time.perf_counter() - started)
    running.clear()
    worker.join()

    def summary(values: list[float]) -> dict[str, float]:
        ordered = sorted(values)
        return {
            "requests": len(ordered),
            "p50_ms": round(statistics.median(ordered), 2),
            "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1], 2),
            "max_ms": round(ordered[-1], 2),
        }

    return {
        "idle": summary(samples["idle"]),  # type: ignore[dict-item]
        "during_snapshots": summary(samples["snapshots"]),  # type: ignore[dict-item]
        "incremental_snapshot_seconds": [round(d, 3) for d in durations],  # type: ignore[dict-item]
    }


def main(step: str, data_dir: Path) -> dict[str, Any]:
    from conveyor.localcloud.cloud import LocalCloud

    cloud = LocalCloud(data_dir=data_dir)
    started = time.perf_counter()
    info = cloud.start()
    result: dict[str, Any] = {"step": step, "start_seconds": round(time.perf_counter() - started, 3)}
    result["restored"] = info.restored
    try:
        if step == "populate":
            result["populated"] = populate(info)
            assert cloud.persistence is not None
            began = time.perf_counter()
            cloud.persistence.snapshot(force=True)
            result["first_snapshot_seconds"] = round(time.perf_counter() - began, 3)
            result["latency"] = latency_under_snapshots(cloud, info)
    finally:
        began = time.perf_counter()
        cloud.stop()
        result["stop_seconds"] = round(time.perf_counter() - began, 3)
    size = sum(p.stat().st_size for p in data_dir.rglob("*") if p.is_file())
    result["data_dir_mb"] = round(size / 1e6, 1)
    return result


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], Path(sys.argv[2]))))
