"""Resuming an interrupted execution: where, with what input, under which name."""

from __future__ import annotations

import json
from typing import Any

import pytest

from conveyor.resume import CannotResume, is_interrupted, plan_resumption, resumed_from, retry_name

DROP = json.dumps({"detail": {"bucket": {"name": "data"}, "object": {"key": "m/incoming/a.csv"}}})


def _entered(name: str, state: dict[str, Any]) -> dict[str, Any]:
    return {"type": "TaskStateEntered", "stateEnteredEventDetails": {"name": name, "input": json.dumps(state)}}


def test_resumes_at_the_last_state_entered_with_its_input() -> None:
    events = [
        _entered("Validate", {"detail": {}}),
        {"type": "TaskStateExited", "stateExitedEventDetails": {"name": "Validate"}},
        _entered("Train", {"detail": {}, "validation": {"verdict": "accepted"}}),
        {"type": "TaskScheduled"},
    ]
    plan = plan_resumption("m-abc", DROP, events, {"m-abc"})
    assert plan.state == "Train" and plan.name == "m-abc-r1"
    assert plan.input == {
        "detail": {},
        "validation": {"verdict": "accepted"},
        "resume": {"state": "Train", "execution": "m-abc"},
    }
    assert resumed_from(json.dumps(plan.input)) == "m-abc"


def test_never_through_validate_again_a_drop_stopped_before_it_finished_starts_over() -> None:
    plan = plan_resumption("m-abc", DROP, [_entered("Validate", {"detail": {}})], set())
    assert plan.state is None and plan.input == json.loads(DROP)


def test_a_resumption_interrupted_again_resumes_from_the_latest() -> None:
    state = {"deployment": {"model": "m"}, "resume": {"state": "Train", "execution": "m-abc"}}
    plan = plan_resumption("m-abc-r1", DROP, [_entered("Bake", state)], {"m-abc", "m-abc-r1"})
    assert plan.name == "m-abc-r2"
    assert plan.input["resume"] == {"state": "Bake", "execution": "m-abc-r1"}


def test_a_final_state_cannot_be_resumed() -> None:
    with pytest.raises(CannotResume):
        plan_resumption("m-abc", DROP, [_entered("Pipeline failed", {})], set())


def test_retry_names_fit_step_functions_limit() -> None:
    name = "m" * 80
    assert len(retry_name(name, set())) == 80
    assert retry_name("x-r1", {"x-r1"}) == "x-r2"


def test_only_an_execution_the_stop_interrupted_counts_as_interrupted() -> None:
    assert is_interrupted({"status": "ABORTED", "error": "Interrupted"})
    assert not is_interrupted({"status": "ABORTED"})
    assert not is_interrupted({"status": "FAILED", "error": "Interrupted"})


@pytest.mark.parametrize("stopped_in", ["Train on SageMaker", "Training compute?"])
def test_an_interrupted_sagemaker_job_resumes_at_choose_compute_which_names_a_new_job(stopped_in: str) -> None:
    state = {"detail": {}, "compute": {"compute": "sagemaker", "job_name": "train-m-0123456789ab"}}
    plan = plan_resumption("m-abc", DROP, [_entered(stopped_in, state)], {"m-abc"})
    assert plan.state == "Choose compute" and plan.reached == stopped_in
    assert "compute" not in plan.input  # Choose compute plans again, with a job name never used
    assert plan.input["resume"] == {"state": "Choose compute", "execution": "m-abc"}
