"""The predict function's standard-library S3 and DynamoDB reads (CONVEYOR_LEAN_AWS) against a moto
server over HTTP: the same bytes and the same routing record as boto3 reads."""

from __future__ import annotations

import boto3
import pytest

from conveyor.adapters.aws import DynamoTable
from conveyor.adapters.lean_aws import LeanDynamoReader, LeanS3
from conveyor.ports import ObjectMissing
from conveyor.registry import ModelVersion, Registry, RoutingReader
from tests.component.conftest import create_registry_table, moto_server


@pytest.fixture
def endpoint(monkeypatch):
    with moto_server() as (url, _port):
        for name, value in {
            "AWS_ENDPOINT_URL": url,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "k",
            "AWS_SECRET_ACCESS_KEY": "s",
            "AWS_SESSION_TOKEN": "t",
        }.items():
            monkeypatch.setenv(name, value)
        yield url


def test_lean_reads_equal_boto3s(endpoint):
    s3 = boto3.client("s3", endpoint_url=endpoint)
    s3.create_bucket(Bucket="artifacts")
    s3.put_object(Bucket="artifacts", Key="m/models/sha256-ab c+.onnx", Body=b"\x00model bytes")
    assert LeanS3().get("artifacts", "m/models/sha256-ab c+.onnx") == b"\x00model bytes"
    with pytest.raises(ObjectMissing):
        LeanS3().get("artifacts", "m/models/none.onnx")

    create_registry_table(boto3.client("dynamodb", endpoint_url=endpoint))
    registry = Registry(DynamoTable("registry", resource=boto3.resource("dynamodb", endpoint_url=endpoint)))
    for _ in range(2):
        registry.register(ModelVersion(model="m", version=0, status="approved", artifact_key="k", sha256="s"))
    registry.promote("m", 1)
    registry.set_challenger("m", 2, 0.25)
    lean = RoutingReader(LeanDynamoReader("registry")).routing("m")
    assert lean == registry.routing("m") and lean is not None and lean.challenger_weight == 0.25
    assert RoutingReader(LeanDynamoReader("registry")).routing("nobody") is None
