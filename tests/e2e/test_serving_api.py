"""The prediction API of the local cloud over HTTP: schemathesis-generated requests from the API's
own OpenAPI document never get a 5xx; a shadow's answers reach the capture bucket and never the
client; captures land in the documented layout.

The model here is its own (``serving-e2e``, the demo spec under another name), dropped and trained
through the same pipeline: ``first_version`` of test_local_cloud.py is module-scoped and drops the
1984-1985 file for ``doctor-visits``, so a second module reusing it would drop the same content
again and be refused as a repeat (and the other module's tests change that model's routing).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
import schemathesis
import yaml
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from conveyor.adapters.aws import DynamoTable
from conveyor.cli.target import Target
from conveyor.registry import Registry
from tests.conftest import DEMO_ROW, DEMO_SPEC
from tests.e2e.conftest import wait_until
from tests.e2e.test_local_cloud import _wait_for_end, _years

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local-cloud")]
MODEL = "serving-e2e"
CAPTURE_KEY = re.compile(rf"^{MODEL}/capture/\d{{4}}/\d{{2}}/\d{{2}}/\d{{2}}/[0-9a-f-]{{36}}\.jsonl$")
RESPONSE_KEYS = {"model", "model_version", "request_id", "predictions", "probabilities", "warnings", "fallback"}
ROW = DEMO_ROW


def _registry(cloud: Target) -> Registry:
    resource = boto3.resource(
        "dynamodb",
        endpoint_url=cloud.endpoint,
        region_name=cloud.region,
        aws_access_key_id="conveyor-local",
        aws_secret_access_key="conveyor-local",  # the local cloud's fixed fake credentials
    )
    return Registry(DynamoTable(cloud.output("RegistryTableName"), resource=resource))


def _captures(cloud: Target, request_ids: set[str], timeout: float = 120) -> list[dict[str, Any]]:
    """Capture records of these requests, once the batch writer (about 1 s) has written them all."""
    bucket = cloud.output("CaptureBucketName")
    deadline = time.monotonic() + timeout
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        found = []
        for page in cloud.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{MODEL}/capture/"):
            for item in page.get("Contents", []):
                assert CAPTURE_KEY.match(item["Key"]), item["Key"]
                body = cloud.s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode()
                found.extend(r for r in map(json.loads, body.splitlines()) if r["request_id"] in request_ids)
        if {r["request_id"] for r in found} >= request_ids:
            return found
        time.sleep(0.3)
    pytest.fail(f"captures of {sorted(request_ids - {r['request_id'] for r in found})[:5]} not written in {timeout} s")


@pytest.fixture(scope="module")
def served(cloud: Target, tmp_path_factory: pytest.TempPathFactory) -> Target:
    """``serving-e2e`` v1 serving (PII: hhninc), with itself as shadow: every request is scored twice."""
    spec = yaml.safe_load(DEMO_SPEC.read_text())
    spec.update(name=MODEL, capture={"sample_rate": 1.0, "pii": ["hhninc"]})
    artifacts = cloud.output("ArtifactBucketName")
    cloud.s3.put_object(Bucket=artifacts, Key=f"{MODEL}/spec.yaml", Body=yaml.safe_dump(spec).encode())
    data: Path = _years(tmp_path_factory.mktemp("serving"), "serving_1984_1985.csv", [1984, 1985])
    key = f"{MODEL}/incoming/{data.name}"
    cloud.s3.put_object(Bucket=cloud.output("DataBucketName"), Key=key, Body=data.read_bytes())
    execution = _wait_for_end(cloud, key)
    assert execution["status"] == "SUCCEEDED", execution
    registry = _registry(cloud)
    version = registry.get(MODEL, 1)
    assert version.contract_key and version.status == "production"
    registry.set_shadow(MODEL, 1)
    probes = (f"shadow-probe-{i}" for i in range(1000))

    def shadow_scores() -> bool:
        # The predict function caches the routing record for ROUTING_CACHE_SECONDS: wait until it
        # sees the shadow, i.e. a request's capture holds a shadow record.
        request_id = next(probes)
        response = requests.post(
            f"{cloud.api_url}/models/{MODEL}/predict",
            json={"instances": [ROW]},
            headers={"X-Request-Id": request_id},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return any(r["role"] == "shadow" for r in _captures(cloud, {request_id}))

    wait_until(shadow_scores, timeout=120, interval=0.5, what="the predict function scoring with the shadow")
    return cloud


def _check(response: requests.Response) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:500])
    body = response.json()
    if response.status_code == 200 and "predictions" in body:
        assert set(body) <= RESPONSE_KEYS, sorted(set(body) - RESPONSE_KEYS)
    elif response.status_code >= 400:
        assert body["error"]["code"] and isinstance(body["error"]["details"], list)


@pytest.mark.parametrize("document", ["generic", "model"])
def test_generated_requests_never_get_a_5xx(served: Target, document: str) -> None:
    url = f"{served.api_url}/openapi.json" + (f"?model={MODEL}" if document == "model" else "")
    schema = schemathesis.openapi.from_url(url)
    session = requests.Session()
    calls = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=40,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def call(case: Any) -> None:
                nonlocal calls
                calls += 1
                _check(case.call(base_url=served.api_url, session=session, timeout=30))

            call()
    assert calls >= 100


def test_valid_generated_requests_are_scored(served: Target) -> None:
    """The model's own document generates requests the model scores (not only refusals)."""
    schema = schemathesis.openapi.from_url(f"{served.api_url}/openapi.json?model={MODEL}")
    operation = schema.find_operation_by_label("POST /models/{model}/predict")
    statuses: list[int] = []

    @settings(max_examples=30, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
    def call(case: Any) -> None:
        response = case.call(base_url=served.api_url, timeout=30)
        _check(response)
        statuses.append(response.status_code)

    call()
    assert statuses.count(200) >= 10, statuses


def test_shadow_output_never_reaches_the_client_and_is_captured(served: Target) -> None:
    ids = {f"trial-{i}" for i in range(5)}
    for request_id in sorted(ids):
        response = requests.post(
            f"{served.api_url}/models/{MODEL}/predict",
            json={"instances": [{**ROW, "id": 7, "age": 70}]},
            headers={"X-Request-Id": request_id, "X-Entity-Key": "patient-7"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) <= RESPONSE_KEYS and len(body["predictions"]) == 1 and body["model_version"] == 1
        assert [w["field"] for w in body["warnings"]] == ["age"]  # 70 is outside [25, 64]: served, with a warning
        assert "shadow" not in response.text and set(response.headers) & {"X-Shadow", "X-Model-Version"} == set()
    records = _captures(served, ids)
    by_role = {(r["request_id"], r["role"], r["served"]) for r in records}
    assert by_role == {(i, role, role == "champion") for i in ids for role in ("champion", "shadow")}
    for record in records:
        (row,) = record["inputs"]
        assert row["hhninc"] == "***" and row["id"] == "***" and row["age"] == 70
        assert record["routing_key"] == "patient-7" and record["status"] == 200


def test_the_deployment_state_shows_the_shadow(served: Target) -> None:
    state = requests.get(f"{served.api_url}/models/{MODEL}", timeout=10).json()
    assert state["champion"]["version"] == 1 and state["shadow"]["version"] == 1
    assert state["traffic"] == {"1": 1.0} and state["killed"] is False and state["challenger"] is None
