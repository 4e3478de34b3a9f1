"""The prediction service with in-memory adapters: routing, shadow, capture and metrics, and the
failures that must never reach a client."""

from __future__ import annotations

import json

import pytest

from conveyor.adapters.memory import MemoryCapture, MemoryMetrics, MemoryObjectStore, MemoryTable
from conveyor.contract import contract_from_spec
from conveyor.layout import artifact_key, contract_key
from conveyor.registry import ModelVersion, Registry, sha256_hex, traffic_share
from conveyor.serving import InvalidInput, ModelCache, ModelUnavailable, PredictionService
from conveyor.spec import parse_spec
from tests.conftest import DEMO_ROW as ROW
from tests.conftest import demo_spec_data

MODEL = "doctor-visits"


class Served:
    def __init__(self, tmp_path, capture=None, metrics=None):
        self.store, self.registry = MemoryObjectStore(), Registry(MemoryTable())
        self.capture = capture if capture is not None else MemoryCapture()
        self.metrics = metrics if metrics is not None else MemoryMetrics()
        self.service = PredictionService(
            self.registry,
            ModelCache(self.store, "artifacts", str(tmp_path)),
            routing_cache_seconds=0,
            capture=self.capture,
            metrics=self.metrics,
        )

    def publish(self, onnx: bytes, spec_data: dict | None = None) -> int:
        digest = sha256_hex(onnx)
        self.store.put("artifacts", artifact_key(MODEL, digest), onnx)
        key, contract_sha = "", ""
        if spec_data is not None:
            data = contract_from_spec(parse_spec(spec_data)).to_json()
            contract_sha = sha256_hex(data)
            key = contract_key(MODEL, contract_sha)
            self.store.put("artifacts", key, data)
        version = ModelVersion(
            model=MODEL,
            version=0,
            status="approved",
            artifact_key=artifact_key(MODEL, digest),
            sha256=digest,
            contract_key=key,
            contract_sha256=contract_sha,
        )
        return self.registry.register(version).version


@pytest.fixture
def served(tmp_path, trained_model, other_model):
    served = Served(tmp_path)
    served.publish(trained_model.onnx, demo_spec_data())
    served.publish(other_model.onnx, demo_spec_data(capture={"pii": ["hhninc"]}))
    served.registry.promote(MODEL, 1)
    return served


def test_the_challenger_answers_its_share_of_request_ids(served):
    served.registry.set_challenger(MODEL, 2, 0.3)
    ids = [f"r-{i}" for i in range(300)]
    versions = [served.service.predict(MODEL, {"instances": [ROW]}, i)["model_version"] for i in ids]
    assert versions == [2 if traffic_share(i) < 0.3 else 1 for i in ids]
    assert 0.2 < versions.count(2) / len(ids) < 0.4
    roles = {(r["model_version"], r["role"]) for r in served.capture.records}
    assert roles == {(1, "champion"), (2, "challenger")}  # on trial: every request captured


def test_an_entity_key_keeps_one_version_across_requests(served):
    served.registry.set_challenger(MODEL, 2, 0.5)
    for entity in ("patient-1", "patient-2", "patient-3", "patient-4"):
        seen = {
            served.service.predict(MODEL, {"instances": [ROW]}, f"{entity}-{i}", entity)["model_version"]
            for i in range(20)
        }
        assert seen == {2 if traffic_share(entity) < 0.5 else 1}


def test_shadow_answers_are_captured_and_never_returned(served, trained_model, other_model):
    served.registry.set_shadow(MODEL, 2)
    response = served.service.predict(MODEL, {"instances": [ROW, {**ROW, "age": 60}]}, "r-1")
    assert response["model_version"] == 1
    served_record, shadow_record = served.capture.records
    assert (served_record["role"], served_record["served"]) == ("champion", True)
    assert (shadow_record["role"], shadow_record["served"], shadow_record["model_version"]) == ("shadow", False, 2)
    assert shadow_record["request_id"] == served_record["request_id"] == "r-1"
    assert shadow_record["probabilities"] != served_record["probabilities"]
    text = json.dumps(response)
    for row in shadow_record["probabilities"]:
        for value in row.values():
            assert json.dumps(value) not in text
    assert response["probabilities"] == served_record["probabilities"]


