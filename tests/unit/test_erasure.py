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


def test_an_erasure_deletes_the_object_its_parts_and_the_reports_beside_them() -> None:
    from conveyor.erasure import belongs_to, erased_keys

    dataset = {
        "key": "m/accepted/abc/f.csv",
        "source_key": "m/incoming/f.csv",
        "original": {"key": "m/accepted/abc/original/f.csv"},
        "quarantined": {"key": "m/quarantine/abc/f.csv"},
    }
    assert erased_keys(dataset) == sorted(
        ["m/accepted/abc/f.csv", "m/incoming/f.csv", "m/accepted/abc/original/f.csv", "m/quarantine/abc/f.csv"]
    )
    assert erased_keys({"key": "m/accepted/abc/f.csv", "source_key": None}) == ["m/accepted/abc/f.csv"]
    assert belongs_to("m/accepted/abc/f.csv.report.json", "m/accepted/abc/f.csv")
    assert belongs_to("m/accepted/abc/f.csv.drift.json", "m/accepted/abc/f.csv")
    assert not belongs_to("m/accepted/abc/f.csv2", "m/accepted/abc/f.csv")  # another object under the prefix


def test_capture_records_of_the_erased_entities_are_removed_and_the_rest_kept() -> None:
    import json

    from conveyor.erasure import entity_values, without_entities

    records = [
        {"request_id": "a", "routing_key": "42", "inputs": [{"id": "***"}]},
        {"request_id": "b", "routing_key": "7"},
        {"request_id": "c", "routing_key": None},
        {"request_id": "d"},
    ]
    lines = b"".join(json.dumps(r).encode() + b"\n" for r in records) + b"not json\n"
    entities = entity_values({"id": [42.0, float("nan"), None], "other": [1, 2, 3]}, ["patient", "id"])
    assert entities == {"42"}
    kept, removed = without_entities(lines, entities)
    assert removed == 1
    assert [json.loads(line)["request_id"] for line in kept.splitlines()[:-1]] == ["b", "c", "d"]
    assert kept.endswith(b"not json\n")
    assert entity_values({"x": [1]}, ["id"]) == set()


def test_an_erasure_is_recorded_in_the_registry_without_data() -> None:
    from conveyor.erasure import erasure_record, erasures

    table = MemoryTable()
    record = erasure_record(
        "m",
        "s3://d/m/accepted/abc/f.csv",
        reason="GDPR art. 17",
        by="ops",
        objects={"s3://d/k": 3},
        capture={"files_rewritten": 1, "records_removed": 2},
        at=1_800_000_000.5,
    )
    table.put(record)
    (stored,) = erasures(table, "m")
    assert stored["uri"] == "s3://d/m/accepted/abc/f.csv" and stored["by"] == "ops"
    assert stored["object_versions"] == {"s3://d/k": 3} and stored["capture"]["records_removed"] == 2
    assert stored["pk"] == "MODEL#m" and stored["sk"].startswith("ERASURE#")
