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
    "Plan deployment": ("plan", "$.deployment"),
    "Start phase": ("trial", "$.deployment"),
    "Check bake": ("bake", "$.bake"),
    "Roll back": ("rollback", "$.rollback"),
    "Deploy": ("deploy", "$.promotion"),
    "Claim retrain": ("claim", "$.claim"),
    "Start retrain": ("settle", "$.claim"),
    "Finish run": ("finish", "$.finish"),
    "Choose compute": ("train_plan", "$.compute"),
    "Read training result": ("train_result", "$.training"),
}
# Where each Lambda task goes when it fails: the pipeline's failure alert, except once traffic may have
# moved to the new version: then the trial is rolled back first.
CATCH_TARGET = {
    **{name: "Alert pipeline failed" for name in LAMBDA_STATES},
    "Start phase": "Roll back",
    "Check bake": "Roll back",
    "Deploy": "Roll back",
    "Finish run": "Pipeline failed",  # every run ends through it: its own failure cannot loop back to it
}


def resolve(reference: dict[str, Any]) -> str:
    if "Ref" in reference:
        return "aws" if reference["Ref"] == "AWS::Partition" else f"ref:{reference['Ref']}"
    logical_id, attribute = reference["Fn::GetAtt"]
    return f"getatt:{logical_id}.{attribute}"


@pytest.fixture(scope="module")
def asl(synth: Synth) -> dict[str, Any]:
    logical_id = synth.logical_id(synth.stack.state_machine)
    assert logical_id in find_state_machines(synth.json)
    return render_definition(synth.json, logical_id, resolve)


def test_one_standard_state_machine_with_logs_tracing_timeout(synth: Synth, asl: dict[str, Any]) -> None:
    machine = synth.resources("AWS::StepFunctions::StateMachine")[synth.logical_id(synth.stack.state_machine)]
    props = machine["Properties"]
    assert props.get("StateMachineType", "STANDARD") == "STANDARD"
    assert props["TracingConfiguration"] == {"Enabled": True}
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    # Long enough for the longest approval wait plus the longest bakes the spec allows (7 + 7 days).
    assert asl["TimeoutSeconds"] == 15 * 86400
    assert asl["StartAt"] == "Run kind?"
    kind = asl["States"]["Run kind?"]
    assert kind["Choices"] == [
        {"Variable": "$.resume", "IsPresent": True, "Next": "Resume at?"},
        {"Variable": "$.retrain", "IsPresent": True, "Next": "Prepare retrain"},
    ]
    assert kind["Default"] == "Validate"
    assert asl["States"]["Prepare retrain"]["Type"] == "Pass"
    assert asl["States"]["Prepare retrain"]["Next"] == "Claim retrain"  # a retrain request is coalesced too


def test_an_interrupted_execution_resumes_at_any_resumable_state_but_never_validate(asl: dict[str, Any]) -> None:
    from conveyor.workflow import RESUMABLE_STATES

    resume = asl["States"]["Resume at?"]
    targets = {c["StringEquals"]: c["Next"] for c in resume["Choices"] if c["Variable"] == "$.resume.state"}
    assert targets == {name: name for name in RESUMABLE_STATES}
    assert "Validate" not in targets
    assert asl["States"][resume["Default"]]["Type"] == "Fail"


