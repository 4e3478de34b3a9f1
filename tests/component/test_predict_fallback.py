"""The champion answers for a challenger that cannot (issue 17), with in-memory adapters and a
controlled clock: a failed sha256 check, a session that raises, a malformed output; the failure
captured and measured as the challenger's; client errors never retried; the champion's own
failure left to the kill switch; the breaker per version; load failures cached briefly."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pytest

from conveyor.adapters.memory import MemoryCapture, MemoryMetrics, MemoryObjectStore, MemoryTable
from conveyor.contract import contract_from_spec
from conveyor.layout import artifact_key, contract_key
from conveyor.registry import ModelVersion, Registry, sha256_hex
from conveyor.serving import InvalidInput, ModelCache, ModelUnavailable, PredictionService, TooManyRows
from conveyor.spec import parse_spec
from tests.component.conftest import ROW, demo_spec_data

MODEL = "doctor-visits"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingStore(MemoryObjectStore):
    def __init__(self) -> None:
        super().__init__()
        self.gets: list[str] = []

    def get(self, bucket: str, key: str, version_id: str | None = None) -> bytes:
        self.gets.append(key)
        return super().get(bucket, key, version_id)


class Served:
    def __init__(self, tmp_path: Any, breaker: dict[str, float] | None = None) -> None:
        self.store, self.registry = CountingStore(), Registry(MemoryTable())
        self.capture, self.metrics, self.clock = MemoryCapture(), MemoryMetrics(), Clock()
        self.models = ModelCache(self.store, "artifacts", str(tmp_path), failure_seconds=5.0, clock=self.clock)
        self.service = PredictionService(
            self.registry,
            self.models,
            routing_cache_seconds=0,
            clock=self.clock,
            capture=self.capture,
            metrics=self.metrics,
            wall_clock=lambda: self.clock.now + 1.8e9,
        )
        self.breaker = breaker

    def publish(self, onnx: bytes) -> int:
        digest = sha256_hex(onnx)
        self.store.put("artifacts", artifact_key(MODEL, digest), onnx)
        spec = demo_spec_data(serving={"breaker": self.breaker}) if self.breaker else demo_spec_data()
        data = contract_from_spec(parse_spec(spec)).to_json()
        key = contract_key(MODEL, sha256_hex(data))
        self.store.put("artifacts", key, data)
        version = ModelVersion(
            model=MODEL,
            version=0,
            status="approved",
            artifact_key=artifact_key(MODEL, digest),
            sha256=digest,
            contract_key=key,
            contract_sha256=sha256_hex(data),
        )
        return self.registry.register(version).version

    def corrupt(self, version: int) -> None:
        """Overwrite the version's ONNX in the bucket: its sha256 check fails from now on."""
        self.store.put("artifacts", self.registry.get(MODEL, version).artifact_key, b"not an onnx model")

    def predict(self, request_id: str, rows: int = 1) -> dict[str, Any]:
        return self.service.predict(MODEL, {"instances": [ROW] * rows}, request_id)

    def records(self, request_id: str) -> list[tuple[int, str, bool, int, str | None, Any]]:
        return [
            (r["model_version"], r["role"], r["served"], r["status"], r["error_code"], r.get("fallback_for"))
            for r in self.capture.records
            if r["request_id"] == request_id
        ]

    def points(self, name: str, version: int) -> list[float]:
        return [v for _, n, dims, v in self.metrics.datapoints if n == name and dims.get("version") == str(version)]


@pytest.fixture
def served(tmp_path, trained_model, other_model) -> Served:
    """v1 serving; v2 (a different model) the challenger on all traffic, so every request goes to it first."""
    served = Served(tmp_path)
    served.publish(trained_model.onnx)
    served.publish(other_model.onnx)
    served.registry.promote(MODEL, 1)
    served.registry.set_challenger(MODEL, 2, 1.0)
    return served


