"""One retrain per burst (conveyor.bursts) and the promotion's compare-and-set, with an injected clock."""

from __future__ import annotations

import threading

import pytest

from conveyor.adapters.memory import MemoryTable
from conveyor.bursts import FOLDED, MAX_SETTLE_SECONDS, OWNER, DriftAlerts, LeaseLost, RetrainLeases
from conveyor.deployment import DeploymentInProgress, Deployments
from conveyor.dispatch import ignored_reason
from conveyor.registry import ChampionChanged, ModelVersion, Registry
from conveyor.stages.bursts import ending_of

MODEL = "m"


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_burst_has_one_owner_and_every_other_drop_is_folded_into_it() -> None:
    clock = Clock()
    leases = RetrainLeases(MemoryTable(), clock)
    first = leases.claim(MODEL, "exec-1", "m/incoming/export/part-0.csv", window=2, lease_seconds=3600)
    assert first.outcome == OWNER and first.owner == "exec-1" and first.wait_seconds == 2
    others = [
        leases.claim(MODEL, f"exec-{i}", f"m/incoming/export/part-{i}.csv", window=2, lease_seconds=3600)
        for i in range(2, 21)
    ]
    assert {c.outcome for c in others} == {FOLDED} and {c.owner for c in others} == {"exec-1"}
    assert leases.get(MODEL)["folded_count"] == 19  # type: ignore[index]


def test_the_owner_waits_until_no_drop_joined_for_the_window() -> None:
    clock = Clock()
    leases = RetrainLeases(MemoryTable(), clock)
    leases.claim(MODEL, "exec-1", "m/incoming/a.csv", window=10, lease_seconds=3600)
    clock.now += 6
    leases.claim(MODEL, "exec-2", "m/incoming/b.csv", window=10, lease_seconds=3600)
    clock.now += 6  # 12 s after the claim, 6 s after the last drop joined
    waiting = leases.start(MODEL, "exec-1")
    assert waiting["ready"] is False and waiting["wait_seconds"] == 4
    clock.now += 4
    started = leases.start(MODEL, "exec-1")
    assert started["ready"] is True and leases.get(MODEL)["state"] == "running"  # type: ignore[index]


def test_a_drop_during_the_training_queues_exactly_one_follow_up_round() -> None:
    clock = Clock()
    leases = RetrainLeases(MemoryTable(), clock)
    leases.claim(MODEL, "exec-1", "m/incoming/a.csv", window=1, lease_seconds=3600)
    clock.now += 1
    assert leases.start(MODEL, "exec-1")["ready"]
    late = [leases.claim(MODEL, f"late-{i}", f"m/incoming/l{i}.csv", window=1, lease_seconds=3600) for i in range(5)]
    assert all(c.outcome == FOLDED and c.state == "running" and c.owner == "exec-1" for c in late)
    finished = leases.finish(MODEL, "exec-1")
    assert finished["pending"] is True and finished["round"] == 2
    clock.now += 1
    assert leases.start(MODEL, "exec-1")["ready"]  # the same execution trains the second round
    assert leases.finish(MODEL, "exec-1")["pending"] is False  # nothing joined: released
    again = leases.claim(MODEL, "exec-9", "m/incoming/next.csv", window=1, lease_seconds=3600)
    assert again.outcome == OWNER  # a later burst owns a new lease


def test_a_dead_owner_cannot_hold_the_lease_after_it_expires() -> None:
    clock = Clock()
    leases = RetrainLeases(MemoryTable(), clock)
    leases.claim(MODEL, "dead", "m/incoming/a.csv", window=1, lease_seconds=100)
    clock.now += 1
    leases.start(MODEL, "dead")
    clock.now += 50
    assert leases.claim(MODEL, "alive", "m/incoming/b.csv", window=1, lease_seconds=100).outcome == FOLDED
    clock.now += 51
    taken = leases.claim(MODEL, "alive-2", "m/incoming/c.csv", window=1, lease_seconds=100)
    assert taken.outcome == OWNER and leases.get(MODEL)["took_over"] == "dead"  # type: ignore[index]
    with pytest.raises(LeaseLost):
        leases.start(MODEL, "dead")
    assert leases.finish(MODEL, "dead")["held"] is False  # the dead owner's late finish changes nothing


def test_wait_for_holds_the_training_until_the_marker_is_there_at_most_an_hour() -> None:
    clock = Clock()
    leases = RetrainLeases(MemoryTable(), clock)
    leases.claim(MODEL, "exec-1", "m/incoming/export/part-0.csv", window=1, lease_seconds=3600)
    marker: set[str] = set()

    def missing(folders: list[str]) -> list[str]:
        return [f for f in folders if f not in marker]

    clock.now += 5
    assert leases.start(MODEL, "exec-1", marker_missing=missing)["ready"] is False
    marker.add("m/incoming/export")
    assert leases.start(MODEL, "exec-1", marker_missing=missing)["ready"] is True
    leases.finish(MODEL, "exec-1")
    leases.claim(MODEL, "exec-2", "m/incoming/other/part-0.csv", window=1, lease_seconds=3600)
    clock.now += MAX_SETTLE_SECONDS
    overdue = leases.start(MODEL, "exec-2", marker_missing=missing)
    assert overdue["ready"] is True and "without the marker" in overdue["summary"]