def test_a_broken_shadow_never_affects_the_answer(served):
    served.registry.set_shadow(MODEL, 2)
    shadow = served.registry.get(MODEL, 2)
    served.store.put("artifacts", shadow.artifact_key, b"tampered")
    for cached in served.service._models._dir.iterdir():
        cached.unlink()
    served.service._models._models.clear()
    response = served.service.predict(MODEL, {"instances": [ROW]}, "r-1")
    assert response["model_version"] == 1 and len(response["predictions"]) == 1
    shadow_record = served.capture.records[-1]
    assert (shadow_record["status"], shadow_record["error_code"], shadow_record["served"]) == (
        503,
        "model_unavailable",
        False,
    )


def test_a_capture_or_metrics_outage_never_fails_a_request(tmp_path, trained_model):
    class BrokenMetrics:
        def publish(self, namespace, datapoints):
            raise RuntimeError("no metrics today")

    served = Served(tmp_path, capture=MemoryCapture(fail=True), metrics=BrokenMetrics())
    served.publish(trained_model.onnx, demo_spec_data())
    served.registry.promote(MODEL, 1)
    assert served.service.predict(MODEL, {"instances": [ROW]}, "r-1")["model_version"] == 1
    assert served.service.capture_failures == 1 and served.service.metrics_failures >= 1


def test_sampling_follows_the_spec_unless_a_trial_is_on(tmp_path, trained_model, other_model):
    served = Served(tmp_path)
    served.publish(trained_model.onnx, demo_spec_data(capture={"sample_rate": 0.2}))
    served.publish(other_model.onnx, demo_spec_data())
    served.registry.promote(MODEL, 1)
    for i in range(200):
        served.service.predict(MODEL, {"instances": [ROW]}, f"r-{i}")
    assert 20 <= len(served.capture.records) <= 60
    served.capture.records.clear()
    served.registry.set_challenger(MODEL, 2, 0.1)
    for i in range(50):
        served.service.predict(MODEL, {"instances": [ROW]}, f"r-{i}")
    assert len(served.capture.records) == 50


def test_refusals_are_captured_with_their_status(served):
    served.registry.set_shadow(MODEL, 2)
    with pytest.raises(InvalidInput):
        served.service.predict(MODEL, {"instances": [{**ROW, "edlevel": "9", "ssn": "123-45"}]}, "r-1")
    with pytest.raises(InvalidInput):
        served.service.predict_json(MODEL, "{not json", "r-2")
    served.registry.kill(MODEL, "none")
    with pytest.raises(ModelUnavailable):
        served.service.predict(MODEL, {"instances": [ROW]}, "r-3")
    summary = [(r["request_id"], r["role"], r["status"], r["error_code"]) for r in served.capture.records]
    assert summary == [
        ("r-1", "champion", 400, "invalid_input"),
        ("r-1", "shadow", 400, "invalid_input"),
        ("r-2", "champion", 400, "invalid_input"),
        ("r-3", "champion", 503, "model_unavailable"),
    ]
    assert served.capture.records[0]["inputs"][0]["ssn"] == "***"
    assert all(r["predictions"] == [] for r in served.capture.records)


def test_metrics_per_version(served):
    served.registry.set_shadow(MODEL, 2)
    served.service.predict(MODEL, {"instances": [ROW, ROW]}, "r-1")
    points = {(name, dims.get("version")): value for _, name, dims, value in served.metrics.datapoints}
    assert points[("Rows", "1")] == 2 and points[("Rows", "2")] == 2
    # The per-model set the alarms watch: the served answer only, never the shadow's.
    assert points[("Latency", None)] == points[("Latency", "1")] and points[("Errors", None)] == 0
    assert points[("Errors", "1")] == 0 and points[("Latency", "1")] > 0
    assert 0 < points[("MeanScore", "1")] < 1 and points[("MeanScore", "1")] != points[("MeanScore", "2")]


def test_describe_shows_the_whole_routing_record(served):
    served.registry.set_challenger(MODEL, 2, 0.25)
    state = served.service.describe(MODEL)
    assert state["champion"]["version"] == 1 and state["challenger"]["version"] == 2
    assert state["challenger_weight"] == 0.25 and state["traffic"] == {"1": 0.75, "2": 0.25}
    assert state["shadow"] is None and state["killed"] is False and state["revision"] == 2
