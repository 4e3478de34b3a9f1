"""The deployment: the states after Register that take an approved version to production.

Plan deployment -> Approval needed? -> [Await approval] -> Next phase? -> (Start phase -> Bake ->
Check bake -> Bake verdict?)* -> Deploy -> Notify deployed -> Serving. A bake that breaches its
checks (or never gathers enough evidence) goes to Roll back -> Alert rolled back -> Rolled back
(a Fail state, error ``RolledBack``: a failed canary is an incident, visible as a failed
execution and alarmed on like one; the champion keeps serving).

Why inside the pipeline's state machine rather than a second one: one execution tells the whole
story of a drop, from the S3 object to the version serving (``conveyor drop`` follows it, the
demo prints it, the e2e test compares the one definition the local cloud runs with the CDK app's),
and moto 5.2.5 runs the callback (``.waitForTaskToken``), ``TimeoutSecondsPath`` and ``Wait``
``SecondsPath`` states that this needs (probed before building on them). Waiting costs nothing in
a Standard workflow (billed per transition), so the state machine's timeout covers the longest
approval and bakes the spec allows (``conveyor.spec.MAX_*``, ``infra.constants.PIPELINE_TIMEOUT``).

Every phase is the same loop: the plan (``conveyor.deployment.plan_deployment``) turns canary,
linear and shadow-then-canary into a list of phases, and all-at-once into none.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra import constants as c
from infra.constants import Fn

ROLLED_BACK_ERROR = "RolledBack"
INTERRUPTED_ERROR = "DeploymentInterrupted"


def build_deployment(
    scope: Construct,
    functions: Mapping[str, lambda_.IFunction],
    alerts: sns.ITopic,
    *,
    failed: sfn.IChainable,
) -> sfn.IChainable:
    """The chain from "Plan deployment" on; ``failed`` is the pipeline's failure alert."""

    def task(state_name: str, function: str, result_path: str) -> tasks.LambdaInvoke:
        return tasks.LambdaInvoke(
            scope,
            state_name,
            lambda_function=functions[function],
            payload=sfn.TaskInput.from_object(
                {"state": sfn.JsonPath.entire_payload, "execution_id": sfn.JsonPath.string_at("$$.Execution.Id")}
            ),
            payload_response_only=True,
            result_path=result_path,
            retry_on_service_exceptions=True,
        )

    def notify(state_name: str, subject: str, message: sfn.TaskInput) -> tasks.SnsPublish:
        return tasks.SnsPublish(
            scope, state_name, topic=alerts, subject=subject, message=message, result_path=sfn.JsonPath.DISCARD
        )

    plan = task("Plan deployment", Fn.PLAN, "$.deployment")
    plan.add_catch(failed, errors=["States.ALL"], result_path="$.error")

    # Manual approval: the task waits until `conveyor approve` / `reject` answers its token.
    approval = tasks.LambdaInvoke(
        scope,
        "Await approval",
        lambda_function=functions[Fn.APPROVAL],
        integration_pattern=sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
        payload=sfn.TaskInput.from_object(
            {
                "state": sfn.JsonPath.entire_payload,
                "execution_id": sfn.JsonPath.string_at("$$.Execution.Id"),
                "task_token": sfn.JsonPath.task_token,
            }
        ),
        result_path="$.approval",
        task_timeout=sfn.Timeout.at("$.deployment.approval_timeout_seconds"),
        retry_on_service_exceptions=True,
    )
    rejected = notify(
        "Notify rejected by reviewer",
        "Conveyor: candidate rejected by a reviewer",
        sfn.TaskInput.from_json_path_at("$.error.Cause"),
    ).next(sfn.Succeed(scope, "Rejected by reviewer"))
    expired = notify(
        "Notify approval expired",
        "Conveyor: approval request expired",
        sfn.TaskInput.from_text(
            sfn.JsonPath.format(
                "{} v{}: nobody approved or rejected it in time; it stays a candidate and nothing was deployed",
                sfn.JsonPath.string_at("$.deployment.model"),
                sfn.JsonPath.json_to_string(sfn.JsonPath.number_at("$.deployment.version")),
            )
        ),
    ).next(sfn.Succeed(scope, "Approval expired"))
    approval.add_catch(rejected, errors=["Rejected"], result_path="$.error")
    approval.add_catch(expired, errors=["States.Timeout"], result_path="$.error")
    approval.add_catch(failed, errors=["States.ALL"], result_path="$.error")

    # Rollback: end the trial (the champion gets all traffic back), say why, end as a failure.
    roll_back = task("Roll back", Fn.ROLLBACK, "$.rollback")
    roll_back.add_catch(failed, errors=["States.ALL"], result_path="$.error")
    roll_back.next(
        notify(
            "Alert rolled back",
            "Conveyor: deployment rolled back",
            sfn.TaskInput.from_json_path_at("$.rollback.summary"),
        )
    ).next(sfn.Fail(scope, "Rolled back", error=ROLLED_BACK_ERROR, cause_path="$.rollback.summary"))

    deploy = task("Deploy", Fn.DEPLOY, "$.promotion")
    deploy.add_catch(roll_back, errors=["States.ALL"], result_path="$.error")
    deploy.next(
        notify("Notify deployed", "Conveyor: model deployed", sfn.TaskInput.from_json_path_at("$.registration.summary"))
    ).next(sfn.Succeed(scope, "Serving"))

    start_phase = task("Start phase", Fn.TRIAL, "$.deployment")
    # Another version's trial holds the model's traffic split: wait for it to end (about two hours at most).
    start_phase.add_retry(
        errors=["DeploymentInProgress"],
        interval=c.DEPLOYMENT_BUSY_RETRY_INTERVAL,
        max_attempts=c.DEPLOYMENT_BUSY_RETRY_ATTEMPTS,
        backoff_rate=1.5,
    )
    start_phase.add_catch(roll_back, errors=["States.ALL"], result_path="$.error")
    check_bake = task("Check bake", Fn.BAKE, "$.bake")
    check_bake.add_catch(roll_back, errors=["States.ALL"], result_path="$.error")
    bake = sfn.Wait(scope, "Bake", time=sfn.WaitTime.seconds_path("$.deployment.bake_seconds"))
    extend = sfn.Wait(scope, "Extend bake", time=sfn.WaitTime.seconds_path("$.bake.extend_seconds"))
    interrupted = notify(
        "Alert deployment interrupted",
        "Conveyor: deployment interrupted",
        sfn.TaskInput.from_json_path_at("$.bake.summary"),
    ).next(sfn.Fail(scope, "Deployment interrupted", error=INTERRUPTED_ERROR, cause_path="$.bake.summary"))

    next_phase = (
        sfn.Choice(scope, "Next phase?")
        .when(sfn.Condition.boolean_equals("$.deployment.has_next_phase", True), start_phase)
        .otherwise(deploy)
    )
    verdict = (
        sfn.Choice(scope, "Bake verdict?")
        .when(
            sfn.Condition.or_(
                sfn.Condition.string_equals("$.bake.verdict", "breach"),
                sfn.Condition.string_equals("$.bake.verdict", "insufficient"),
            ),
            roll_back,
        )
        .when(sfn.Condition.string_equals("$.bake.verdict", "extend"), extend)
        .when(sfn.Condition.string_equals("$.bake.verdict", "interrupted"), interrupted)
        .otherwise(next_phase)
    )
    start_phase.next(bake).next(check_bake).next(verdict)
    extend.next(check_bake)
    approval.next(next_phase)

    return plan.next(
        sfn.Choice(scope, "Approval needed?")
        .when(sfn.Condition.string_equals("$.deployment.approval", "manual"), approval)
        .otherwise(next_phase)
    )
