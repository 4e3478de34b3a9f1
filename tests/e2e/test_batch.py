"""Batch scoring on the local cloud, through the same state machine as on AWS: a CSV dropped under
``{model}/batch/`` is planned, fanned out by the Distributed Map, scored into ``{model}/scored/``
(a bad row gets an error, never a failed batch), and captured like online traffic."""

from __future__ import annotations

import csv
import io
import json
import time
from typing import Any

import boto3
import pandas as pd
import pytest
import yaml

from conveyor import layout
from conveyor.adapters.aws import DynamoTable
from conveyor.cli.target import Target
from conveyor.registry import ModelVersion, Registry, sha256_hex
from tests.conftest import DATASET, TrainedModel
from tests.e2e.conftest import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local-cloud")]
MODEL = "batch-e2e"


def _registry(cloud: Target) -> Registry:
    resource = boto3.resource(
        "dynamodb",
        endpoint_url=cloud.endpoint,
        region_name=cloud.region,
        aws_access_key_id="conveyor-local",
        aws_secret_access_key="conveyor-local",  # the local cloud's fixed fake credentials
    )
    return Registry(DynamoTable(cloud.output("RegistryTableName"), resource=resource))


def _serve(cloud: Target, trained: TrainedModel) -> None:
    """Version 1 of ``batch-e2e`` registered and serving, as Register and Deploy leave it."""
    artifacts = cloud.output("ArtifactBucketName")
    spec = yaml.safe_load(trained.spec.model_dump_json())
    spec["name"] = MODEL
    digest = sha256_hex(trained.onnx)
    cloud.s3.put_object(Bucket=artifacts, Key=layout.artifact_key(MODEL, digest), Body=trained.onnx)
    cloud.s3.put_object(Bucket=artifacts, Key=layout.version_key(MODEL, 1, layout.SPEC_FILE), Body=yaml.safe_dump(spec))
    registry = _registry(cloud)
    registry.register(ModelVersion(MODEL, 1, "approved", layout.artifact_key(MODEL, digest), digest))
    registry.promote(MODEL, 1)


def _object(cloud: Target, bucket: str, key: str) -> bytes | None:
    try:
        return bytes(cloud.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except cloud.s3.exceptions.NoSuchKey:
        return None


def test_a_batch_drop_is_scored_through_the_distributed_map(cloud: Target, trained_model: TrainedModel) -> None:
    _serve(cloud, trained_model)
    frame = pd.read_csv(DATASET).head(40)
    frame["age"] = frame["age"].astype(object)
    frame.loc[6, "age"] = "forty"  # a bad row
    data = cloud.output("DataBucketName")
    cloud.s3.put_object(Bucket=data, Key=f"{MODEL}/batch/night.csv", Body=frame.to_csv(index=False).encode())
    part = f"{MODEL}/scored/night/part-00000.csv"
    found: dict[str, Any] = {}

    def scored() -> bool:
        found["body"] = _object(cloud, data, part)
        return found["body"] is not None

    wait_until(scored, timeout=180, interval=0.5, what=f"s3://{data}/{part}")
    rows = list(csv.DictReader(io.StringIO(found["body"].decode())))
    assert len(rows) == 40
    assert list(rows[0])[:5] == ["request_id", "model_version", "prediction", "probabilities", "error"]
    assert rows[6]["error"].startswith("age: not number") and rows[6]["prediction"] == ""
    assert all(r["error"] == "" and r["prediction"] != "" for i, r in enumerate(rows) if i != 6)
    assert {r["model_version"] for r in rows} == {"1"}
    assert set(json.loads(rows[0]["probabilities"])) == {"0", "1"}
    # the rows are captured like online traffic, each under its request_id
    capture = cloud.output("CaptureBucketName")
    request_ids = {r["request_id"] for r in rows}

    def captured() -> bool:
        keys = [
            item["Key"]
            for page in cloud.s3.get_paginator("list_objects_v2").paginate(Bucket=capture, Prefix=f"{MODEL}/capture/")
            for item in page.get("Contents", [])
        ]
        records = [json.loads(line) for key in keys for line in (_object(cloud, capture, key) or b"").splitlines()]
        found["records"] = [r for r in records if r["request_id"] in request_ids]
        return len(found["records"]) == 40

    wait_until(captured, timeout=60, what="the batch's capture records")
    records = {r["request_id"]: r for r in found["records"]}
    assert {r["role"] for r in records.values()} == {"batch"}
    assert records[rows[6]["request_id"]]["status"] == 400 and records[rows[0]["request_id"]]["status"] == 200
    # the execution ends with the Map's results written by its ResultWriter (a pointer in the state)
    sfn = boto3.client(
        "stepfunctions",
        endpoint_url=cloud.endpoint,
        region_name=cloud.region,
        aws_access_key_id="conveyor-local",
        aws_secret_access_key="conveyor-local",
    )
    machine = cloud.output("BatchStateMachineArn")
    deadline = time.monotonic() + 60
    execution: dict[str, Any] = {}
    while time.monotonic() < deadline:
        (summary,) = sfn.list_executions(stateMachineArn=machine)["executions"]
        execution = sfn.describe_execution(executionArn=summary["executionArn"])
        if execution["status"] != "RUNNING":
            break
        time.sleep(0.3)
    assert execution["status"] == "SUCCEEDED", execution
    output = json.loads(execution["output"])
    assert output["plan"]["chunks"] == 1 and output["plan"]["rows"] == 40
    details = output["scored"]["ResultWriterDetails"]
    manifest = json.loads(_object(cloud, details["Bucket"], details["Key"]) or b"{}")
    (results,) = manifest["ResultFiles"]["SUCCEEDED"]
    (result,) = json.loads(_object(cloud, details["Bucket"], results["Key"]) or b"[]")
    assert json.loads(result["Output"])["rows"] == 40 and json.loads(result["Output"])["errors"] == 1
