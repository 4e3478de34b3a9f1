import threading

import pytest

from conveyor.adapters.memory import MemoryObjectStore, MemoryTable
from conveyor.errors import ArtifactError
from conveyor.layout import artifact_key
from conveyor.ports import ConditionFailed
from conveyor.registry import (
    ModelVersion,
    Registry,
    RegistryError,
    UnknownModel,
    load_verified,
    sha256_hex,
)


def _version(model="m", sha="a" * 64, status="approved"):
    return ModelVersion(model=model, version=0, status=status, artifact_key=artifact_key(model, sha), sha256=sha)


def test_versions_are_consecutive_under_concurrent_registrations():
    registry = Registry(MemoryTable())
    got = []
    barrier = threading.Barrier(8)

    def register():
        barrier.wait()
        got.append(registry.register(_version()).version)

    threads = [threading.Thread(target=register) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(1, 9))
    assert [v.version for v in registry.versions("m")] == list(range(1, 9))


def test_models_number_their_versions_independently():
    registry = Registry(MemoryTable())
    assert registry.register(_version("a")).version == 1
    assert registry.register(_version("b")).version == 1
    assert registry.register(_version("a")).version == 2


def test_promote_moves_traffic_and_archives_the_previous_champion():
    registry = Registry(MemoryTable())
    registry.register(_version(sha="a" * 64))
    registry.register(_version(sha="b" * 64))
    first = registry.promote("m", 1)
    second = registry.promote("m", 2)
    assert (first.revision, second.revision) == (1, 2)
    assert registry.routing("m").champion == {
        "version": 2,
        "artifact_key": artifact_key("m", "b" * 64),
        "sha256": "b" * 64,
    }
    assert [v.status for v in registry.versions("m")] == ["archived", "production"]
    assert registry.champion("m").version == 2


def test_a_stale_routing_write_is_refused():
    table = MemoryTable()
    registry = Registry(table)
    registry.register(_version())
    registry.promote("m", 1)
    stale = table.get("ROUTING#m", "ROUTING")
    registry.promote("m", 1)
    with pytest.raises(ConditionFailed):
        table.put({**stale, "revision": stale["revision"] + 1}, if_equals=("revision", stale["revision"]))


def test_unknown_versions_and_models_are_named():
    registry = Registry(MemoryTable())
    with pytest.raises(UnknownModel, match="model m has no version 3"):
        registry.get("m", 3)
    assert registry.routing("m") is None
    assert registry.champion("m") is None


def test_artifacts_are_verified_by_sha256_before_use():
    store = MemoryObjectStore()
    data = b"onnx bytes"
    store.put("artifacts", "k", data)
    assert load_verified(store, "artifacts", "k", sha256_hex(data)) == data
    store.put("artifacts", "k", b"tampered")
    with pytest.raises(ArtifactError, match="sha256"):
        load_verified(store, "artifacts", "k", sha256_hex(data))


def test_datasets_are_recorded_once_per_content():
    registry = Registry(MemoryTable())
    dataset = {"sha256": "c" * 64, "bucket": "b", "key": "m/accepted/x.csv", "accepted_at": 1.0}
    assert registry.record_dataset("m", dataset) is True
    assert registry.record_dataset("m", {**dataset, "key": "m/accepted/y.csv"}) is False
    assert [d["key"] for d in registry.datasets("m")] == ["m/accepted/x.csv"]


def test_only_approved_versions_can_serve():
    from conveyor.registry import RegistryError

    registry = Registry(MemoryTable())
    registry.register(_version(status="rejected"))
    registry.register(_version(status="candidate"))
    for version in (1, 2):
        with pytest.raises(RegistryError, match="only approved"):
            registry.promote("m", version)
    assert registry.routing("m") is None


def test_impact_finds_every_version_trained_on_an_object_and_exclusion_keeps_it_out():
    registry = Registry(MemoryTable())
    first = {
        "sha256": "1" * 64,
        "bucket": "b",
        "key": "m/accepted/1/a.csv",
        "source_key": "m/incoming/a.csv",
        "accepted_at": 1.0,
    }
    second = {
        "sha256": "2" * 64,
        "bucket": "b",
        "key": "m/accepted/2/b.csv",
        "source_key": "m/incoming/b.csv",
        "accepted_at": 2.0,
    }
    registry.record_dataset("m", first)
    registry.record_dataset("m", second)
    v1 = _version()
    v1.lineage = {"data": [first]}
    v2 = _version(sha="b" * 64)
    v2.lineage = {"data": [first, second]}
    v3 = _version(sha="c" * 64)
    v3.lineage = {"data": [second]}
    for v in (v1, v2, v3):
        registry.register(v)
    datasets, versions = registry.impact("m", "b", "m/incoming/a.csv")
    assert [d["sha256"] for d in datasets] == ["1" * 64]
    assert [v.version for v in versions] == [1, 2]
    registry.exclude_dataset("m", "1" * 64, "deletion request 42")
    assert [d["sha256"] for d in registry.datasets("m")] == ["2" * 64]
    assert registry.impact("m", "b", "m/accepted/1/a.csv")[0][0]["excluded_reason"] == "deletion request 42"
    with pytest.raises(UnknownModel):
        registry.exclude_dataset("m", "9" * 64, "x")


