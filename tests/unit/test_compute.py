"""``training.compute``: the spec's setting, what ``auto`` picks at its limits, and the stages around the
containers ("Choose compute" stages the input, "Read training result" reads the result back)."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest
import yaml

from conveyor import layout
from conveyor.compute import (
    CAPACITY,
    COMPUTES,
    Compute,
    TrainingLoad,
    choose_compute,
    estimated_mb,
    fargate_size,
    largest_fitting,
    training_load,
)
from conveyor.errors import SpecError, TrainingError
from conveyor.ports import ObjectMissing
from conveyor.spec import parse_spec
from conveyor.stages.context import StageEvent
from conveyor.stages.train import plan_training, train_from_pointer
from conveyor.stages.train_result import read_training_result
from tests.conftest import DATASET as DEMO_DATA
from tests.unit.test_evidence_bundle import ARTIFACTS, MODEL, _drop, _spec
from tests.unit.test_validate_stage import _ctx


def test_the_spec_defaults_to_auto_and_names_the_allowed_values() -> None:
    assert parse_spec(_spec()).training.compute == "auto"
    for compute in ("lambda", "fargate", "sagemaker"):
        spec = _spec()
        spec["training"] = {"compute": compute}
        assert parse_spec(spec).training.compute == compute
    spec = _spec()
    spec["training"] = {"compute": "gpu"}
    with pytest.raises(SpecError, match=r"training\.compute: must be one of auto, lambda, fargate, sagemaker"):
        parse_spec(spec)


@pytest.mark.parametrize("compute", COMPUTES[:-1])
def test_auto_picks_a_compute_up_to_its_limit_and_the_next_one_past_it(compute: Compute) -> None:
    limit = largest_fitting(compute)
    bigger = COMPUTES[COMPUTES.index(compute) + 1]
    assert choose_compute("auto", TrainingLoad(limit.rows, 0, 1)).compute == compute
    assert choose_compute("auto", TrainingLoad(limit.rows + 1000, 0, 1)).compute == bigger
    assert choose_compute("auto", TrainingLoad(0, limit.size_bytes, 1)).compute == compute
    assert choose_compute("auto", TrainingLoad(0, limit.size_bytes + 10**6, 1)).compute == bigger


def test_the_limits_are_those_the_readme_states() -> None:
    # README "Training compute": lambda up to 3.2M rows / 263 MB, fargate up to 150M rows / 12 GB.
    assert largest_fitting("lambda").rows == 3_240_615 and largest_fitting("lambda").size_bytes == 263_300_000
    assert largest_fitting("fargate").rows == 150_775_384
    assert CAPACITY["lambda"].memory_mb == 3008 and CAPACITY["fargate"].memory_mb == 122880


def test_auto_sends_what_no_compute_holds_to_the_largest_and_the_spec_overrides_auto() -> None:
    huge = TrainingLoad(10**10, 0, 1)
    assert choose_compute("auto", huge).compute == "sagemaker"
    assert "more than every compute holds" in choose_compute("auto", huge).reason
    small = TrainingLoad(10, 100, 1)
    assert choose_compute("auto", small).compute == "lambda"
    assert choose_compute("sagemaker", small).compute == "sagemaker"
    assert choose_compute("sagemaker", small).reason == "training.compute is sagemaker"


def test_a_fargate_run_gets_the_smallest_task_that_holds_it() -> None:
    assert fargate_size(TrainingLoad(5_000_000, 0, 1)) == (2048, 16384)  # 3,550 MB
    at_limit = int((0.8 * 16384 - 300) / 650 * 1e6)
    assert fargate_size(TrainingLoad(at_limit, 0, 1)) == (2048, 16384)
    assert fargate_size(TrainingLoad(at_limit + 1000, 0, 1)) == (4096, 30720)
    assert fargate_size(TrainingLoad(140_000_000, 0, 1)) == (16384, 122880)
    assert fargate_size(TrainingLoad(10**10, 0, 1)) == (16384, 122880)  # the largest, whatever the estimate


def test_the_load_is_what_the_window_reads() -> None:
    datasets: list[dict[str, Any]] = [{"rows": 1000, "size": 10_000}, {"rows": 3000, "size": 30_000}, {"rows": None}]
    assert training_load(datasets) == TrainingLoad(4000, 40_000, 3)
    assert training_load(datasets, last_rows=2000) == TrainingLoad(2000, 20_000, 3)
    assert training_load(datasets, last_rows=10**6) == TrainingLoad(4000, 40_000, 3)
    assert estimated_mb(TrainingLoad(5_000_000, 0, 1)) == pytest.approx(300 + 5 * 650)


def _trained_world(compute: str) -> tuple[Any, Any]:
    ctx, store = _ctx(0.0)
    spec = _spec()
    spec["training"] = {"compute": compute}
    store.put(ARTIFACTS, layout.spec_key(MODEL), yaml.safe_dump(spec).encode())
    _drop(ctx, pd.read_csv(DEMO_DATA).head(1500), "part0", at=0.0)
    return ctx, store


def test_choose_compute_stages_the_input_and_the_container_result_reaches_the_state() -> None:
    ctx, store = _trained_world("fargate")
    event: StageEvent[Any] = StageEvent(
        state={"validation": {"model": MODEL}}, execution_id="arn:aws:states:x:1:execution:m:run1"
    )
    plan = plan_training(event, ctx)
    assert plan["compute"] == "fargate" and plan["requested"] == "fargate"
    assert plan["rows"] == 1500 and plan["data_objects"] == 1 and plan["size_bytes"] == 0  # no size recorded
    assert plan["input_key"] == layout.staging_key(MODEL, "run1", layout.TRAINING_INPUT)
    assert plan["result_key"] == layout.staging_key(MODEL, "run1", layout.TRAINING_RESULT)
    assert json.loads(store.get(ARTIFACTS, plan["input_key"])) == {
        "state": {"validation": {"model": MODEL}},
        "execution_id": event.execution_id,
    }
    assert len(plan["job_name"]) <= 63 and plan["job_name"].startswith(f"train-{MODEL}-")
    assert (plan["cpu"], plan["memory_mib"]) == ("2048", "16384")
    trained = train_from_pointer(plan["input_key"], ctx)  # what the container runs
    read = read_training_result(StageEvent(state={"compute": plan}, execution_id=event.execution_id), ctx)
    assert read == json.loads(json.dumps(trained, default=str))
    assert read["candidate_key"] == layout.staging_key(MODEL, "run1", layout.CANDIDATE) and read["rows"] == 1500


def test_a_failed_or_missing_container_result_fails_read_training_result() -> None:
    ctx, store = _trained_world("sagemaker")
    plan = {"compute": "sagemaker", "result_key": layout.staging_key(MODEL, "run2", layout.TRAINING_RESULT)}
    event = StageEvent(state={"compute": plan}, execution_id="run2")
    with pytest.raises(TrainingError, match="the sagemaker training run wrote no result"):
        read_training_result(event, ctx)
    missing_model = layout.staging_key("nobody", "run2", layout.TRAINING_INPUT)
    store.put(ARTIFACTS, missing_model, json.dumps({"state": {"validation": {"model": "nobody"}}}).encode())
    with pytest.raises(ObjectMissing):  # no spec for "nobody": the container records the error, then fails
        train_from_pointer(missing_model, ctx)
    failure = json.loads(store.get(ARTIFACTS, layout.beside(missing_model, layout.TRAINING_RESULT)))
    assert failure["error"]["type"] == "ObjectMissing"
    plan["result_key"] = layout.beside(missing_model, layout.TRAINING_RESULT)
    with pytest.raises(TrainingError, match="training on sagemaker failed: ObjectMissing"):
        read_training_result(event, ctx)