def test_a_challenger_whose_artifact_fails_its_sha256_check_is_answered_for_by_the_champion(served):
    healthy = served.predict("before")
    assert healthy["model_version"] == 2 and "fallback" not in healthy
    served.corrupt(2)
    served.models._models.clear()
    for cached in served.models._dir.iterdir():
        cached.unlink()
    answer = served.predict("r-1", rows=2)
    assert answer["model_version"] == 1 and answer["fallback"] == "champion" and answer["fallback_from"] == 2
    assert len(answer["predictions"]) == 2 and len(answer["probabilities"]) == 2
    assert answer["predictions"] == served.service.predict(MODEL, {"instances": [ROW] * 2}, "x")["predictions"]
    # The failure is the challenger's, exactly as without a fallback; the champion's answer is captured too.
    assert served.records("r-1") == [
        (2, "challenger", True, 503, "model_unavailable", None),
        (1, "champion", True, 200, None, 2),
    ]
    assert served.points("Errors", 2)[-1] == 1.0 and served.points("Errors", 1)[-1] == 0.0
    assert served.points("Rows", 1)[-1] == 2.0


def test_a_session_that_raises_or_a_malformed_output_falls_back(served, monkeypatch):
    ref = served.registry.routing(MODEL).challenger
    onnx = served.models.load(MODEL, ref).onnx

    class Raising:
        def run(self, names, feed):
            raise RuntimeError("onnxruntime fell over")

    monkeypatch.setattr(onnx, "_run", Raising().run)  # what OnnxModel.predict calls: the session's run
    answer = served.predict("raises")
    assert (answer["model_version"], answer["fallback"], answer["fallback_from"]) == (1, "champion", 2)
    assert served.records("raises")[0] == (2, "challenger", True, 500, "internal", None)

    class Malformed:
        def run(self, names, feed):  # two rows of answers for one row of input
            return [np.array([0, 1]), np.array([[0.5, 0.5], [0.2, 0.8]], dtype=np.float32)]

    monkeypatch.setattr(onnx, "_run", Malformed().run)  # what OnnxModel.predict calls: the session's run
    answer = served.predict("malformed")
    assert (answer["model_version"], answer["fallback"]) == (1, "champion")
    assert served.records("malformed")[0] == (2, "challenger", True, 500, "malformed_output", None)

    class NotFinite:
        def run(self, names, feed):
            return [np.array([1]), np.array([[np.nan, 0.5]], dtype=np.float32)]

    monkeypatch.setattr(onnx, "_run", NotFinite().run)  # what OnnxModel.predict calls: the session's run
    assert served.predict("nan")["fallback_from"] == 2


def test_a_client_error_is_never_retried_on_another_version(served):
    with pytest.raises(InvalidInput):
        served.service.predict(MODEL, {"instances": [{**ROW, "edlevel": "9"}]}, "bad")
    with pytest.raises(TooManyRows):
        served.service.predict(MODEL, {"instances": [ROW] * 1001}, "many")
    with pytest.raises(InvalidInput):
        served.service.predict_json(MODEL, "{not json", "unreadable")
    assert served.records("bad") == [(2, "challenger", True, 400, "invalid_input", None)]
    assert served.records("many") == [(2, "challenger", True, 413, "too_many_rows", None)]
    assert served.records("unreadable") == [(2, "challenger", True, 400, "invalid_input", None)]
    assert served.service.describe(MODEL)["breakers"]["2"]["failures"] == 0  # not the version's failure
    # A challenger that cannot load: the champion answers, and its refusal of a bad request is the answer.
    served.corrupt(2)
    served.models._models.clear()
    for cached in served.models._dir.iterdir():
        cached.unlink()
    with pytest.raises(InvalidInput):
        served.service.predict(MODEL, {"instances": [{**ROW, "edlevel": "9"}]}, "bad-too")
    assert served.records("bad-too") == [
        (2, "challenger", True, 503, "model_unavailable", None),
        (1, "champion", True, 400, "invalid_input", 2),
    ]


