"""The deployment: the states after Register that take an approved version to production.

Plan deployment -> Champion unchanged? -> Approval needed? -> [Await approval] -> Next phase? -> (Start
phase -> Bake -> Check bake -> Bake verdict?)* -> Deploy -> Promoted? -> Notify deployed -> Finish run ->
... -> Serving. A bake that breaches its checks (or never gathers enough evidence) goes to Roll back ->
Alert rolled back -> Finish run -> ... -> Rolled back (a Fail state, error ``RolledBack``: a failed canary
is an incident, visible as a failed execution and alarmed on like one; the champion keeps serving).

Promotion is a compare-and-set: the plan and the promotion both check that the champion the candidate
was evaluated against still serves; if not, the candidate goes back to Evaluate (against the new
champion, on the same holdout) and Register records that evaluation on the same version. The plan also
takes the model's deployment lock (``conveyor.deployment.Deployments.acquire``): two deployments of one
model never interleave; "Finish run" releases it.

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

from conveyor.workflow import EXTEND, INTERRUPTED, MANUAL_APPROVAL, ROLL_BACK_VERDICTS, Error, Key, State, path
from infra import constants as c
from infra.constants import Fn
from infra.states import States, retry_throttled, stage_payload


def build_deployment(
    scope: Construct,
    functions: Mapping[str, lambda_.IFunction],
    alerts: sns.ITopic,
    *,
    failed: sfn.IChainable,
    finish: sfn.IChainable,
    evaluate_again: sfn.IChainable,
) -> sfn.IChainable:
    """The chain from "Plan deployment" on; ``failed`` is the pipeline's failure alert, ``finish`` the
    "Finish run" every ending goes to, ``evaluate_again`` where a stale candidate goes (the champion
    changed since its evaluation: the plan and the promotion are compare-and-sets)."""
    states = States(scope, functions, alerts)
    plan = states.task(State.PLAN_DEPLOYMENT, Fn.PLAN, Key.DEPLOYMENT, on_error=failed)
    # Another execution's deployment of the model holds its deployment lock: wait for it to end.
    plan.add_retry(
        errors=[Error.DEPLOYMENT_IN_PROGRESS],
        interval=c.DEPLOYMENT_BUSY_RETRY_INTERVAL,
        max_attempts=c.DEPLOYMENT_BUSY_RETRY_ATTEMPTS,
        backoff_rate=1.5,
    )
    approval = _approval(states, failed, finish)
    roll_back = _roll_back(states, failed, finish)
    deploy = states.task(State.DEPLOY, Fn.DEPLOY, Key.PROMOTION, on_error=roll_back)
    deploy.next(
        sfn.Choice(scope, State.PROMOTED)
        .when(sfn.Condition.boolean_equals(path(Key.PROMOTION, "stale"), True), evaluate_again)
        .otherwise(
            states.notify_at(State.NOTIFY_DEPLOYED, "Conveyor: model deployed", Key.REGISTRATION, "summary").next(
                finish
            )
        )
    )
    next_phase = _phases(states, deploy, roll_back, finish)
    approval.next(next_phase)
    return plan.next(
        sfn.Choice(scope, State.CHAMPION_UNCHANGED)
        .when(sfn.Condition.boolean_equals(path(Key.DEPLOYMENT, "stale"), True), evaluate_again)
        .otherwise(
            sfn.Choice(scope, State.APPROVAL_NEEDED)
            .when(sfn.Condition.string_equals(path(Key.DEPLOYMENT, "approval"), MANUAL_APPROVAL), approval)
            .otherwise(next_phase)
        )
    )


def _approval(states: States, failed: sfn.IChainable, finish: sfn.IChainable) -> tasks.LambdaInvoke:
    """Manual approval: the task waits until `conveyor approve` / `reject` answers its token."""
    scope = states.scope
    approval = tasks.LambdaInvoke(
        scope,
        State.AWAIT_APPROVAL,
        lambda_function=states.functions[Fn.APPROVAL],
        integration_pattern=sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
        payload=stage_payload(task_token=True),
        result_path=path(Key.APPROVAL),
        task_timeout=sfn.Timeout.at(path(Key.DEPLOYMENT, "approval_timeout_seconds")),
        retry_on_service_exceptions=True,
    )
    retry_throttled(approval)
    rejected = states.notify_at(
        State.NOTIFY_REJECTED_BY_REVIEWER, "Conveyor: candidate rejected by a reviewer", Key.ERROR, "Cause"
    ).next(finish)
    expired = states.notify(
        State.NOTIFY_APPROVAL_EXPIRED,
        "Conveyor: approval request expired",
        sfn.TaskInput.from_text(
            sfn.JsonPath.format(
                "{} v{}: nobody approved or rejected it in time; it stays a candidate and nothing was deployed",
                sfn.JsonPath.string_at(path(Key.DEPLOYMENT, "model")),
                sfn.JsonPath.json_to_string(sfn.JsonPath.number_at(path(Key.DEPLOYMENT, "version"))),
            )
        ),
    ).next(finish)
    states.catch(approval, rejected, Error.REJECTED)
    states.catch(approval, expired, Error.TIMEOUT)
    states.catch(approval, failed)
    return approval


def _roll_back(states: States, failed: sfn.IChainable, finish: sfn.IChainable) -> tasks.LambdaInvoke:
    """End the trial (the champion gets all traffic back), say why; "Finish run" ends it as a failure."""
    roll_back = states.task(State.ROLL_BACK, Fn.ROLLBACK, Key.ROLLBACK, on_error=failed)
    roll_back.next(
        states.notify_at(State.ALERT_ROLLED_BACK, "Conveyor: deployment rolled back", Key.ROLLBACK, "summary")
    ).next(finish)
    return roll_back


def _phases(states: States, deploy: sfn.IChainable, roll_back: sfn.IChainable, finish: sfn.IChainable) -> sfn.Choice:
    """Next phase? -> (Start phase -> Bake -> Check bake -> Bake verdict?)* -> Deploy, or Roll back."""
    scope = states.scope
    start_phase = states.task(State.START_PHASE, Fn.TRIAL, Key.DEPLOYMENT)
    # Another version's trial holds the model's traffic split: wait for it to end (about two hours at most).
    start_phase.add_retry(
        errors=[Error.DEPLOYMENT_IN_PROGRESS],
        interval=c.DEPLOYMENT_BUSY_RETRY_INTERVAL,
        max_attempts=c.DEPLOYMENT_BUSY_RETRY_ATTEMPTS,
        backoff_rate=1.5,
    )
    states.catch(start_phase, roll_back)
    check_bake = states.task(State.CHECK_BAKE, Fn.BAKE, Key.BAKE, on_error=roll_back)
    bake = sfn.Wait(scope, State.BAKE, time=sfn.WaitTime.seconds_path(path(Key.DEPLOYMENT, "bake_seconds")))
    extend = sfn.Wait(scope, State.EXTEND_BAKE, time=sfn.WaitTime.seconds_path(path(Key.BAKE, "extend_seconds")))
    interrupted = states.notify_at(
        State.ALERT_DEPLOYMENT_INTERRUPTED, "Conveyor: deployment interrupted", Key.BAKE, "summary"
    ).next(finish)
    next_phase = (
        sfn.Choice(scope, State.NEXT_PHASE)
        .when(sfn.Condition.boolean_equals(path(Key.DEPLOYMENT, "has_next_phase"), True), start_phase)
        .otherwise(deploy)
    )
    verdict_path = path(Key.BAKE, "verdict")
    verdict = (
        sfn.Choice(scope, State.BAKE_VERDICT)
        .when(
            sfn.Condition.or_(*(sfn.Condition.string_equals(verdict_path, v) for v in ROLL_BACK_VERDICTS)),
            roll_back,
        )
        .when(sfn.Condition.string_equals(verdict_path, EXTEND), extend)
        .when(sfn.Condition.string_equals(verdict_path, INTERRUPTED), interrupted)
        .otherwise(next_phase)
    )
    start_phase.next(bake).next(check_bake).next(verdict)
    extend.next(check_bake)
    return next_phase
