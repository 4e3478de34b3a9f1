"""The state machine "pipeline": its states and transitions, rendered as the local cloud will."""

from __future__ import annotations

from typing import Any

import pytest

from infra.asl import find_state_machines, render_definition
from tests.infra.conftest import Synth

LAMBDA_STATES = {
    "Validate": ("validate", "$.validation"),
    "Check drift": ("drift", "$.drift"),
    "Train": ("train", "$.training"),
    "Evaluate": ("evaluate", "$.evaluation"),
    "Register": ("register", "$.registration"),
    "Deploy": ("deploy", "$.deployment"),
}


def resolve(reference: dict[str, Any]) -> str:
    if "Ref" in reference:
        return "aws" if reference["Ref"] == "AWS::Partition" else f"ref:{reference['Ref']}"
    logical_id, attribute = reference["Fn::GetAtt"]
    return f"getatt:{logical_id}.{attribute}"


@pytest.fixture(scope="module")
def asl(synth: Synth) -> dict[str, Any]:
    (logical_id,) = find_state_machines(synth.json)
    return render_definition(synth.json, logical_id, resolve)


def test_one_standard_state_machine_with_logs_tracing_timeout(synth: Synth, asl: dict[str, Any]) -> None:
    (machine,) = synth.resources("AWS::StepFunctions::StateMachine").values()
    props = machine["Properties"]
    assert props.get("StateMachineType", "STANDARD") == "STANDARD"
    assert props["TracingConfiguration"] == {"Enabled": True}
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    assert asl["TimeoutSeconds"] == 3600
    assert asl["StartAt"] == "Run kind?"
    kind = asl["States"]["Run kind?"]
    assert kind["Choices"] == [{"Variable": "$.retrain", "IsPresent": True, "Next": "Prepare retrain"}]
    assert kind["Default"] == "Validate"
    assert asl["States"]["Prepare retrain"]["Type"] == "Pass"
    assert asl["States"]["Prepare retrain"]["Next"] == "Train"


def test_the_states(asl: dict[str, Any]) -> None:
    assert set(asl["States"]) == {
        *LAMBDA_STATES,
        "Run kind?",
        "Prepare retrain",
        "Data accepted?",
        "Drift detected?",
        "Alert drift",
        "Retrain?",
        "Recorded",
        "Alert data rejected",
        "Data rejected",
        "Gates passed?",
        "Notify deployed",
        "Serving",
        "Notify candidate rejected",
        "Candidate rejected",
        "Notify awaiting approval",
        "Awaiting approval",
        "Alert pipeline failed",
        "Pipeline failed",
    }


@pytest.mark.parametrize("state_name", sorted(LAMBDA_STATES))
def test_lambda_tasks(synth: Synth, asl: dict[str, Any], state_name: str) -> None:
    function, result_path = LAMBDA_STATES[state_name]
    state = asl["States"][state_name]
    assert state["Type"] == "Task"
    pipeline = synth.stack.node.find_child("Pipeline")
    construct = pipeline.node.find_child(f"{function.capitalize()}Function")
    # payload_response_only: the task's resource is the function itself and its parameters
    # are the payload, so the result is the handler's return value.
    assert state["Resource"] == f"getatt:{synth.logical_id(construct)}.Arn"
    assert state["Parameters"] == {"state.$": "$", "execution_id.$": "$$.Execution.Id"}
    assert "ResultSelector" not in state and "OutputPath" not in state
    assert state["ResultPath"] == result_path
    assert any("Lambda.ServiceException" in retry["ErrorEquals"] for retry in state["Retry"])
    assert state["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Alert pipeline failed"}]


def test_happy_path_transitions(asl: dict[str, Any]) -> None:
    states = asl["States"]
    assert states["Validate"]["Next"] == "Data accepted?"
    assert states["Train"]["Next"] == "Evaluate"
    assert states["Evaluate"]["Next"] == "Register"
    assert states["Register"]["Next"] == "Gates passed?"
    assert states["Deploy"]["Next"] == "Notify deployed"
    assert states["Notify deployed"]["Next"] == "Serving"
    assert states["Serving"]["Type"] == "Succeed"


