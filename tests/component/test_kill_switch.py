"""Kill switch, fallbacks, revive and rollback through the prediction service, with a controlled clock."""

import pytest

from conveyor.adapters.memory import MemoryObjectStore, MemoryTable
from conveyor.layout import artifact_key
from conveyor.registry import ModelVersion, Registry, RegistryError, sha256_hex
from conveyor.serving import ModelCache, ModelUnavailable, PredictionService
from tests.conftest import DEMO_ROW

ROW = DEMO_ROW


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def served(trained_model, tmp_path):
    store, table = MemoryObjectStore(), MemoryTable()
    registry = Registry(table)
    digest = sha256_hex(trained_model.onnx)
    store.put("artifacts", artifact_key("m", digest), trained_model.onnx)
    for _ in range(2):  # two versions of the same artifact: enough to tell them apart by number
        registry.register(
            ModelVersion(model="m", version=0, status="approved", artifact_key=artifact_key("m", digest), sha256=digest)
        )
    registry.promote("m", 1)
    registry.promote("m", 2)
    clock = Clock()
    service = PredictionService(
        registry, ModelCache(store, "artifacts", str(tmp_path)), routing_cache_seconds=5.0, clock=clock
    )
    return registry, service, clock


def _version(service, request_id="r"):
    return service.predict("m", {"instances": [ROW]}, request_id)["model_version"]


def test_a_kill_takes_effect_within_the_routing_cache_time(served):
    registry, service, clock = served
    assert _version(service) == 2
    registry.kill("m", "none")
    clock.now = 4.9
    assert _version(service) == 2  # still cached
    clock.now = 5.1
    with pytest.raises(ModelUnavailable):
        _version(service)
    registry.revive("m")
    clock.now = 10.2
    assert _version(service) == 2


def test_fallbacks_previous_and_static(served):
    registry, service, clock = served
    registry.kill("m", "previous")
    clock.now = 6
    answer = service.predict("m", {"instances": [ROW, ROW]}, "r")
    assert answer["model_version"] == 1 and answer["fallback"] == "previous"
    registry.revive("m")
    registry.kill("m", "static", 0)
    clock.now = 12
    answer = service.predict("m", {"instances": [ROW, ROW]}, "r")
    assert answer["predictions"] == [0, 0] and answer["fallback"] == "static"


def test_rollback_serves_the_previous_version_and_records_it(served):
    registry, service, clock = served
    routing = registry.rollback("m")
    assert routing.champion["version"] == 1 and routing.history[-1]["action"] == "rollback"
    assert [v.status for v in registry.versions("m")] == ["production", "archived"]
    clock.now = 6
    assert _version(service) == 1
    assert registry.rollback("m", to=2).champion["version"] == 2


def test_kill_refuses_an_impossible_fallback():
    registry = Registry(MemoryTable())
    registry.register(ModelVersion(model="m", version=0, status="approved", artifact_key="k", sha256="a" * 64))
    registry.promote("m", 1)
    with pytest.raises(RegistryError, match="no previous version"):
        registry.kill("m", "previous")
    with pytest.raises(RegistryError, match="static"):
        registry.kill("m", "static")
    with pytest.raises(RegistryError, match="unknown fallback"):
        registry.kill("m", "sideways")
    with pytest.raises(RegistryError, match="no earlier version"):
        registry.rollback("m")
