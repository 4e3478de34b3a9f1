"""The drift stage's retrain policy, on the in-memory adapters: each reason to retrain, and the
drops that are only recorded. The clock is injected, so the schedule is checked without sleeping."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from conveyor.adapters.memory import MemoryEvents, MemoryMetrics, MemoryNotifier, MemoryObjectStore, MemoryTable
from conveyor.config import Settings
from conveyor.layout import artifact_key, version_key
from conveyor.profile import build_profile
from conveyor.registry import ModelVersion
from conveyor.spec import parse_spec
from conveyor.stages.context import PipelineContext, StageEvent
from conveyor.stages.drift import check_drift

MODEL = "visits"
DATA = "data-bucket"
ARTIFACTS = "artifact-bucket"
DAY = 86400.0
TRAINED_AT = 1_700_000_000.0  # created_at of v1
TRAINING_ROWS = 2000
PLANS = ["basic", "plus", "pro"]


def _spec_dict(**retrain: Any) -> dict[str, Any]:
    return {
        "name": MODEL,
        "task": "classification",
        "target": {"column": "y"},
        "features": {"x": {"type": "number"}, "plan": {"type": "category"}},
        "estimator": {"type": "logistic_regression"},
        # per-feature tests only: the domain classifier is covered in test_drift.py
        "drift": {"domain_classifier": {"enabled": False}},
        "retrain": {"on_drift": True, "min_new_rows": 1000, "schedule": None, **retrain},
    }


def _frame(rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {"x": rng.normal(shift, 1.0, rows), "plan": rng.choice(PLANS, rows), "y": rng.integers(0, 2, rows)}
    )


@dataclass
class World:
    ctx: PipelineContext
    store: MemoryObjectStore
    table: MemoryTable
    metrics: MemoryMetrics
    events: MemoryEvents

    def drop(self, frame: pd.DataFrame, name: str) -> StageEvent:
        """Store an accepted drop, record it as a dataset (as the validate stage does) and build the event."""
        key = f"{MODEL}/accepted/{name}/{name}.csv"
        ref = self.store.put(DATA, key, frame.to_csv(index=False).encode())
        dataset = {"bucket": DATA, "key": key, "version_id": ref.version_id, "sha256": name * 4, "rows": len(frame)}
        assert self.ctx.registry.record_dataset(MODEL, {**dataset, "accepted_at": TRAINED_AT + 1})
        return StageEvent(state={"validation": {"model": MODEL, "dataset": dataset}}, execution_id="exec-1")


def _world(**retrain: Any) -> World:
    """A model serving v1, trained at TRAINED_AT on TRAINING_ROWS rows, with its reference profile."""
    spec_dict = _spec_dict(**retrain)
    spec = parse_spec(spec_dict)
    store, table, metrics, events = MemoryObjectStore(), MemoryTable(), MemoryMetrics(), MemoryEvents()
    settings = Settings(
        data_bucket=DATA, artifact_bucket=ARTIFACTS, capture_bucket="", registry_table="t", alerts_topic_arn=""
    )
    ctx = PipelineContext(settings, store, table, MemoryNotifier(), metrics, events)
    store.put(ARTIFACTS, f"{MODEL}/spec.yaml", yaml.safe_dump(spec_dict).encode())
    training = _frame(TRAINING_ROWS, seed=1)
    training_set = {"bucket": DATA, "key": f"{MODEL}/accepted/t/train.csv", "sha256": "t" * 64, "rows": TRAINING_ROWS}
    ctx.registry.record_dataset(MODEL, {**training_set, "accepted_at": TRAINED_AT - 1})
    version = ctx.registry.register(
        ModelVersion(
            model=MODEL,
            version=0,
            status="approved",
            artifact_key=artifact_key(MODEL, "a" * 64),
            sha256="a" * 64,
            lineage={"data": [training_set]},
            created_at=TRAINED_AT,
        )
    )
    store.put(
        ARTIFACTS, version_key(MODEL, version.version, "profile.json"), build_profile(training, spec).to_json().encode()
    )
    ctx.registry.promote(MODEL, version.version)
    return World(ctx, store, table, metrics, events)


def _at(days_after_training: float):
    return lambda: TRAINED_AT + days_after_training * DAY


def _drift_events(world: World) -> list[dict[str, Any]]:
    return [detail for _, kind, detail in world.events.events if kind == "DriftDetected"]


def test_drift_with_on_drift_retrains_and_says_which_feature() -> None:
    world = _world(on_drift=True, min_new_rows=10_000)
    result = check_drift(world.drop(_frame(500, seed=2, shift=1.0), "a"), world.ctx, clock=_at(1))
    assert result["verdict"] == "drift" and result["drifted_features"] == ["x"]
    assert result["retrain"] is True
    assert result["reasons"] == ["drift in x"]
    assert result["summary"].endswith("; retraining: drift in x")
    assert result["new_rows"] == 500 and result["champion_version"] == 1
    assert [d["details"]["features"] for d in _drift_events(world)] == [["x"]]
    report = world.store.get(DATA, result["report_key"])
    assert b'"reference_version": 1' in report
    assert {name for _, name, _, _ in world.metrics.datapoints} >= {"FeaturePSI", "FeatureKS", "DriftedFeatures"}


def test_a_drop_longer_than_the_sample_is_compared_on_a_sample_and_says_so(monkeypatch) -> None:
    """Beyond conveyor.drift.sample.MAX_ROWS rows, the drop's rows are a uniform sample (bounded
    memory); the verdict is the same as on the whole drop, and the report gives both row counts."""
    import json

    from conveyor.drift import sample as sampling

    frame = _frame(6000, seed=2, shift=1.0)
    first = _world(min_new_rows=10_000)
    whole = check_drift(first.drop(frame, "a"), first.ctx, clock=_at(1))
    monkeypatch.setattr(sampling, "MAX_ROWS", 1500)
    world = _world(min_new_rows=10_000)
    result = check_drift(world.drop(frame, "a"), world.ctx, clock=_at(1))
    assert result["verdict"] == whole["verdict"] == "drift"
    assert result["drifted_features"] == whole["drifted_features"] == ["x"]
    report = json.loads(world.store.get(DATA, result["report_key"]))
    assert report["rows_in_drop"] == 6000 and report["sampled"] is True and report["rows_current"] == 1500


def test_drift_without_on_drift_is_recorded_only() -> None:
    world = _world(on_drift=False, min_new_rows=10_000)
    result = check_drift(world.drop(_frame(500, seed=2, shift=1.0), "a"), world.ctx, clock=_at(1))
    assert result["verdict"] == "drift" and result["drifted_features"] == ["x"]
    assert result["retrain"] is False and result["reasons"] == []
    assert "recorded; drift found but the policy does not retrain on drift (500 new rows < 10000)" in result["summary"]
    assert len(_drift_events(world)) == 1  # still reported, only not acted on


def test_enough_new_rows_retrain_without_drift() -> None:
    world = _world(min_new_rows=1000)
    first = check_drift(world.drop(_frame(600, seed=3), "a"), world.ctx, clock=_at(1))
    assert first["verdict"] == "no_drift"
    assert first["retrain"] is False and first["new_rows"] == 600
    second = check_drift(world.drop(_frame(600, seed=4), "b"), world.ctx, clock=_at(1))
    assert second["verdict"] == "no_drift"
    assert second["retrain"] is True and second["new_rows"] == 1200  # both drops count since v1 was trained
    assert second["reasons"] == ["1200 new rows since v1 was trained (policy: at least 1000)"]
    assert not _drift_events(world)


def test_schedule_elapsed_retrains_without_drift_or_rows() -> None:
    world = _world(min_new_rows=10_000, schedule="rate(7 days)")
    result = check_drift(world.drop(_frame(300, seed=5), "a"), world.ctx, clock=_at(8))
    assert result["verdict"] == "no_drift"
    assert result["retrain"] is True
    assert result["reasons"] == ["v1 was trained 8.0 days ago (schedule rate(7 days))"]


@pytest.mark.parametrize("schedule", [None, "rate(7 days)"])
def test_few_rows_recent_training_and_no_drift_are_recorded_only(schedule: str | None) -> None:
    world = _world(min_new_rows=1000, schedule=schedule)
    result = check_drift(world.drop(_frame(300, seed=5), "a"), world.ctx, clock=_at(2))
    assert result["verdict"] == "no_drift"
    assert result["retrain"] is False and result["reasons"] == []
    not_due = ", v1 trained 2.0 days ago (schedule rate(7 days))" if schedule else ""
    assert result["summary"].endswith(f"; recorded; no retrain (300 new rows < 1000, no drift{not_due})")
    assert not _drift_events(world)


def test_schedule_is_measured_from_the_latest_training_not_the_champion() -> None:
    world = _world(min_new_rows=10_000, schedule="rate(7 days)")
    # a later candidate (rejected, not serving) was trained 6 days after v1
    world.ctx.registry.register(
        ModelVersion(
            model=MODEL,
            version=0,
            status="rejected",
            artifact_key=artifact_key(MODEL, "b" * 64),
            sha256="b" * 64,
            created_at=TRAINED_AT + 6 * DAY,
        )
    )
    result = check_drift(world.drop(_frame(300, seed=5), "a"), world.ctx, clock=_at(8))
    assert result["retrain"] is False, result["reasons"]
    assert "v2 trained 2.0 days ago (schedule rate(7 days))" in result["summary"]


def test_no_champion_trains_the_first_model() -> None:
    world = _world()
    world.table.items.pop((f"ROUTING#{MODEL}", "ROUTING"))
    result = check_drift(world.drop(_frame(10, seed=6), "a"), world.ctx, clock=_at(0))
    assert result["retrain"] is True and result["reasons"] == ["no model is serving yet"]
    assert result["verdict"] == "no_reference"
