"""The deployment's domain: the plan, the bake analysis on hand-made capture records, approvals."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from conveyor.adapters.memory import MemoryCallbacks, MemoryEvents, MemoryObjectStore, MemoryTable
from conveyor.deployment import (
    ApprovalExpired,
    Checks,
    Deployments,
    NoApprovalPending,
    approve,
    assess_bake,
    capture_prefixes,
    next_phase,
    plan_deployment,
    read_capture,
    reject,
    score_shift,
    version_stats,
)
from conveyor.registry import ModelVersion, Registry, UnknownModel
from conveyor.spec import Deployment

CHAMPION, CHALLENGER = 1, 2
T0 = 1_795_000_000.0


def record(
    version: int,
    role: str,
    *,
    score: float = 0.5,
    latency: float = 2.0,
    status: int = 200,
    at: float = T0 + 1,
    rows: int = 1,
) -> dict[str, Any]:
    """One capture record as docs/capture.md describes it (binary classifier: probabilities of "0" and "1")."""
    ok = status == 200
    return {
        "model": "m",
        "model_version": version,
        "role": role,
        "served": role != "shadow",
        "request_id": f"r-{random.random()}",
        "timestamp": at,
        "latency_ms": latency,
        "status": status,
        "error_code": None if ok else "model_unavailable",
        "inputs": [{"age": 40}] * rows,
        "predictions": [int(score > 0.5)] * rows if ok else [],
        "probabilities": [{"0": 1 - score, "1": score}] * rows if ok else [],
        "warnings": [],
    }


def traffic(
    n_champion: int = 300,
    n_trial: int = 300,
    *,
    role: str = "challenger",
    trial_scores: Any = None,
    trial_latency: float = 2.0,
    trial_errors: int = 0,
    seed: int = 0,
) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    records = [record(CHAMPION, "champion", score=rng.betavariate(2, 3)) for _ in range(n_champion)]
    for i in range(n_trial):
        score = trial_scores(rng) if trial_scores else rng.betavariate(2, 3)
        status = 503 if i < trial_errors else 200
        records.append(record(CHALLENGER, role, score=score, latency=trial_latency, status=status))
    return records


def assess(records: list[dict[str, Any]], role: str = "challenger", extensions: int = 0, **checks: Any) -> Any:
    return assess_bake(
        records,
        version=CHALLENGER,
        role=role,
        champion_version=CHAMPION,
        checks=Checks(**{"min_requests": 100, **checks}),
        extensions=extensions,
    )


# --- the bake decision ----------------------------------------------------------------------------


def test_a_healthy_challenger_passes() -> None:
    result = assess(traffic())
    assert result.verdict == "pass", result.summary
    assert result.trial.requests == 300 and result.trial.errors == 0
    assert result.shift is not None and result.shift.shift < 0.05
    assert {c["name"] for c in result.checks} == {"error_rate", "p99_latency_ms", "score_shift"}
    assert all(c["passed"] and c["decided"] for c in result.checks)


def test_errors_breach() -> None:
    result = assess(traffic(trial_errors=30))  # 10% of its requests fail
    assert result.verdict == "breach"
    assert "error rate 10.0% (30 of 300) > 1.0%" in result.summary
    (check,) = [c for c in result.checks if c["name"] == "error_rate"]
    assert check["value"] == pytest.approx(0.1) and check["champion"] == 0.0 and not check["passed"]


def test_latency_breach() -> None:
    result = assess(traffic(trial_latency=400.0), max_p99_latency_ms=250.0)
    assert result.verdict == "breach" and "p99 latency 400.0 ms > 250 ms" in result.summary


def test_a_few_slow_requests_under_the_p99_do_not_breach() -> None:
    records = traffic()
    for r in records[300:302]:  # 2 of 300 challenger requests slow: under 1%
        r["latency_ms"] = 900.0
    assert assess(records, max_p99_latency_ms=250.0).verdict == "pass"


def test_score_shift_breach() -> None:
    # The challenger's scores sit far higher than the champion's: a model that says "yes" to everyone.
    result = assess(traffic(trial_scores=lambda rng: rng.betavariate(6, 2)))
    assert result.verdict == "breach"
    assert "score shift (debiased PSI)" in result.summary
    assert result.shift is not None and result.shift.shift > 0.5 and result.shift.mean_difference > 0.3


def test_too_few_requests_extend_the_bake_then_roll_back() -> None:
    records = traffic(n_trial=40)
    first = assess(records, extensions=0, max_extensions=2)
    assert first.verdict == "extend" and "40 requests < min_requests 100" in first.summary
    assert assess(records, extensions=1, max_extensions=2).verdict == "extend"
    last = assess(records, extensions=2, max_extensions=2)
    assert last.verdict == "insufficient" and "never promoted on missing evidence" in last.summary
    assert not any(c["decided"] for c in last.checks if c["name"] == "score_shift")


def test_a_breach_that_more_requests_cannot_undo_is_decided_at_once() -> None:
    # 20 requests so far, all failed: even 80 more successes would leave the rate at 20% > 1%.
    result = assess(traffic(n_trial=20, trial_errors=20))
    assert result.verdict == "breach" and "error rate 100.0%" in result.summary
    # 1 failure in 20 could still end under 1% of 100: no decision yet.
    assert assess(traffic(n_trial=20, trial_errors=1)).verdict == "extend"
    # 2 slow requests among 20: more than 1% of 100 already, so the p99 over 100 would be slow too.
    slow = traffic(n_trial=20)
    for r in slow[-2:]:
        r["latency_ms"] = 900.0
    assert assess(slow, max_p99_latency_ms=250.0).verdict == "breach"


def test_client_errors_say_nothing_about_the_model() -> None:
    records = traffic()
    records += [record(CHALLENGER, "challenger", status=400) for _ in range(100)]
    result = assess(records)
    assert result.verdict == "pass" and result.trial.requests == 300


def test_shadow_phase_judges_the_shadow_records() -> None:
    shadowed = traffic(role="shadow", trial_errors=50)
    assert assess(shadowed, role="shadow").verdict == "breach"
    assert assess(shadowed, role="challenger").verdict == "extend"  # no challenger records at all


def test_the_champion_needs_enough_requests_to_compare_scores() -> None:
    result = assess(traffic(n_champion=10))
    assert result.verdict == "extend" and "the champion answered 10 < 100" in result.summary
    unchecked = assess(traffic(n_champion=10), max_score_shift=None)
    assert unchecked.verdict == "pass"


def test_thresholds_set_to_none_are_not_checked() -> None:
    result = assess(traffic(trial_errors=100), max_error_rate=None, max_score_shift=None)
    assert result.verdict == "pass"
    assert [c["name"] for c in result.checks] == ["p99_latency_ms"]


def test_min_requests_zero_decides_on_whatever_arrived() -> None:
    assert assess(traffic(n_trial=3), min_requests=0, max_score_shift=None).verdict == "pass"


# --- score shift and stats ------------------------------------------------------------------------


def test_debiased_psi_rarely_alarms_on_one_distribution_from_min_requests_on() -> None:
    rng = random.Random(1)
    for n in (100, 1000):
        shifts = [score_shift([rng.random() for _ in range(n)], [rng.random() for _ in range(n)]) for _ in range(100)]
        assert sum(s.shift > 0.2 for s in shifts) <= 2, n  # measured: 0.7% at 100 rows a side, 0 at 1,000
        assert sum(s.psi > 0.2 for s in shifts) >= sum(s.shift > 0.2 for s in shifts)
        assert all(s.shift == max(0.0, round(s.psi - s.expected_noise, 6)) for s in shifts)


def test_psi_of_labels_and_of_regression_predictions() -> None:
    labels = score_shift(["a"] * 50 + ["b"] * 50, ["a"] * 90 + ["b"] * 10)
    assert labels.bins == 2 and labels.shift > 0.5 and labels.mean_difference is None
    numbers = score_shift([float(i) for i in range(100)], [float(i) + 50 for i in range(100)])
    assert numbers.mean_difference == 50.0 and numbers.shift > 1


def test_version_stats_reads_scores_by_task() -> None:
    regression = [{**record(2, "challenger"), "predictions": [3.5, 4.0], "probabilities": None}]
    assert version_stats(regression, version=2, role="challenger").scores == [3.5, 4.0]
    multiclass = [{**record(2, "challenger"), "predictions": ["x"], "probabilities": [{"x": 0.5, "y": 0.3, "z": 0.2}]}]
    assert version_stats(multiclass, version=2, role="challenger").scores == ["x"]
    binary = version_stats([record(2, "challenger", score=0.8, rows=3)], version=2, role="challenger")
    assert binary.scores == [0.8, 0.8, 0.8] and binary.rows == 3 and binary.mean_score == 0.8


# --- capture records in the bucket ----------------------------------------------------------------


def test_capture_is_read_from_the_hours_of_the_window_only() -> None:
    store = MemoryObjectStore()
    start = 1_795_077_990.0  # 2026-11-19 08:46:30 UTC; the window crosses into 09:00
    assert capture_prefixes("m", start, start + 1200) == [
        "m/capture/2026/11/19/07/",
        "m/capture/2026/11/19/08/",
        "m/capture/2026/11/19/09/",
    ]
    inside = [record(2, "challenger", at=start + 5), record(1, "champion", at=start + 700)]
    before = [record(2, "challenger", at=start - 10)]
    lines = "\n".join(json.dumps(r) for r in [*before, *inside[:1]]) + "\nnot json\n"
    store.put("capture", "m/capture/2026/11/19/08/a.jsonl", lines.encode())
    store.put("capture", "m/capture/2026/11/19/09/b.jsonl", json.dumps(inside[1]).encode())
    store.put("capture", "m/capture/2026/11/19/05/old.jsonl", json.dumps(inside[0]).encode())
    store.put("capture", "other/capture/2026/11/19/08/c.jsonl", json.dumps(inside[0]).encode())
    found = read_capture(store, "capture", "m", start, start + 1200)
    assert sorted(r["timestamp"] for r in found) == [start + 5, start + 700]


# --- the plan -------------------------------------------------------------------------------------


def test_plans_by_strategy() -> None:
    canary = plan_deployment(
        Deployment(strategy="canary", canary={"weight": 0.5, "bake_seconds": 4}), model="m", version=2, champion=1
    )
    assert canary["phases"] == [{"kind": "challenger", "weight": 0.5, "bake_seconds": 4}]
    assert canary["has_next_phase"] and canary["phase"] == -1 and canary["approval"] == "auto"
    linear = plan_deployment(
        Deployment(strategy="linear", linear={"steps": [0.1, 0.5], "bake_seconds": 9}), model="m", version=2, champion=1
    )
    assert [p["weight"] for p in linear["phases"]] == [0.1, 0.5]
    shadow = plan_deployment(Deployment(strategy="shadow_then_canary"), model="m", version=2, champion=1)
    assert [p["kind"] for p in shadow["phases"]] == ["shadow", "challenger"]
    assert plan_deployment(Deployment(), model="m", version=2, champion=1)["phases"] == []


def test_the_first_version_is_promoted_at_once_whatever_the_strategy() -> None:
    first = plan_deployment(Deployment(strategy="canary"), model="m", version=1, champion=None)
    assert first["phases"] == [] and not first["has_next_phase"] and "no champion" in first["note"]


def test_next_phase_advances_and_says_when_it_is_the_last() -> None:
    plan = plan_deployment(
        Deployment(strategy="linear", linear={"steps": [0.1, 0.5], "bake_seconds": 9}), model="m", version=2, champion=1
    )
    first = next_phase(plan, now=10.0)
    assert first["phase"] == 0 and first["has_next_phase"] and first["bake_seconds"] == 9 and first["started_at"] == 10
    second = next_phase(first, now=20.0)
    assert second["phase"] == 1 and not second["has_next_phase"]


# --- approvals ------------------------------------------------------------------------------------


@pytest.fixture
def waiting() -> tuple[Registry, Deployments, MemoryCallbacks, MemoryEvents]:
    table = MemoryTable()
    registry, deployments = Registry(table), Deployments(table)
    registry.register(ModelVersion(model="m", version=0, status="candidate", artifact_key="k", sha256="a" * 64))
    plan = plan_deployment(Deployment(approval="manual"), model="m", version=1, champion=None)
    deployments.start(plan, execution="arn:execution:1")
    deployments.update("m", 1, "awaiting_approval", token="token-1", expires_at=T0)
    callbacks = MemoryCallbacks()
    callbacks.wait("token-1")
    return registry, deployments, callbacks, MemoryEvents()


def test_approve_resumes_the_deployment_and_approves_the_version(waiting: Any) -> None:
    registry, deployments, callbacks, events = waiting
    result = approve(registry, deployments, callbacks, events, model="m", version=1, by="ana")
    assert result["status"] == "approved" and registry.get("m", 1).status == "approved"
    assert callbacks.answers["token-1"][0] == "success"
    assert callbacks.answers["token-1"][1]["approved_by"] == "ana"
    ((source, name, detail),) = events.events
    assert (source, name) == ("conveyor.registry", "ModelApproved") and detail["correlation_id"] == "arn:execution:1"
    record = deployments.get("m", 1)
    assert record is not None and record["state"] == "approved" and "token" not in record
    with pytest.raises(NoApprovalPending, match="no deployment of m v1 is waiting for approval"):
        approve(registry, deployments, callbacks, events, model="m", version=1, by="ana")


def test_reject_fails_the_waiting_task_and_rejects_the_version(waiting: Any) -> None:
    registry, deployments, callbacks, events = waiting
    result = reject(registry, deployments, callbacks, events, model="m", version=1, by="ana", reason="too slow")
    assert result["execution_stopped"] is True
    version = registry.get("m", 1)
    assert version.status == "rejected" and version.decision == "rejected by ana: too slow"
    assert callbacks.answers["token-1"] == ("failure", {"error": "Rejected", "cause": "rejected by ana: too slow"})
    assert [name for _, name, _ in events.events] == ["ModelRejected"]


def test_an_expired_request_leaves_the_version_a_candidate(waiting: Any) -> None:
    registry, deployments, callbacks, events = waiting
    callbacks.waiting.clear()  # the execution timed out
    with pytest.raises(ApprovalExpired, match="no longer waits"):
        approve(registry, deployments, callbacks, events, model="m", version=1, by="ana")
    assert registry.get("m", 1).status == "candidate"
    record = deployments.get("m", 1)
    assert record is not None and record["state"] == "expired"
    assert events.events == []


def test_unknown_versions_and_versions_not_waiting_are_refused(waiting: Any) -> None:
    registry, deployments, callbacks, events = waiting
    with pytest.raises(UnknownModel):
        approve(registry, deployments, callbacks, events, model="m", version=7, by="ana")
    registry.register(ModelVersion(model="m", version=0, status="approved", artifact_key="k", sha256="b" * 64))
    with pytest.raises(NoApprovalPending, match="no deployment"):
        approve(registry, deployments, callbacks, events, model="m", version=2, by="ana")


def test_deployment_records_list_what_is_in_progress(waiting: Any) -> None:
    _, deployments, _, _ = waiting
    assert [d["version"] for d in deployments.in_progress("m")] == [1]
    deployments.update("m", 1, "rolled_back", reason="errors")
    assert deployments.in_progress("m") == []
    history = [h["state"] for h in deployments.for_model("m")[0]["history"]]
    assert history == ["planned", "awaiting_approval", "rolled_back"]
