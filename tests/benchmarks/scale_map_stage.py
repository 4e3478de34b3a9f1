"""The local-Map leg of the scale benchmark, in its own process: start the local cloud, serve a
model, drop a CSV under batch/, wait until its execution ends; print one JSON line."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any


def main() -> None:
    csv_path, onnx_path, spec_path = (Path(a) for a in sys.argv[1:4])
    import boto3
    import yaml

    from conveyor import layout
    from conveyor.adapters.aws import DynamoTable
    from conveyor.localcloud.cloud import LocalCloud
    from conveyor.registry import ModelVersion, Registry, sha256_hex

    cloud = LocalCloud(state_dir=Path(".conveyor") / "bench" / "map-cloud")
    info = cloud.start()
    try:
        s3 = boto3.client("s3", endpoint_url=info.endpoint, region_name=info.region)
        spec = yaml.safe_load(spec_path.read_text())
        model = spec["name"] = "bench-batch"
        onnx = onnx_path.read_bytes()
        digest = sha256_hex(onnx)
        artifacts, data = info.outputs["ArtifactBucketName"], info.outputs["DataBucketName"]
        s3.put_object(Bucket=artifacts, Key=layout.artifact_key(model, digest), Body=onnx)
        s3.put_object(Bucket=artifacts, Key=layout.version_key(model, 1, layout.SPEC_FILE), Body=yaml.safe_dump(spec))
        dynamo = boto3.resource("dynamodb", endpoint_url=info.endpoint, region_name=info.region)
        registry = Registry(DynamoTable(info.outputs["RegistryTableName"], resource=dynamo))
        registry.register(ModelVersion(model, 1, "approved", layout.artifact_key(model, digest), digest))
        registry.promote(model, 1)
        sfn = boto3.client("stepfunctions", endpoint_url=info.endpoint, region_name=info.region)
        machine = info.outputs["BatchStateMachineArn"]
        started = time.perf_counter()
        s3.upload_file(str(csv_path), data, f"{model}/batch/{csv_path.name}")
        execution: dict = {}
        while time.perf_counter() - started < 3600:
            runs = sfn.list_executions(stateMachineArn=machine)["executions"]
            if runs:
                execution = sfn.describe_execution(executionArn=runs[0]["executionArn"])
                if execution["status"] != "RUNNING":
                    break
            time.sleep(0.5)
        seconds = time.perf_counter() - started
        output = json.loads(execution.get("output") or "{}")
        plan = output.get("plan", {})
        done = _chunk_results(s3, output)
        capture = _objects(s3, info.outputs["CaptureBucketName"], layout.capture_model_prefix(model))
        scored = _objects(s3, data, f"{model}/{layout.SCORED}/")
        print(
            json.dumps(
                {
                    "status": execution.get("status"),
                    "rows": plan.get("rows"),
                    "chunks": plan.get("chunks"),
                    "bytes": csv_path.stat().st_size,
                    "seconds": round(seconds, 1),
                    "rows_per_s": round((plan.get("rows") or 0) / seconds),
                    "chunks_succeeded": done["succeeded"],
                    "chunks_failed": done["failed"],
                    "rows_scored": done["rows"],
                    "row_errors": done["errors"],
                    "rows_captured": done["captured"],
                    "scored_objects": scored[0],
                    "scored_mb": round(scored[1] / 1e6, 1),
                    "capture_objects": capture[0],
                    "capture_mb": round(capture[1] / 1e6, 1),
                }
            )
        )
    finally:
        cloud.stop()


def _chunk_results(s3: Any, output: dict[str, Any]) -> dict[str, int]:
    """What the Map's workers reported, summed from the files its ResultWriter wrote."""
    details = output.get("scored", {}).get("ResultWriterDetails") or {}
    totals = {"succeeded": 0, "failed": 0, "rows": 0, "errors": 0, "captured": 0}
    if not details:
        return totals
    manifest = json.loads(s3.get_object(Bucket=details["Bucket"], Key=details["Key"])["Body"].read())
    for status, files in manifest.get("ResultFiles", {}).items():
        for entry in files:
            for result in json.loads(s3.get_object(Bucket=details["Bucket"], Key=entry["Key"])["Body"].read()):
                if status != "SUCCEEDED":
                    totals["failed"] += 1
                    continue
                totals["succeeded"] += 1
                chunk = json.loads(result["Output"])
                for name in ("rows", "errors", "captured"):
                    totals[name] += int(chunk[name])
    return totals


def _objects(s3: Any, bucket: str, prefix: str) -> tuple[int, int]:
    """How many objects under ``prefix``, and their bytes."""
    count = size = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            count += 1
            size += int(item["Size"])
    return count, size


if __name__ == "__main__":
    main()
