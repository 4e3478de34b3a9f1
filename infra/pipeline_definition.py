"""The state machine "pipeline": one definition for AWS and for the local cloud.

Run kind? -> (a resume: infra/resume_definition.py) (a drop) Validate -> Data accepted? -> Check drift ->
[Alert drift] -> Retrain? -> Claim retrain -> (folded into the run that holds the model's retrain: "Folded into
run") Wait for the burst -> Start retrain -> Burst settled? -> Choose compute -> Training compute? -> Train (or
Train on Fargate / Train on SageMaker -> Read training result: infra/compute_definition.py) -> Evaluate -> Register -> Gates passed? ->
the deployment (infra/deployment_definition.py: plan, approval, canary/linear/shadow bakes, rollback, the
promotion's compare-and-set) -> Finish run -> Retrain again? -> (drops joined meanwhile: Prepare follow-up ->
Wait for the burst ...) Run outcome? -> the terminal state. A drop that the retrain policy does not act on is
recorded and the execution ends in "Recorded". Why one retrain per burst, and how: conveyor.bursts.
Every Lambda task receives {"state": <the whole state>, "execution_id": ...} and writes its
result under its own key ($.validation, $.training, ...), so later stages see earlier results.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from conveyor.workflow import ACCEPTED, DEPLOYABLE_STATUSES, FOLDED, NOT_CHECKED, REJECTED, Error, Key, State, path
from infra.compute_definition import build_compute
from infra.constants import Fn
from infra.constructs.training_compute import TrainingCompute
from infra.deployment_definition import build_deployment
from infra.resume_definition import build_resume
from infra.states import States


def build_definition(
    scope: Construct, functions: Mapping[str, lambda_.IFunction], alerts: sns.ITopic, compute: TrainingCompute
) -> sfn.IChainable:
    """The chain of states; `functions` maps each stage (infra.constants.Fn) to its function; `compute`
    is the Fargate task and SageMaker role training may run on beside the Train function."""
    states = States(scope, functions, alerts)
    pipeline_failed = states.fail(State.PIPELINE_FAILED, Error.PIPELINE_FAILED, Key.ERROR, "Cause")
    finish = _finish(states, pipeline_failed)
    failed = states.notify(
        State.ALERT_PIPELINE_FAILED,
        "Conveyor: pipeline failed",
        sfn.TaskInput.from_text(sfn.JsonPath.json_to_string(sfn.JsonPath.object_at(path(Key.ERROR)))),
    ).next(finish)
    validate = states.task(State.VALIDATE, Fn.VALIDATE, Key.VALIDATION, on_error=failed)
    check_drift = states.task(State.CHECK_DRIFT, Fn.DRIFT, Key.DRIFT, on_error=failed)
    train = states.task(State.TRAIN, Fn.TRAIN, Key.TRAINING, on_error=failed)
    read_result = states.task(State.READ_TRAINING_RESULT, Fn.TRAIN_RESULT, Key.TRAINING, on_error=failed)
    choose = build_compute(states, compute, train=train, read_result=read_result, failed=failed)
    claim, wait = _burst(states, choose, failed)
    _training(states, (train, read_result), failed, finish)
    _after_finish(states, finish, wait, pipeline_failed)
    accepted = _after_validation(states, check_drift, claim)
    # A retrain request (`conveyor impact --retrain`: retrain without data under a deletion request)
    # skips validation and the drift policy (its data was all validated when it arrived), not the claim.
    prepare_retrain = sfn.Pass(
        scope,
        State.PREPARE_RETRAIN,
        parameters={
            f"{Key.RETRAIN}.$": path(Key.RETRAIN),
            Key.VALIDATION: {"model.$": path(Key.RETRAIN, "model"), "verdict": ACCEPTED},
            Key.DRIFT: {"verdict": NOT_CHECKED, "retrain": True, "summary.$": path(Key.RETRAIN, "reason")},
        },
    )
    validate.next(accepted)
    prepare_retrain.next(claim)  # a retrain request is coalesced like a drop
    # An interrupted execution resumed at the state it reached (infra/resume_definition.py).
    return (
        sfn.Choice(scope, State.RUN_KIND)
        .when(sfn.Condition.is_present(path(Key.RESUME)), build_resume(scope))
        .when(sfn.Condition.is_present(path(Key.RETRAIN)), prepare_retrain)
        .otherwise(validate)
    )


def _burst(states: States, train: sfn.IChainable, failed: sfn.IChainable) -> tuple[sfn.TaskStateBase, sfn.Wait]:
    """Claim retrain -> Retrain claimed? -> Folded into run, or Wait for the burst -> Start retrain -> Burst settled?"""
    scope = states.scope
    claim = states.task(State.CLAIM_RETRAIN, Fn.CLAIM, Key.CLAIM, on_error=failed)
    wait = sfn.Wait(scope, State.WAIT_FOR_BURST, time=sfn.WaitTime.seconds_path(path(Key.CLAIM, "wait_seconds")))
    start = states.task(State.START_RETRAIN, Fn.SETTLE, Key.CLAIM, on_error=failed)
    settled = (
        sfn.Choice(scope, State.BURST_SETTLED)
        .when(sfn.Condition.boolean_equals(path(Key.CLAIM, "ready"), True), train)
        .otherwise(wait)
    )
    wait.next(start).next(settled)
    folded = sfn.Succeed(scope, State.FOLDED, comment="another run trains on this drop (named at $.claim.owner)")
    claim.next(
        sfn.Choice(scope, State.RETRAIN_CLAIMED)
        .when(sfn.Condition.string_equals(path(Key.CLAIM, "outcome"), FOLDED), folded)
        .otherwise(wait)
    )
    return claim, wait


def _finish(states: States, pipeline_failed: sfn.Fail) -> sfn.TaskStateBase:
    """Finish run: every run that may hold the retrain lease ends here (released, or the follow-up round)."""
    finish = states.task(State.FINISH_RUN, Fn.FINISH, Key.FINISH)
    states.catch(finish, pipeline_failed)
    return finish


def _after_finish(states: States, finish: sfn.TaskStateBase, wait: sfn.Wait, pipeline_failed: sfn.Fail) -> None:
    """Retrain again? -> Prepare follow-up -> Wait for the burst, or Run outcome? -> the run's terminal state."""
    scope = states.scope
    ending = path(Key.FINISH, "ending")
    outcome = sfn.Choice(scope, State.RUN_OUTCOME)
    for value, terminal in (
        ("serving", sfn.Succeed(scope, State.SERVING)),
        ("candidate_rejected", sfn.Succeed(scope, State.CANDIDATE_REJECTED)),
        ("superseded", sfn.Succeed(scope, State.SUPERSEDED, comment="the champion changed before promotion")),
        ("rejected_by_reviewer", sfn.Succeed(scope, State.REJECTED_BY_REVIEWER)),
        ("approval_expired", sfn.Succeed(scope, State.APPROVAL_EXPIRED)),
        ("rolled_back", states.fail(State.ROLLED_BACK, Error.ROLLED_BACK, Key.ROLLBACK, "summary")),
        (
            "interrupted",
            states.fail(State.DEPLOYMENT_INTERRUPTED, Error.DEPLOYMENT_INTERRUPTED, Key.BAKE, "summary"),
        ),
    ):
        outcome.when(sfn.Condition.string_equals(ending, value), terminal)
    outcome.otherwise(pipeline_failed)
    follow_up = sfn.Pass(scope, State.PREPARE_FOLLOW_UP, input_path=path(Key.FINISH, "next"))
    follow_up.next(wait)
    again = (
        sfn.Choice(scope, State.RETRAIN_AGAIN)
        .when(sfn.Condition.boolean_equals(path(Key.FINISH, "pending"), True), follow_up)
        .otherwise(outcome)
    )
    finish.next(again)  # every ending shares the finish task: it is chained once, here


