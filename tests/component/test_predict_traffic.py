"""The predict handler against moto (in-process) with a challenger, a shadow and capture: traffic
split and stickiness, shadow isolation, the capture layout in the capture bucket, contract
validation, and Powertools EMF metrics."""

from __future__ import annotations

import copy
import importlib
import json
import re
from typing import Any

import boto3
import pytest
from moto import mock_aws

from conveyor.adapters.aws import DynamoTable
from conveyor.capture import captured
from conveyor.contract import contract_from_spec
from conveyor.layout import artifact_key, contract_key
from conveyor.localcloud.runtime import LambdaContext
from conveyor.registry import ModelVersion, Registry, sha256_hex, traffic_share
from conveyor.spec import parse_spec
from tests.component.conftest import ROW, create_registry_table, demo_spec_data, predict_environment
from tests.events import load_event

MODEL = "doctor-visits"
CAPTURE_KEY = re.compile(r"^doctor-visits/capture/\d{4}/\d{2}/\d{2}/\d{2}/[0-9a-f-]{36}\.jsonl$")
RECORD_FIELDS = {
    "model",
    "model_version",
    "role",
    "served",
    "request_id",
    "routing_key",
    "timestamp",
    "latency_ms",
    "status",
    "error_code",
    "inputs",
    "predictions",
    "probabilities",
    "warnings",
}


class Api:
    def __init__(self, module: Any, s3: Any, registry: Registry) -> None:
        self.module, self.s3, self.registry = module, s3, registry

    def call(self, event: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        context = LambdaContext("predict", "arn:aws:lambda:us-east-1:123456789012:function:predict", 512, 30)
        response = self.module.lambda_handler(event, context)
        headers = dict(response.get("headers") or {})
        headers.update({k: v[0] for k, v in (response.get("multiValueHeaders") or {}).items()})
        return response["statusCode"], json.loads(response["body"]), headers

    def predict(
        self, instances: list[dict[str, Any]], request_id: str, entity_key: str | None = None
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        headers = {"Content-Type": "application/json", "X-Request-Id": request_id}
        if entity_key is not None:
            headers["X-Entity-Key"] = entity_key
        return self.call(_event({"instances": instances}, headers=headers))

    def captures(self) -> dict[str, list[dict[str, Any]]]:
        """Every capture object (after a flush of the batch writer): key -> its records."""
        self.module._service.flush()
        found = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket="capture"):
            for item in page.get("Contents", []):
                body = self.s3.get_object(Bucket="capture", Key=item["Key"])["Body"].read().decode()
                found[item["Key"]] = [json.loads(line) for line in body.splitlines()]
        return found

    def records(self) -> list[dict[str, Any]]:
        return [r for records in self.captures().values() for r in records]


def _event(body=None, path=f"/models/{MODEL}/predict", method="POST", headers=None, query=None):
    event = copy.deepcopy(load_event("apigw/predict.json"))
    event["path"], event["httpMethod"] = path, method
    if body is not None:
        event["body"] = body if isinstance(body, str) else json.dumps(body)
    if headers is not None:
        event["headers"] = headers
        event["multiValueHeaders"] = {k: [v] for k, v in headers.items()}
    event["queryStringParameters"] = query
    event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} if query else None
    return event


def _publish(s3: Any, registry: Registry, onnx: bytes, spec_data: dict[str, Any]) -> int:
    digest = sha256_hex(onnx)
    s3.put_object(Bucket="artifacts", Key=artifact_key(MODEL, digest), Body=onnx)
    contract = contract_from_spec(parse_spec(spec_data)).to_json()
    contract_sha = sha256_hex(contract)
    s3.put_object(Bucket="artifacts", Key=contract_key(MODEL, contract_sha), Body=contract)
    version = ModelVersion(
        model=MODEL,
        version=0,
        status="approved",
        artifact_key=artifact_key(MODEL, digest),
        sha256=digest,
        contract_key=contract_key(MODEL, contract_sha),
        contract_sha256=contract_sha,
    )
    return registry.register(version).version


