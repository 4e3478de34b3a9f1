"""The state machine "pipeline": one definition for AWS and for the local cloud.

Run kind? -> (a resume: infra/resume_definition.py) (a drop) Validate -> Data accepted? -> Check drift -> [Alert drift] -> Retrain? -> Train -> Evaluate -> Register
-> Gates passed? -> the deployment (infra/deployment_definition.py: plan, approval, canary/linear/shadow bakes,
rollback) -> Deploy -> Notify. A drop that the retrain policy does not act on is recorded and the execution ends
in "Recorded".
Every Lambda task receives {"state": <the whole state>, "execution_id": ...} and writes its
result under its own key ($.validation, $.training, ...), so later stages see earlier results.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from conveyor.workflow import ACCEPTED, DEPLOYABLE_STATUSES, DRIFT, NOT_CHECKED, REJECTED, Error, Key, State, path
from infra.constants import Fn
from infra.deployment_definition import build_deployment
from infra.resume_definition import build_resume
from infra.states import States


def build_definition(
    scope: Construct, functions: Mapping[str, lambda_.IFunction], alerts: sns.ITopic
) -> sfn.IChainable:
    """The chain of states; `functions` maps each stage (infra.constants.Fn) to its function."""
    states = States(scope, functions, alerts)
    failed = states.notify(
        State.ALERT_PIPELINE_FAILED,
        "Conveyor: pipeline failed",
        sfn.TaskInput.from_text(sfn.JsonPath.json_to_string(sfn.JsonPath.object_at(path(Key.ERROR)))),
    ).next(states.fail(State.PIPELINE_FAILED, Error.PIPELINE_FAILED, Key.ERROR, "Cause"))
    validate = states.task(State.VALIDATE, Fn.VALIDATE, Key.VALIDATION, on_error=failed)
    check_drift = states.task(State.CHECK_DRIFT, Fn.DRIFT, Key.DRIFT, on_error=failed)
    train = states.task(State.TRAIN, Fn.TRAIN, Key.TRAINING, on_error=failed)
    training = _training(states, train, failed)
    accepted = _after_validation(states, check_drift, training)
    # A retrain request (`conveyor impact --retrain`: retrain without data under a deletion request)
    # skips validation and the drift policy: its data was all validated when it arrived.
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
    prepare_retrain.next(train)
    # An interrupted execution resumed at the state it reached (infra/resume_definition.py).
    return (
        sfn.Choice(scope, State.RUN_KIND)
        .when(sfn.Condition.is_present(path(Key.RESUME)), build_resume(scope))
        .when(sfn.Condition.is_present(path(Key.RETRAIN)), prepare_retrain)
        .otherwise(validate)
    )


def _training(states: States, train: sfn.TaskStateBase, failed: sfn.IChainable) -> sfn.IChainable:
    """Train -> Evaluate -> Register -> Gates passed? -> the deployment, or the candidate's rejection."""
    scope = states.scope
    evaluate = states.task(State.EVALUATE, Fn.EVALUATE, Key.EVALUATION, on_error=failed)
    register = states.task(State.REGISTER, Fn.REGISTER, Key.REGISTRATION, on_error=failed)
    deployment = build_deployment(scope, states.functions, states.alerts, failed=failed)
    candidate_rejected = states.notify_at(
        State.NOTIFY_CANDIDATE_REJECTED, "Conveyor: candidate rejected", Key.EVALUATION, "reason"
    ).next(sfn.Succeed(scope, State.CANDIDATE_REJECTED))
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
    return train.next(evaluate).next(register).next(gates)


def _after_validation(states: States, check_drift: sfn.TaskStateBase, training: sfn.IChainable) -> sfn.IChainable:
    """Data accepted? -> Check drift -> [Alert drift] -> Retrain? -> the training, or "Recorded"."""
    scope = states.scope
    rejected = states.notify_at(State.ALERT_DATA_REJECTED, "Conveyor: data rejected", Key.VALIDATION, "summary").next(
        states.fail(State.DATA_REJECTED, Error.DATA_REJECTED, Key.VALIDATION, "summary")
    )
    retrain = (
        sfn.Choice(scope, State.RETRAIN)
        .when(sfn.Condition.boolean_equals(path(Key.DRIFT, "retrain"), True), training)
        .otherwise(sfn.Succeed(scope, State.RECORDED, comment="accepted and recorded; the retrain policy did not fire"))
    )
    drifted = (
        sfn.Choice(scope, State.DRIFT_DETECTED)
        .when(
            sfn.Condition.string_equals(path(Key.DRIFT, "verdict"), DRIFT),
            states.notify_at(State.ALERT_DRIFT, "Conveyor: drift detected", Key.DRIFT, "summary").next(retrain),
        )
        .otherwise(retrain)
    )
    return (
        sfn.Choice(scope, State.DATA_ACCEPTED)
        .when(sfn.Condition.string_equals(path(Key.VALIDATION, "verdict"), REJECTED), rejected)
        .otherwise(check_drift.next(drifted))
    )
