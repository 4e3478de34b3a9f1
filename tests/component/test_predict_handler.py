"""The predict handler against moto (in-process), through API Gateway proxy events."""

import copy
import importlib
import json

import boto3
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from conveyor.adapters.aws import DynamoTable
from conveyor.layout import artifact_key
from conveyor.localcloud.runtime import LambdaContext
from conveyor.registry import ModelVersion, Registry, sha256_hex
from conveyor.tabular import feature_frame
from tests.component.conftest import create_registry_table, predict_environment
from tests.events import load_event

MODEL = "doctor-visits"


@pytest.fixture
def predict(monkeypatch, tmp_path, trained_model):
    predict_environment(monkeypatch, tmp_path, ALERTS_TOPIC_ARN="")
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="artifacts")
        s3.create_bucket(Bucket="capture")
        create_registry_table(boto3.client("dynamodb"))
        digest = sha256_hex(trained_model.onnx)
        key = artifact_key(MODEL, digest)
        s3.put_object(Bucket="artifacts", Key=key, Body=trained_model.onnx)
        registry = Registry(DynamoTable("registry"))
        registry.register(ModelVersion(model=MODEL, version=0, status="approved", artifact_key=key, sha256=digest))
        registry.promote(MODEL, 1)
        module = importlib.import_module("functions.predict.handler")
        module._service = None

        def call(event):
            context = LambdaContext("predict", "arn:aws:lambda:us-east-1:123456789012:function:predict", 512, 30)
            response = module.lambda_handler(event, context)
            headers = dict(response.get("headers") or {})
            headers.update({k: v[0] for k, v in (response.get("multiValueHeaders") or {}).items()})
            return response["statusCode"], json.loads(response["body"]), headers

        yield call, s3, key
        if module._service is not None:  # batched captures go out while moto still serves the bucket
            module._service.flush()


def _event(body=None, path="/models/doctor-visits/predict", method="POST", headers=None):
    event = copy.deepcopy(load_event("apigw/predict.json"))
    event["path"], event["httpMethod"] = path, method
    if body is not None:
        event["body"] = body if isinstance(body, str) else json.dumps(body)
    if headers is not None:
        event["headers"] = headers
    return event


def test_predictions_equal_the_scikit_learn_model(predict, trained_model):
    call, _, _ = predict
    holdout = trained_model.result.holdout_df.head(40)
    features = feature_frame(holdout, trained_model.spec)
    instances = [
        {
            name: (str(v) if trained_model.spec.features[name].type == "category" else float(v))
            for name, v in row.items()
        }
        for row in features.to_dict(orient="records")
    ]
    status, body, headers = call(_event({"instances": instances}))
    assert status == 200, body
    expected = trained_model.result.pipeline.predict_proba(features)
    served = np.array([[p["0"], p["1"]] for p in body["probabilities"]])
    assert np.max(np.abs(served - expected)) < 1e-5
    assert body["predictions"] == trained_model.result.pipeline.predict(features).tolist()
    assert body["model"] == MODEL and body["model_version"] == 1
    assert body["request_id"] == "sample-request-1" == headers["X-Request-Id"]


def test_a_request_id_is_generated_when_absent(predict):
    call, _, _ = predict
    status, body, headers = call(_event(headers={"Content-Type": "application/json"}))
    assert status == 200
    assert len(body["request_id"]) == 36 and headers["X-Request-Id"] == body["request_id"]


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ("not json", 400, "body"),
        ({"instances": [{"age": "old"}]}, 400, "instances[0].age"),
        ({"rows": []}, 400, "instances"),
        ([1, 2], 400, "body"),
        ({"instances": [{"age": 40}] * 51}, 413, "instances"),
        ('{"instances": [{"age": ' + "9" * 5000 + "}]}", 400, "body"),  # past Python's int-parsing limit
        ('{"instances": [{"age": ' + "9" * 401 + "}]}", 400, "instances[0].age"),  # past float's range
        ({"instances": [{"age": 1e39}]}, 400, "instances[0].age"),  # past float32's range
        ("[" * 100_000, 400, "body"),  # nesting past the recursion limit
    ],
)
def test_bad_requests_get_field_level_errors_never_500(predict, body, status, field):
    call, _, _ = predict
    got, answer, _ = call(_event(body))
    assert got == status
    assert answer["error"]["code"] and answer["error"]["message"]
    assert field in [d["field"] for d in answer["error"]["details"]]


def test_unknown_model_and_route_are_404(predict):
    call, _, _ = predict
    status, body, _ = call(_event(path="/models/nobody/predict"))
    assert status == 404 and body["error"]["code"] == "model_not_found"
    status, body, _ = call(_event(path="/nothing/here", method="GET"))
    assert status == 404


def test_describe_and_openapi(predict):
    call, _, _ = predict
    status, body, _ = call(_event(path=f"/models/{MODEL}", method="GET", body=""))
    assert status == 200 and body["champion"]["version"] == 1 and body["traffic"] == {"1": 1.0}
    status, body, _ = call(_event(path="/openapi.json", method="GET", body=""))
    assert status == 200 and "/models/{model}/predict" in body["paths"]


def test_a_tampered_artifact_is_refused(predict, tmp_path):
    call, s3, key = predict
    s3.put_object(Bucket="artifacts", Key=key, Body=b"not the registered model")
    for cached in tmp_path.iterdir():
        cached.unlink()
    status, body, _ = call(_event())
    assert status == 503 and body["error"]["code"] == "model_unavailable"


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
_feature_names = st.sampled_from(["age", "hhninc", "educ", "female", "edlevel", "kids", "unknown"])
_instances = st.lists(st.dictionaries(_feature_names, _json_values, max_size=8), max_size=5)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=_json_values | st.fixed_dictionaries({"instances": _instances}) | st.binary(max_size=200))
def test_no_body_a_client_sends_gets_a_5xx(predict, body):
    call, _, _ = predict
    raw = body.decode("utf-8", "replace") if isinstance(body, bytes) else json.dumps(body)
    status, answer, _ = call(_event(raw))
    assert status < 500, answer
    if status != 200:
        assert answer["error"]["code"] and isinstance(answer["error"]["details"], list)