@pytest.fixture
def api(monkeypatch, tmp_path, trained_model, other_model):
    predict_environment(monkeypatch, tmp_path, CAPTURE_FLUSH_SECONDS="60")  # the tests flush when they read
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="artifacts")
        s3.create_bucket(Bucket="capture")
        create_registry_table(boto3.client("dynamodb"))
        registry = Registry(DynamoTable("registry"))
        _publish(s3, registry, trained_model.onnx, demo_spec_data(capture={"sample_rate": 0.5, "pii": ["hhninc"]}))
        _publish(s3, registry, other_model.onnx, demo_spec_data())
        registry.promote(MODEL, 1)
        module = importlib.import_module("functions.predict.handler")
        module._service = None
        yield Api(module, s3, registry)
        if module._service is not None:
            module._service.flush()


def test_the_challenger_takes_its_weight_and_an_entity_key_sticks_to_one_version(api):
    api.registry.set_challenger(MODEL, 2, 0.3)
    ids = [f"req-{i}" for i in range(120)]
    versions = []
    for request_id in ids:
        status, body, headers = api.predict([ROW], request_id)
        assert status == 200 and headers["X-Request-Id"] == request_id
        versions.append(body["model_version"])
    assert versions == [2 if traffic_share(i) < 0.3 else 1 for i in ids]
    assert 0.2 < versions.count(2) / len(ids) < 0.4
    sides = set()
    for entity in [f"patient-{i}" for i in range(12)]:
        seen = {api.predict([ROW], f"{entity}-{n}", entity)[1]["model_version"] for n in range(5)}
        assert len(seen) == 1, entity  # every request of one entity: one version
        sides |= seen
    assert sides == {1, 2}


def test_shadow_output_never_reaches_the_client_and_is_captured_unserved(api):
    api.registry.set_shadow(MODEL, 2)
    status, body, headers = api.predict([ROW, {**ROW, "age": 55, "edlevel": "3"}], "r-1")
    assert status == 200 and body["model_version"] == 1
    served, shadow = sorted(api.records(), key=lambda r: r["served"], reverse=True)
    assert (served["role"], served["served"], served["model_version"]) == ("champion", True, 1)
    assert (shadow["role"], shadow["served"], shadow["model_version"]) == ("shadow", False, 2)
    assert shadow["request_id"] == "r-1" and shadow["predictions"] and shadow["status"] == 200
    assert body["probabilities"] == served["probabilities"] != shadow["probabilities"]
    returned = json.dumps(body) + json.dumps(headers)
    for row in shadow["probabilities"]:
        for value in row.values():
            assert repr(value) not in returned
    assert "shadow" not in returned and not any("version" in h.lower() for h in headers)


def test_capture_is_masked_sampled_and_laid_out_by_model_and_hour(api):
    ids = [f"sampled-{i}" for i in range(80)]
    for request_id in ids:
        assert api.predict([{**ROW, "id": 4711, "year": 1986}], request_id)[0] == 200
    assert api.predict([{**ROW, "edlevel": "9"}], "refused")[0] == 400
    objects = api.captures()
    assert objects and all(CAPTURE_KEY.match(key) for key in objects)
    records = [r for records in objects.values() for r in records]
    expected = {i for i in [*ids, "refused"] if captured(i, 0.5)}
    assert {r["request_id"] for r in records} == expected and 20 < len(expected) < 60
    for record in records:
        assert set(record) == RECORD_FIELDS
        assert record["model"] == MODEL and record["role"] == "champion" and record["served"] is True
        (row,) = record["inputs"]
        assert row["hhninc"] == "***"
        if record["status"] == 200:
            assert row["id"] == "***" and row["year"] == 1986 and row["age"] == 40
            assert record["error_code"] is None and len(record["predictions"]) == 1 and record["latency_ms"] > 0
    if "refused" in expected:
        (refused,) = [r for r in records if r["request_id"] == "refused"]
        assert (refused["status"], refused["error_code"], refused["predictions"]) == (400, "invalid_input", [])