def test_the_states(asl: dict[str, Any]) -> None:
    assert set(asl["States"]) == {
        *LAMBDA_STATES,
        "Run kind?",
        "Resume at?",
        "Cannot resume",
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
        "Alert pipeline failed",
        "Pipeline failed",
        # the deployment
        "Approval needed?",
        "Await approval",
        "Notify rejected by reviewer",
        "Rejected by reviewer",
        "Notify approval expired",
        "Approval expired",
        "Next phase?",
        "Bake",
        "Bake verdict?",
        "Extend bake",
        "Alert rolled back",
        "Rolled back",
        "Alert deployment interrupted",
        "Deployment interrupted",
        # one retrain per burst, and the compare-and-set of the promotion
        "Retrain claimed?",
        "Folded into run",
        "Wait for the burst",
        "Burst settled?",
        "Retrain again?",
        "Prepare follow-up",
        "Run outcome?",
        "Superseded",
        "Champion unchanged?",
        "Promoted?",
        # where the retrain runs (tests/infra/test_compute.py)
        "Training compute?",
        "Train on Fargate",
        "Train on SageMaker",
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
    assert state["Catch"] == [
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": CATCH_TARGET[state_name]}
    ]


def test_happy_path_transitions(asl: dict[str, Any]) -> None:
    states = asl["States"]
    assert states["Validate"]["Next"] == "Data accepted?"
    assert states["Train"]["Next"] == "Evaluate"
    assert states["Evaluate"]["Next"] == "Register"
    assert states["Register"]["Next"] == "Gates passed?"
    assert states["Plan deployment"]["Next"] == "Champion unchanged?"
    assert states["Champion unchanged?"]["Default"] == "Approval needed?"
    assert states["Deploy"]["Next"] == "Promoted?"
    assert states["Promoted?"]["Default"] == "Notify deployed"
    assert states["Notify deployed"]["Next"] == "Finish run"
    assert states["Finish run"]["Next"] == "Retrain again?"
    assert states["Retrain again?"]["Default"] == "Run outcome?"
    assert {"StringEquals": "serving", "Next": "Serving"}.items() <= states["Run outcome?"]["Choices"][0].items()
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
    # One alert per burst: the drift stage sets drift.alert on the first drifted drop of a burst only.
    assert drifted["Choices"] == [
        {
            "And": [
                {"Variable": "$.drift.alert", "IsPresent": True},
                {"Variable": "$.drift.alert", "BooleanEquals": True},
            ],
            "Next": "Alert drift",
        }
    ]
    assert drifted["Default"] == "Retrain?"
    alert = states["Alert drift"]
    assert alert["Resource"] == "arn:aws:states:::sns:publish"
    assert alert["Parameters"]["Message.$"] == "$.drift.summary"
    assert alert["Next"] == "Retrain?"
    retrain = states["Retrain?"]
    assert retrain["Choices"] == [{"Variable": "$.drift.retrain", "BooleanEquals": True, "Next": "Claim retrain"}]
    assert retrain["Default"] == "Recorded"
    assert states["Recorded"]["Type"] == "Succeed"


def test_gates_branch(asl: dict[str, Any]) -> None:
    states = asl["States"]
    gates = states["Gates passed?"]
    # approved (auto approval) and candidate (manual approval) both go on to the deployment.
    assert gates["Choices"] == [
        {
            "Or": [
                {"Variable": "$.registration.status", "StringEquals": "approved"},
                {"Variable": "$.registration.status", "StringEquals": "candidate"},
            ],
            "Next": "Plan deployment",
        }
    ]
    assert gates["Default"] == "Notify candidate rejected"
    assert states["Notify deployed"]["Parameters"]["Message.$"] == "$.registration.summary"
    assert states["Notify deployed"]["ResultPath"] is None
    rejected = states["Notify candidate rejected"]
    assert rejected["Parameters"]["Message.$"] == "$.evaluation.reason"
    assert rejected["ResultPath"] is None
    assert rejected["Next"] == "Finish run"
    assert states["Candidate rejected"]["Type"] == "Succeed"


def test_failure_path(synth: Synth, asl: dict[str, Any]) -> None:
    states = asl["States"]
    alert = states["Alert pipeline failed"]
    topic = synth.logical_id(synth.stack.alerts_topic)
    assert alert["Parameters"]["TopicArn"] == f"ref:{topic}"
    assert alert["Parameters"]["Message.$"] == "States.JsonToString($.error)"
    assert alert["ResultPath"] is None
    assert alert["Next"] == "Finish run"  # releases the retrain lease, then ends in "Pipeline failed"
    assert states["Run outcome?"]["Default"] == "Pipeline failed"
    assert states["Pipeline failed"] == {"Type": "Fail", "Error": "PipelineFailed", "CausePath": "$.error.Cause"}
    for name, state in states.items():
        if state["Type"] == "Task" and name in LAMBDA_STATES:
            assert state["Catch"][-1]["Next"] == CATCH_TARGET[name]


# --- the deployment ---------------------------------------------------------------------------


def test_approval_is_needed_only_when_the_plan_says_manual(asl: dict[str, Any]) -> None:
    choice = asl["States"]["Approval needed?"]
    assert choice["Choices"] == [
        {"Variable": "$.deployment.approval", "StringEquals": "manual", "Next": "Await approval"}
    ]
    assert choice["Default"] == "Next phase?"


def test_manual_approval_waits_for_a_task_token(synth: Synth, asl: dict[str, Any]) -> None:
    state = asl["States"]["Await approval"]
    pipeline = synth.stack.node.find_child("Pipeline")
    function = synth.logical_id(pipeline.node.find_child("ApprovalFunction"))
    assert state["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken"
    assert state["Parameters"] == {
        "FunctionName": f"getatt:{function}.Arn",
        "Payload": {"state.$": "$", "execution_id.$": "$$.Execution.Id", "task_token.$": "$$.Task.Token"},
    }
    assert state["TimeoutSecondsPath"] == "$.deployment.approval_timeout_seconds"
    assert state["ResultPath"] == "$.approval"
    assert state["Next"] == "Next phase?"
    assert state["Catch"] == [
        {"ErrorEquals": ["Rejected"], "ResultPath": "$.error", "Next": "Notify rejected by reviewer"},
        {"ErrorEquals": ["States.Timeout"], "ResultPath": "$.error", "Next": "Notify approval expired"},
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Alert pipeline failed"},
    ]
    states = asl["States"]
    assert states["Notify rejected by reviewer"]["Parameters"]["Message.$"] == "$.error.Cause"
    assert states["Notify rejected by reviewer"]["Next"] == "Finish run"
    assert states["Rejected by reviewer"]["Type"] == "Succeed"
    assert states["Notify approval expired"]["Parameters"]["Message.$"].startswith("States.Format(")
    assert states["Notify approval expired"]["Next"] == "Finish run"
    assert states["Approval expired"]["Type"] == "Succeed"


def test_phases_loop_until_none_is_left_then_deploy(asl: dict[str, Any]) -> None:
    states = asl["States"]
    assert states["Next phase?"]["Choices"] == [
        {"Variable": "$.deployment.has_next_phase", "BooleanEquals": True, "Next": "Start phase"}
    ]
    assert states["Next phase?"]["Default"] == "Deploy"
    assert states["Start phase"]["Next"] == "Bake"
    assert states["Bake"] == {"Type": "Wait", "SecondsPath": "$.deployment.bake_seconds", "Next": "Check bake"}
    assert states["Check bake"]["Next"] == "Bake verdict?"
    verdict = states["Bake verdict?"]
    assert verdict["Choices"] == [
        {
            "Or": [
                {"Variable": "$.bake.verdict", "StringEquals": "breach"},
                {"Variable": "$.bake.verdict", "StringEquals": "insufficient"},
            ],
            "Next": "Roll back",
        },
        {"Variable": "$.bake.verdict", "StringEquals": "extend", "Next": "Extend bake"},
        {"Variable": "$.bake.verdict", "StringEquals": "interrupted", "Next": "Alert deployment interrupted"},
    ]
    assert verdict["Default"] == "Next phase?"
    assert states["Extend bake"] == {"Type": "Wait", "SecondsPath": "$.bake.extend_seconds", "Next": "Check bake"}


def test_a_busy_model_makes_the_first_phase_wait_and_retry(asl: dict[str, Any]) -> None:
    (busy,) = [r for r in asl["States"]["Start phase"]["Retry"] if r["ErrorEquals"] == ["DeploymentInProgress"]]
    assert busy["IntervalSeconds"] == 60 and busy["MaxAttempts"] == 10 and busy["BackoffRate"] == 1.5


def test_a_rollback_alerts_and_ends_the_execution_as_failed(synth: Synth, asl: dict[str, Any]) -> None:
    states = asl["States"]
    assert states["Roll back"]["Next"] == "Alert rolled back"
    alert = states["Alert rolled back"]
    assert alert["Resource"] == "arn:aws:states:::sns:publish"
    assert alert["Parameters"]["TopicArn"] == f"ref:{synth.logical_id(synth.stack.alerts_topic)}"
    assert alert["Parameters"]["Message.$"] == "$.rollback.summary"
    assert alert["Next"] == "Finish run"
    assert states["Rolled back"] == {"Type": "Fail", "Error": "RolledBack", "CausePath": "$.rollback.summary"}
    assert states["Alert deployment interrupted"]["Next"] == "Finish run"
    endings = {c["StringEquals"]: c["Next"] for c in states["Run outcome?"]["Choices"]}
    assert endings["rolled_back"] == "Rolled back" and endings["interrupted"] == "Deployment interrupted"
    assert states["Deployment interrupted"] == {
        "Type": "Fail",
        "Error": "DeploymentInterrupted",
        "CausePath": "$.bake.summary",
    }


# --- one retrain per burst ------------------------------------------------------------------------


def test_a_drop_claims_the_retrain_or_is_folded_into_the_run_that_holds_it(asl: dict[str, Any]) -> None:
    states = asl["States"]
    assert states["Claim retrain"]["Next"] == "Retrain claimed?"
    claimed = states["Retrain claimed?"]
    assert claimed["Choices"] == [{"Variable": "$.claim.outcome", "StringEquals": "folded", "Next": "Folded into run"}]
    assert claimed["Default"] == "Wait for the burst"
    assert states["Folded into run"]["Type"] == "Succeed"
    assert states["Wait for the burst"] == {
        "Type": "Wait",
        "SecondsPath": "$.claim.wait_seconds",
        "Next": "Start retrain",
    }
    assert states["Start retrain"]["Next"] == "Burst settled?"
    settled = states["Burst settled?"]
    assert settled["Choices"] == [{"Variable": "$.claim.ready", "BooleanEquals": True, "Next": "Choose compute"}]
    assert settled["Default"] == "Wait for the burst"


def test_a_run_ends_through_finish_and_trains_once_more_when_drops_joined(asl: dict[str, Any]) -> None:
    states = asl["States"]
    again = states["Retrain again?"]
    assert again["Choices"] == [{"Variable": "$.finish.pending", "BooleanEquals": True, "Next": "Prepare follow-up"}]
    assert states["Prepare follow-up"] == {"Type": "Pass", "InputPath": "$.finish.next", "Next": "Wait for the burst"}
    endings = {c["StringEquals"]: c["Next"] for c in states["Run outcome?"]["Choices"]}
    assert endings == {
        "serving": "Serving",
        "candidate_rejected": "Candidate rejected",
        "superseded": "Superseded",
        "rejected_by_reviewer": "Rejected by reviewer",
        "approval_expired": "Approval expired",
        "rolled_back": "Rolled back",
        "interrupted": "Deployment interrupted",
    }
    assert all(c["Variable"] == "$.finish.ending" for c in states["Run outcome?"]["Choices"])


def test_a_stale_candidate_is_evaluated_again(asl: dict[str, Any]) -> None:
    states = asl["States"]
    assert states["Champion unchanged?"]["Choices"] == [
        {"Variable": "$.deployment.stale", "BooleanEquals": True, "Next": "Evaluate"}
    ]
    assert states["Promoted?"]["Choices"] == [
        {"Variable": "$.promotion.stale", "BooleanEquals": True, "Next": "Evaluate"}
    ]
    (busy,) = [r for r in states["Plan deployment"]["Retry"] if r["ErrorEquals"] == ["DeploymentInProgress"]]
    assert busy["MaxAttempts"] == 10