def test_concurrent_claims_give_one_owner() -> None:
    leases = RetrainLeases(MemoryTable(), Clock())
    results = []
    barrier = threading.Barrier(8)

    def claim(i: int) -> None:
        barrier.wait()
        results.append(leases.claim(MODEL, f"exec-{i}", f"m/incoming/{i}.csv", window=1, lease_seconds=60))

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    owners = [r for r in results if r.outcome == OWNER]
    assert len(owners) == 1 and {r.owner for r in results} == {owners[0].owner}


def test_one_drift_alert_per_burst() -> None:
    clock = Clock()
    alerts = DriftAlerts(MemoryTable(), clock)
    decisions = []
    for i in range(20):
        clock.now += 3
        decisions.append(alerts.should_alert(MODEL, f"exec-{i}", window=2))
    assert decisions == [True] + [False] * 19
    clock.now += 1000
    assert alerts.should_alert(MODEL, "next-burst", window=2) is True


def _version(registry: Registry, status: str = "approved") -> int:
    return registry.register(ModelVersion(MODEL, 0, status, "k", "sha")).version


def test_promotion_is_a_compare_and_set_on_the_champion() -> None:
    registry = Registry(MemoryTable())
    v1, v2, v3 = _version(registry), _version(registry), _version(registry)
    registry.promote(MODEL, v1, expected_champion=None)
    registry.promote(MODEL, v2, expected_champion=v1)  # v2 was compared with v1, which serves
    with pytest.raises(ChampionChanged, match="compared with v1, but v2 serves"):
        registry.promote(MODEL, v3, expected_champion=v1)
    assert registry.champion(MODEL).version == v2  # type: ignore[union-attr]
    history = registry.get(MODEL, v2).history
    assert history[-1]["status"] == "production" and history[-1]["reason"].startswith("promote")
    assert registry.get(MODEL, v1).history[-1] == {**registry.get(MODEL, v1).history[-1], "status": "archived"}


def test_two_deployments_of_one_model_never_interleave() -> None:
    deployments = Deployments(MemoryTable())
    deployments.acquire(MODEL, 2, "exec-a", until=2000.0, now=1000.0)
    deployments.acquire(MODEL, 2, "exec-a", until=2000.0, now=1001.0)  # the holder again: fine
    with pytest.raises(DeploymentInProgress):
        deployments.acquire(MODEL, 3, "exec-b", until=3000.0, now=1500.0)
    assert deployments.release(MODEL, "exec-b") is False
    assert deployments.release(MODEL, "exec-a") is True
    deployments.acquire(MODEL, 3, "exec-b", until=3000.0, now=1600.0)
    deployments.acquire(MODEL, 4, "exec-c", until=9000.0, now=3001.0)  # exec-b's lock expired


@pytest.mark.parametrize(
    ("state", "ending"),
    [
        ({"promotion": {"version": 2}}, "serving"),
        ({"promotion": {"stale": True}, "registration": {"status": "superseded"}}, "superseded"),
        ({"registration": {"status": "rejected"}}, "candidate_rejected"),
        ({"rollback": {"summary": "x"}, "bake": {"verdict": "breach"}}, "rolled_back"),
        ({"bake": {"verdict": "interrupted"}}, "interrupted"),
        ({"error": {"Error": "Rejected"}, "deployment": {}}, "rejected_by_reviewer"),
        ({"error": {"Error": "States.Timeout"}, "deployment": {}}, "approval_expired"),
        ({"error": {"Error": "States.TaskFailed"}}, "failed"),
    ],
)
def test_the_ending_of_a_run(state: dict, ending: str) -> None:  # type: ignore[type-arg]
    assert ending_of(state) == ending


@pytest.mark.parametrize(
    ("key", "size", "ignored"),
    [
        ("m/incoming/export/_SUCCESS", 0, True),
        ("m/incoming/export/_SUCCESS", 12, True),
        ("m/incoming/export/.part-00000.csv.crc", 12, True),
        ("m/incoming/export/part-00000.csv.crc", 12, True),
        ("m/incoming/export/_temporary/0/part-00000.csv", 100, True),
        ("m/incoming/export/_manifest.json", 100, True),
        ("m/incoming/export/", 0, True),
        ("m/incoming/export/empty.csv", 0, True),
        ("m/incoming/export/part-00000.csv", 100, False),
        ("m/incoming/data.csv", None, False),
    ],
)
def test_the_dispatcher_ignores_what_exports_write_beside_their_parts(
    key: str, size: int | None, ignored: bool
) -> None:
    assert (ignored_reason(key, size) is not None) == ignored
