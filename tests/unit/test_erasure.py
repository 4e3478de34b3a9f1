"""Deletion requests (`conveyor impact URI --retrain`) on the memory adapters."""

import pytest

from conveyor.adapters.memory import MemoryStarter, MemoryTable
from conveyor.erasure import NoSuchDataObject, NothingLeftToTrain, retrain_without
from conveyor.registry import Registry

MODEL = "visits"


def _dataset(sha: str, name: str, accepted_at: float) -> dict[str, object]:
    return {
        "bucket": "data",
        "key": f"{MODEL}/accepted/{name}",
        "source_key": f"{MODEL}/incoming/{name}",
        "sha256": sha,
        "rows": 100,
        "accepted_at": accepted_at,
    }


@pytest.fixture
def registry() -> Registry:
    registry = Registry(MemoryTable())
    registry.record_dataset(MODEL, _dataset("a" * 64, "1984.csv", 1.0))
    registry.record_dataset(MODEL, _dataset("b" * 64, "1985.csv", 2.0))
    return registry


def test_the_object_is_excluded_and_a_retrain_without_it_starts(registry: Registry) -> None:
    starter = MemoryStarter()
    retrain = retrain_without(
        registry, starter, MODEL, "data", f"{MODEL}/incoming/1984.csv", reason="erasure 7", clock=lambda: 1700.0
    )
    assert retrain.excluded == ["a" * 64] and retrain.started
    assert retrain.execution == f"{MODEL}-retrain-aaaaaaaa-1700"
    assert starter.executions == {
        retrain.execution: {
            "retrain": {
                "model": MODEL,
                "reason": f"erasure 7: retrain without s3://data/{MODEL}/incoming/1984.csv",
                "excluded": ["a" * 64],
            }
        }
    }
    assert [d["sha256"] for d in registry.datasets(MODEL)] == ["b" * 64]
    (excluded,) = [d for d in registry.datasets(MODEL, include_excluded=True) if d.get("excluded")]
    assert excluded["sha256"] == "a" * 64 and excluded["excluded_reason"] == "erasure 7"
    again = retrain_without(
        registry, starter, MODEL, "data", f"{MODEL}/accepted/1984.csv", reason="erasure 7", clock=lambda: 1700.0
    )
    assert again.execution == retrain.execution and not again.started


def test_the_only_data_of_a_model_is_not_excluded(registry: Registry) -> None:
    starter = MemoryStarter()
    retrain_without(registry, starter, MODEL, "data", f"{MODEL}/accepted/1985.csv", reason="erasure")
    with pytest.raises(NothingLeftToTrain, match="only accepted data"):
        retrain_without(registry, starter, MODEL, "data", f"{MODEL}/accepted/1984.csv", reason="erasure")
    assert [d["sha256"] for d in registry.datasets(MODEL)] == ["a" * 64]
    assert len(starter.executions) == 1


def test_an_unknown_object_starts_nothing(registry: Registry) -> None:
    starter = MemoryStarter()
    with pytest.raises(NoSuchDataObject, match="no accepted data object"):
        retrain_without(registry, starter, MODEL, "data", f"{MODEL}/accepted/1999.csv", reason="erasure")
    assert starter.executions == {} and len(registry.datasets(MODEL)) == 2