def _training(
    states: States, trained: tuple[sfn.TaskStateBase, ...], failed: sfn.IChainable, finish: sfn.IChainable
) -> None:
    """Train (or Read training result) -> Evaluate -> Register -> Gates passed? -> the deployment, or the
    candidate's rejection."""
    scope = states.scope
    evaluate = states.task(State.EVALUATE, Fn.EVALUATE, Key.EVALUATION, on_error=failed)
    register = states.task(State.REGISTER, Fn.REGISTER, Key.REGISTRATION, on_error=failed)
    deployment = build_deployment(
        scope, states.functions, states.alerts, failed=failed, finish=finish, evaluate_again=evaluate
    )
    candidate_rejected = states.notify_at(
        State.NOTIFY_CANDIDATE_REJECTED, "Conveyor: candidate rejected", Key.EVALUATION, "reason"
    ).next(finish)
    # approved (auto approval) or candidate (manual approval: the deployment waits for a reviewer).
    gates = (
        sfn.Choice(scope, State.GATES_PASSED)
        .when(
            sfn.Condition.or_(
                *(sfn.Condition.string_equals(path(Key.REGISTRATION, "status"), s) for s in DEPLOYABLE_STATUSES)
            ),
            deployment,
        )
        .otherwise(candidate_rejected)
    )
    for state in trained:
        state.next(evaluate)
    evaluate.next(register).next(gates)


def _after_validation(states: States, check_drift: sfn.TaskStateBase, claim: sfn.IChainable) -> sfn.IChainable:
    """Data accepted? -> Check drift -> [Alert drift] -> Retrain? -> Claim retrain, or "Recorded"."""
    scope = states.scope
    rejected = states.notify_at(State.ALERT_DATA_REJECTED, "Conveyor: data rejected", Key.VALIDATION, "summary").next(
        states.fail(State.DATA_REJECTED, Error.DATA_REJECTED, Key.VALIDATION, "summary")
    )
    retrain = (
        sfn.Choice(scope, State.RETRAIN)
        .when(sfn.Condition.boolean_equals(path(Key.DRIFT, "retrain"), True), claim)
        .otherwise(sfn.Succeed(scope, State.RECORDED, comment="accepted and recorded; the retrain policy did not fire"))
    )
    # One alert per burst: only the first drifted drop of a burst has drift.alert set (conveyor.bursts).
    drifted = (
        sfn.Choice(scope, State.DRIFT_DETECTED)
        .when(
            sfn.Condition.and_(
                sfn.Condition.is_present(path(Key.DRIFT, "alert")),
                sfn.Condition.boolean_equals(path(Key.DRIFT, "alert"), True),
            ),
            states.notify_at(State.ALERT_DRIFT, "Conveyor: drift detected", Key.DRIFT, "summary").next(retrain),
        )
        .otherwise(retrain)
    )
    return (
        sfn.Choice(scope, State.DATA_ACCEPTED)
        .when(sfn.Condition.string_equals(path(Key.VALIDATION, "verdict"), REJECTED), rejected)
        .otherwise(check_drift.next(drifted))
    )