def test_while_a_challenger_is_on_trial_every_request_is_captured(api):
    api.registry.set_challenger(MODEL, 2, 0.5)
    ids = [f"trial-{i}" for i in range(30)]
    for request_id in ids:
        api.predict([ROW], request_id)
    assert sorted(r["request_id"] for r in api.records()) == sorted(ids)


def test_out_of_range_values_are_served_with_a_warning_naming_row_and_field(api):
    status, body, _ = api.predict([ROW, {**ROW, "age": 90}], "old")
    assert status == 200 and len(body["predictions"]) == 2
    (warning,) = body["warnings"]
    assert warning["row"] == 1 and warning["field"] == "age" and "[25, 64]" in warning["message"]


def test_values_outside_the_allowed_list_and_missing_required_fields_are_400(api):
    status, body, _ = api.predict([{**ROW, "edlevel": "9"}, {k: v for k, v in ROW.items() if k != "educ"}], "bad")
    assert status == 400 and body["error"]["code"] == "invalid_input"
    details = {d["field"]: d["message"] for d in body["error"]["details"]}
    assert details["instances[0].edlevel"].startswith("must be one of 1, 2, 3, 4")
    assert details["instances[1].educ"] == "required"


def test_metrics_are_emitted_as_emf_per_model_and_version(api, capsys):
    api.registry.set_shadow(MODEL, 2)
    capsys.readouterr()
    assert api.predict([ROW, ROW, ROW], "measured")[0] == 200
    api.module._service.flush()  # metrics are written after the response (conveyor.afterwork)
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    by_version = {}
    per_model = {}
    for document in documents:
        (directive,) = document["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "Conveyor"
        assert document["model"] == MODEL
        if directive["Dimensions"] == [["model"]]:  # the per-model set the alarms watch
            per_model.update({metric["Name"]: document[metric["Name"]][0] for metric in directive["Metrics"]})
            continue
        assert set(directive["Dimensions"][0]) == {"model", "version"}
        for metric in directive["Metrics"]:
            (value,) = document[metric["Name"]]  # one request: one value per metric
            by_version.setdefault(document["version"], {})[metric["Name"]] = (metric.get("Unit"), value)
    served = by_version["1"]
    assert served["Rows"] == ("Count", 3.0) and served["Errors"] == ("Count", 0.0)
    assert served["Latency"][0] == "Milliseconds" and served["Latency"][1] > 0
    assert 0 < served["MeanScore"][1] < 1
    assert by_version["2"]["Rows"][1] == 3.0 and "MeanScore" in by_version["2"]  # the shadow, measured apart
    assert per_model == {"Latency": served["Latency"][1], "Errors": 0.0}


def test_get_model_shows_the_routing_record(api):
    api.registry.set_challenger(MODEL, 2, 0.1)
    api.registry.set_shadow(MODEL, 2)
    status, state, _ = api.call(_event(path=f"/models/{MODEL}", method="GET", body=""))
    assert status == 200
    assert state["champion"]["version"] == 1 and state["challenger"]["version"] == 2
    assert state["challenger_weight"] == 0.1 and state["shadow"]["version"] == 2
    assert state["traffic"] == {"1": 0.9, "2": 0.1} and state["killed"] is False and state["revision"] == 3


def test_openapi_for_one_model_describes_its_features(api):
    status, document, _ = api.call(_event(path="/openapi.json", method="GET", body="", query={"model": MODEL}))
    assert status == 200
    item = document["components"]["schemas"]["PredictRequest"]["properties"]["instances"]["items"]
    assert item["properties"]["edlevel"]["enum"] == ["1", "2", "3", "4"]
    assert set(item["required"]) == {"age", "hhninc", "educ", "female", "married", "kids", "outwork", "self", "edlevel"}
    status, refused, _ = api.call(_event(path="/openapi.json", method="GET", body="", query={"model": "nobody"}))
    assert status == 404 and refused["error"]["code"] == "model_not_found"
