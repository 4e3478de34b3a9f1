"""The state machine "pipeline": one definition for AWS and for the local cloud.

Run kind? -> (a drop) Validate -> Data accepted? -> Check drift -> [Alert drift] -> Retrain? -> Train -> Evaluate -> Register
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
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra.constants import Fn
from infra.deployment_definition import build_deployment


def build_definition(
    scope: Construct, functions: Mapping[str, lambda_.IFunction], alerts: sns.ITopic
) -> sfn.IChainable:
    """The chain of states; `functions` maps each stage (infra.constants.Fn) to its function."""
    failed = tasks.SnsPublish(
        scope,
        "Alert pipeline failed",
        topic=alerts,
        subject="Conveyor: pipeline failed",
        message=sfn.TaskInput.from_text(sfn.JsonPath.json_to_string(sfn.JsonPath.object_at("$.error"))),
        result_path=sfn.JsonPath.DISCARD,
    ).next(sfn.Fail(scope, "Pipeline failed", error="PipelineFailed", cause_path="$.error.Cause"))

    def stage(state_name: str, function: str, result_path: str) -> tasks.LambdaInvoke:
        task = tasks.LambdaInvoke(
            scope,
            state_name,
            lambda_function=functions[function],
            payload=sfn.TaskInput.from_object(
                {
                    "state": sfn.JsonPath.entire_payload,
                    "execution_id": sfn.JsonPath.string_at("$$.Execution.Id"),
                }
            ),
            payload_response_only=True,
            result_path=result_path,
            retry_on_service_exceptions=True,
        )
        task.add_catch(failed, errors=["States.ALL"], result_path="$.error")
        return task

    def notify(state_name: str, subject: str, message_path: str) -> tasks.SnsPublish:
        return tasks.SnsPublish(
            scope,
            state_name,
            topic=alerts,
            subject=subject,
            message=sfn.TaskInput.from_json_path_at(message_path),
            result_path=sfn.JsonPath.DISCARD,
        )

    validate = stage("Validate", Fn.VALIDATE, "$.validation")
    check_drift = stage("Check drift", Fn.DRIFT, "$.drift")
    train = stage("Train", Fn.TRAIN, "$.training")
    evaluate = stage("Evaluate", Fn.EVALUATE, "$.evaluation")
    register = stage("Register", Fn.REGISTER, "$.registration")
    deployment = build_deployment(scope, functions, alerts, failed=failed)

    rejected = notify("Alert data rejected", "Conveyor: data rejected", "$.validation.summary").next(
        sfn.Fail(scope, "Data rejected", error="DataRejected", cause_path="$.validation.summary")
    )
    candidate_rejected = notify(
        "Notify candidate rejected", "Conveyor: candidate rejected", "$.evaluation.reason"
    ).next(sfn.Succeed(scope, "Candidate rejected"))

    # approved (auto approval) or candidate (manual approval: the deployment waits for a reviewer).
    gates = (
        sfn.Choice(scope, "Gates passed?")
        .when(
            sfn.Condition.or_(
                sfn.Condition.string_equals("$.registration.status", "approved"),
                sfn.Condition.string_equals("$.registration.status", "candidate"),
            ),
            deployment,
        )
        .otherwise(candidate_rejected)
    )
    retrain = (
        sfn.Choice(scope, "Retrain?")
        .when(sfn.Condition.boolean_equals("$.drift.retrain", True), train.next(evaluate).next(register).next(gates))
        .otherwise(sfn.Succeed(scope, "Recorded", comment="accepted and recorded; the retrain policy did not fire"))
    )
    drifted = (
        sfn.Choice(scope, "Drift detected?")
        .when(
            sfn.Condition.string_equals("$.drift.verdict", "drift"),
            notify("Alert drift", "Conveyor: drift detected", "$.drift.summary").next(retrain),
        )
        .otherwise(retrain)
    )
    accepted = (
        sfn.Choice(scope, "Data accepted?")
        .when(sfn.Condition.string_equals("$.validation.verdict", "rejected"), rejected)
        .otherwise(check_drift.next(drifted))
    )
    # A retrain request (`conveyor impact --retrain`: retrain without data under a deletion request)
    # skips validation and the drift policy: its data was all validated when it arrived.
    prepare_retrain = sfn.Pass(
        scope,
        "Prepare retrain",
        parameters={
            "retrain.$": "$.retrain",
            "validation": {"model.$": "$.retrain.model", "verdict": "accepted"},
            "drift": {"verdict": "not_checked", "retrain": True, "summary.$": "$.retrain.reason"},
        },
    )
    return (
        sfn.Choice(scope, "Run kind?")
        .when(sfn.Condition.is_present("$.retrain"), prepare_retrain.next(train))
        .otherwise(validate.next(accepted))
    )
