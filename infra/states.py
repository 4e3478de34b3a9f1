"""The kinds of state the state machine is made of: a stage's Lambda task, a notice on the alerts
topic. Names and paths come from ``conveyor.workflow`` (the contract the stages read too)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from conveyor.workflow import Error, Key, path

THROTTLED = "Lambda.TooManyRequestsException"
THROTTLE_RETRY_INTERVAL = Duration.seconds(2)
THROTTLE_RETRY_ATTEMPTS = 5
THROTTLE_BACKOFF_RATE = 2.0


def stage_payload(*, task_token: bool = False) -> sfn.TaskInput:
    """What every stage's Lambda receives (conveyor.workflow.StageInput)."""
    payload = {"state": sfn.JsonPath.entire_payload, "execution_id": sfn.JsonPath.string_at("$$.Execution.Id")}
    if task_token:
        payload["task_token"] = sfn.JsonPath.task_token
    return sfn.TaskInput.from_object(payload)


def retry_throttled(task: tasks.LambdaInvoke) -> None:
    """Throttled invocations (the account's or a function's concurrency limit) are retried with backoff
    before the stage counts as failed: after 2, 4, 8, 16 and 32 s."""
    task.add_retry(
        errors=[THROTTLED],
        interval=THROTTLE_RETRY_INTERVAL,
        max_attempts=THROTTLE_RETRY_ATTEMPTS,
        backoff_rate=THROTTLE_BACKOFF_RATE,
    )


@dataclass(frozen=True)
class States:
    """Builds states in ``scope``; ``functions`` maps each stage (infra.constants.Fn) to its function."""

    scope: Construct
    functions: Mapping[str, lambda_.IFunction]
    alerts: sns.ITopic

    def task(
        self, state_name: str, function: str, result_key: str, *, on_error: sfn.IChainable | None = None
    ) -> tasks.LambdaInvoke:
        """A stage: its result goes to ``$.{result_key}``; any error goes to ``on_error`` (with ``$.error``)."""
        task = tasks.LambdaInvoke(
            self.scope,
            state_name,
            lambda_function=self.functions[function],
            payload=stage_payload(),
            payload_response_only=True,
            result_path=path(result_key),
            retry_on_service_exceptions=True,
        )
        retry_throttled(task)
        if on_error is not None:
            self.catch(task, on_error)
        return task

    def catch(self, task: sfn.TaskStateBase, handler: sfn.IChainable, error: str = Error.ALL) -> None:
        task.add_catch(handler, errors=[error], result_path=path(Key.ERROR))

    def notify(self, state_name: str, subject: str, message: sfn.TaskInput) -> tasks.SnsPublish:
        """Publish ``message`` to the alerts topic; the state passes through unchanged."""
        return tasks.SnsPublish(
            self.scope,
            state_name,
            topic=self.alerts,
            subject=subject,
            message=message,
            result_path=sfn.JsonPath.DISCARD,
        )

    def notify_at(self, state_name: str, subject: str, *message_path: str) -> tasks.SnsPublish:
        """Publish the state's value at ``$.{message_path}``."""
        return self.notify(state_name, subject, sfn.TaskInput.from_json_path_at(path(*message_path)))

    def fail(self, state_name: str, error: str, *cause_path: str) -> sfn.Fail:
        return sfn.Fail(self.scope, state_name, error=error, cause_path=path(*cause_path))