def _champion_and_candidate(status="approved"):
    registry = Registry(MemoryTable())
    registry.register(_version(sha="a" * 64))
    registry.register(_version(sha="b" * 64, status=status))
    registry.promote("m", 1)
    return registry


def test_a_challenger_takes_its_weight_of_traffic_sticky_by_key():
    registry = _champion_and_candidate()
    routing = registry.set_challenger("m", 2, 0.25)
    assert routing.traffic() == {"1": 0.75, "2": 0.25}
    assert routing.revision == 2 and routing.history[-1]["version"] == 2
    stored = registry.routing("m")
    assert stored.challenger_weight == 0.25 and stored.challenger["version"] == 2
    roles = [stored.choose(f"request-{n}")[1] for n in range(20_000)]
    assert abs(roles.count("challenger") / len(roles) - 0.25) < 0.015
    # Sticky: the same entity always lands on the same version, whatever the request.
    assert {stored.choose("patient-42")[0]["version"] for _ in range(50)} == {stored.choose("patient-42")[0]["version"]}
    # Raising the weight keeps everyone already on the challenger there (linear steps never flip a user back).
    raised = registry.set_challenger("m", 2, 0.5)
    on_challenger = [k for k in (f"request-{n}" for n in range(2000)) if stored.choose(k)[1] == "challenger"]
    assert all(raised.choose(k)[1] == "challenger" for k in on_challenger)


def test_only_approved_versions_can_be_challengers_or_shadows_and_weights_are_fractions():
    registry = _champion_and_candidate(status="candidate")
    with pytest.raises(RegistryError, match="candidate"):
        registry.set_challenger("m", 2, 0.1)
    with pytest.raises(RegistryError, match="candidate"):
        registry.set_shadow("m", 2)
    registry.set_status("m", 2, "approved")
    with pytest.raises(RegistryError, match="between 0 and 1"):
        registry.set_challenger("m", 2, 1.5)


def test_ending_a_trial_or_promoting_clears_challenger_and_shadow():
    registry = _champion_and_candidate()
    registry.set_shadow("m", 2)
    registry.set_challenger("m", 2, 0.1)
    ended = registry.end_trial("m", "p99 latency 40 ms > 25 ms")
    assert ended.challenger is None and ended.shadow is None and ended.traffic() == {"1": 1.0}
    assert ended.history[-1]["action"].startswith("rollback") and ended.history[-1]["version"] == 2
    registry.set_challenger("m", 2, 0.1)
    promoted = registry.promote("m", 2)
    assert promoted.challenger is None and promoted.traffic() == {"2": 1.0}


def _legacy_routing(table, registry):
    """A routing record where stacks before the ROUTING# partition wrote it (MODEL#m / ROUTING)."""
    registry.register(_version())
    registry.register(_version(sha="b" * 64))
    registry.promote("m", 1)
    item = table.items.pop(("ROUTING#m", "ROUTING"))
    table.put({**item, "pk": "MODEL#m"})
    return item


def test_the_routing_record_has_a_partition_of_its_own():
    table = MemoryTable()
    registry = Registry(table)
    registry.register(_version())
    registry.promote("m", 1)
    assert table.get("ROUTING#m", "ROUTING")["champion"]["version"] == 1
    assert table.get("MODEL#m", "ROUTING") is None


def test_a_legacy_routing_record_is_read_and_the_next_change_writes_the_new_one():
    table = MemoryTable()
    registry = Registry(table)
    legacy = _legacy_routing(table, registry)
    assert registry.routing("m").champion["version"] == 1 and registry.routing("m").legacy
    killed = registry.kill("m", "none")
    assert not killed.legacy and killed.revision == legacy["revision"] + 1
    assert table.get("ROUTING#m", "ROUTING")["killed"] is True
    assert registry.routing("m").killed and not registry.routing("m").legacy
    registry.promote("m", 2)  # the new record wins from now on; the old one is never read again
    assert registry.routing("m").champion["version"] == 2


def test_two_writers_racing_from_a_legacy_record_do_not_both_win():
    table = MemoryTable()
    registry = Registry(table)
    _legacy_routing(table, registry)
    first, second = registry.routing("m"), registry.routing("m")
    registry._write_routing(first, first)
    with pytest.raises(ConditionFailed):
        registry._write_routing(second, second)


def test_migrate_routing_copies_a_legacy_record_once():
    table = MemoryTable()
    registry = Registry(table)
    legacy = _legacy_routing(table, registry)
    assert registry.migrate_routing("m") is True
    assert table.get("ROUTING#m", "ROUTING") == legacy
    assert registry.migrate_routing("m") is False
    assert registry.migrate_routing("unknown") is False