def test_data_rejected_branch(asl: dict[str, Any]) -> None:
    states = asl["States"]
    choice = states["Data accepted?"]
    assert choice["Type"] == "Choice"
    assert choice["Choices"] == [
        {"Variable": "$.validation.verdict", "StringEquals": "rejected", "Next": "Alert data rejected"}
    ]
    assert choice["Default"] == "Check drift"
    alert = states["Alert data rejected"]
    assert alert["Resource"] == "arn:aws:states:::sns:publish"
    assert alert["Parameters"]["Message.$"] == "$.validation.summary"
    assert alert["Parameters"]["Subject"] == "Conveyor: data rejected"
    assert alert["ResultPath"] is None
    assert alert["Next"] == "Data rejected"
    assert states["Data rejected"] == {"Type": "Fail", "Error": "DataRejected", "CausePath": "$.validation.summary"}


def test_drift_and_retrain_policy_branches(asl: dict[str, Any]) -> None:
    states = asl["States"]
    assert states["Check drift"]["Next"] == "Drift detected?"
    drifted = states["Drift detected?"]
    assert drifted["Choices"] == [{"Variable": "$.drift.verdict", "StringEquals": "drift", "Next": "Alert drift"}]
    assert drifted["Default"] == "Retrain?"
    alert = states["Alert drift"]
    assert alert["Resource"] == "arn:aws:states:::sns:publish"
    assert alert["Parameters"]["Message.$"] == "$.drift.summary"
    assert alert["Next"] == "Retrain?"
    retrain = states["Retrain?"]
    assert retrain["Choices"] == [{"Variable": "$.drift.retrain", "BooleanEquals": True, "Next": "Train"}]
    assert retrain["Default"] == "Recorded"
    assert states["Recorded"]["Type"] == "Succeed"


def test_gates_branch(asl: dict[str, Any]) -> None:
    states = asl["States"]
    gates = states["Gates passed?"]
    assert gates["Choices"] == [
        {"Variable": "$.registration.status", "StringEquals": "approved", "Next": "Deploy"},
        {"Variable": "$.registration.status", "StringEquals": "candidate", "Next": "Notify awaiting approval"},
    ]
    assert states["Notify awaiting approval"]["Next"] == "Awaiting approval"
    assert states["Awaiting approval"]["Type"] == "Succeed"
    assert gates["Default"] == "Notify candidate rejected"
    assert states["Notify deployed"]["Parameters"]["Message.$"] == "$.registration.summary"
    assert states["Notify deployed"]["ResultPath"] is None
    rejected = states["Notify candidate rejected"]
    assert rejected["Parameters"]["Message.$"] == "$.evaluation.reason"
    assert rejected["ResultPath"] is None
    assert rejected["Next"] == "Candidate rejected"
    assert states["Candidate rejected"]["Type"] == "Succeed"


def test_failure_path(synth: Synth, asl: dict[str, Any]) -> None:
    states = asl["States"]
    alert = states["Alert pipeline failed"]
    topic = synth.logical_id(synth.stack.alerts_topic)
    assert alert["Parameters"]["TopicArn"] == f"ref:{topic}"
    assert alert["Parameters"]["Message.$"] == "States.JsonToString($.error)"
    assert alert["ResultPath"] is None
    assert alert["Next"] == "Pipeline failed"
    assert states["Pipeline failed"] == {"Type": "Fail", "Error": "PipelineFailed", "CausePath": "$.error.Cause"}
    for name, state in states.items():
        if state["Type"] == "Task" and name in LAMBDA_STATES:
            assert state["Catch"][0]["Next"] == "Alert pipeline failed"