def test_the_champions_own_failure_is_left_to_the_kill_switch(tmp_path, trained_model, other_model):
    served = Served(tmp_path)
    for onnx in (trained_model.onnx, other_model.onnx):
        served.publish(onnx)
    served.registry.promote(MODEL, 1)
    served.registry.promote(MODEL, 2)
    served.corrupt(2)
    with pytest.raises(ModelUnavailable):  # serving, not killed: no other version answers for it
        served.predict("champion-broken")
    assert served.records("champion-broken") == [(2, "champion", True, 503, "model_unavailable", None)]
    served.registry.kill(MODEL, "previous")
    answer = served.predict("killed-previous")
    assert answer["model_version"] == 1 and answer["fallback"] == "previous" and "fallback_from" not in answer
    served.registry.revive(MODEL)
    served.registry.kill(MODEL, "static", 0)
    with pytest.raises(ModelUnavailable):  # the static answer needs the champion's contract to validate
        served.predict("killed-static-broken")
    served.store.put("artifacts", served.registry.get(MODEL, 2).artifact_key, other_model.onnx)
    served.clock.now += 5  # the champion's cached load failure has expired
    assert served.predict("killed-static")["fallback"] == "static"
    served.registry.revive(MODEL)
    served.corrupt(1)
    served.registry.kill(MODEL, "previous")
    served.models._models.clear()
    for cached in served.models._dir.iterdir():
        cached.unlink()
    with pytest.raises(ModelUnavailable):  # the previous version is the last resort: its failure is a 503
        served.predict("previous-broken")


def test_a_broken_shadow_never_touches_the_answer_even_during_a_fallback(served):
    served.registry.set_challenger(MODEL, 2, 1.0)
    served.registry.set_shadow(MODEL, 2)
    served.corrupt(2)
    served.models._models.clear()
    for cached in served.models._dir.iterdir():
        cached.unlink()
    answer = served.predict("shadowed")
    assert answer["model_version"] == 1 and answer["fallback_from"] == 2
    assert served.records("shadowed") == [
        (2, "challenger", True, 503, "model_unavailable", None),
        (1, "champion", True, 200, None, 2),
        (2, "shadow", False, 503, "model_unavailable", None),
    ]


def test_a_failing_load_fails_fast_and_is_retried_after_a_few_seconds(served):
    served.corrupt(2)
    served.models._models.clear()
    for cached in served.models._dir.iterdir():
        cached.unlink()
    key = served.registry.get(MODEL, 2).artifact_key
    served.store.gets.clear()
    for i in range(3):
        assert served.predict(f"f-{i}")["fallback_from"] == 2
    assert served.store.gets.count(key) == 1  # downloaded and refused once, then refused from memory
    served.clock.now += 5.0
    served.predict("f-later")
    assert served.store.gets.count(key) == 2


def test_the_breaker_opens_after_consecutive_failures_and_closes_after_a_good_trial(
    tmp_path, trained_model, other_model, caplog
):
    served = Served(tmp_path, breaker={"failures": 3, "window_seconds": 10, "cooldown_seconds": 30})
    served.publish(trained_model.onnx)
    served.publish(other_model.onnx)
    served.registry.promote(MODEL, 1)
    served.registry.set_challenger(MODEL, 2, 1.0)
    ref = served.registry.routing(MODEL).challenger
    onnx = served.models.load(MODEL, ref).onnx
    good_run = onnx._run  # what OnnxModel.predict calls: the session's run

    class Raising:
        def run(self, names, feed):
            raise RuntimeError("onnxruntime fell over")

    onnx._run = Raising().run
    with caplog.at_level(logging.WARNING, logger="conveyor.serving"):
        for i in range(3):
            assert served.predict(f"b-{i}")["fallback_from"] == 2
    assert any("breaker opened" in r.getMessage() for r in caplog.records)
    assert served.points("BreakerOpen", 2) == [1.0]
    state = served.service.describe(MODEL)["breakers"]
    assert state["2"]["state"] == "open" and state["2"]["failures"] == 3 and state["2"]["opened_at"] > 0
    # While open: the challenger is not tried; the request is recorded as its error, answered by v1.
    onnx._run = good_run
    answer = served.predict("while-open")
    assert answer["model_version"] == 1 and answer["fallback_from"] == 2
    assert served.records("while-open") == [
        (2, "challenger", True, 503, "breaker_open", None),
        (1, "champion", True, 200, None, 2),
    ]
    # After the cooldown one trial goes through; it succeeds and the breaker closes.
    served.clock.now += 30
    assert served.service.describe(MODEL)["breakers"]["2"]["state"] == "half_open"
    trial = served.predict("trial")
    assert trial["model_version"] == 2 and "fallback" not in trial
    assert served.service.describe(MODEL)["breakers"]["2"] == {
        "state": "closed",
        "opened_at": state["2"]["opened_at"],
        "failures": 0,
    }
    assert served.points("BreakerOpen", 2) == [1.0]
