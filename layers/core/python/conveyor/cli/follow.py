"""Follow one pipeline execution through the Step Functions API and show each stage as it runs."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from conveyor.dispatch import Drop
from conveyor.layout import model_of
from conveyor.ports import ObjectRef
from conveyor.workflow import Error, State

# Exit codes of `conveyor drop --wait` (documented in the README and in --help).
EXIT_SERVING = 0
EXIT_FAILED = 1
EXIT_DATA_REJECTED = 2
EXIT_CANDIDATE_REJECTED = 3
EXIT_TIMEOUT = 4
EXIT_RECORDED = 5
EXIT_AWAITING_APPROVAL = 6

# The state where a deployment waits for `conveyor approve` / `reject` (infra/deployment_definition.py).
APPROVAL_STATE = State.AWAIT_APPROVAL
# Failures that leave the champion serving: the candidate was rolled back during its bake.
ROLLED_BACK = Error.ROLLED_BACK


@dataclass
class Outcome:
    status: str  # SUCCEEDED | FAILED | TIMED_OUT | ABORTED | WAITING | AWAITING_APPROVAL
    final_state: str
    output: dict[str, Any]
    error: str | None
    cause: str | None
    seconds: float
    stages: list[tuple[str, float]] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if self.status == "WAITING":
            return EXIT_TIMEOUT
        if self.status == "AWAITING_APPROVAL":
            return EXIT_AWAITING_APPROVAL
        if self.status == "SUCCEEDED":
            return {State.SERVING: EXIT_SERVING, State.RECORDED: EXIT_RECORDED}.get(
                self.final_state, EXIT_CANDIDATE_REJECTED
            )
        if self.error == Error.DATA_REJECTED:
            return EXIT_DATA_REJECTED
        if self.error == ROLLED_BACK:
            return EXIT_CANDIDATE_REJECTED
        return EXIT_FAILED


def execution_arn_for(state_machine_arn: str, bucket: str, key: str, version_id: str | None, etag: str | None) -> str:
    model = model_of(key)
    name = Drop(model, ObjectRef(bucket, key, version_id, etag)).execution_name()
    return state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"


def follow(
    sfn: Any,
    execution_arn: str,
    *,
    timeout: float = 600.0,
    on_stage: Callable[[str, str, float], None] | None = None,
    poll: float = 0.2,
    stop_at_approval: bool = True,
) -> Outcome:
    """Poll the execution's history; call ``on_stage(name, "entered"|"exited", seconds)`` as it moves.

    With ``stop_at_approval``, an execution waiting for a reviewer ends the following (status
    ``AWAITING_APPROVAL``): a person, not time, moves it on.
    """
    started = time.monotonic()
    seen = 0
    entered: dict[str, float] = {}
    stages: list[tuple[str, float]] = []
    final_state = ""
    entered_input = "{}"
    submitted = False
    description: dict[str, Any] = {}
    while time.monotonic() - started < timeout:
        try:
            description = sfn.describe_execution(executionArn=execution_arn)
        except ClientError as error:
            if error.response["Error"]["Code"] == "ExecutionDoesNotExist":
                time.sleep(poll)
                continue
            raise
        events = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000).get("events", [])
        for event in events[seen:]:
            kind = event["type"]
            when = event["timestamp"].timestamp()
            if kind.endswith("StateEntered"):
                name = event["stateEnteredEventDetails"]["name"]
                entered_input = event["stateEnteredEventDetails"].get("input") or "{}"
                submitted = False
                entered[name] = when
                final_state = name
                if on_stage:
                    on_stage(name, "entered", 0.0)
            elif kind == "TaskSubmitted":  # a callback task's Lambda ran: the token is stored
                submitted = True
            elif kind.endswith("StateExited"):
                name = event["stateExitedEventDetails"]["name"]
                seconds = when - entered.get(name, when)
                stages.append((name, seconds))
                if on_stage:
                    on_stage(name, "exited", seconds)
        seen = len(events)
        left = bool(stages) and stages[-1][0] == APPROVAL_STATE
        waiting = final_state == APPROVAL_STATE and submitted and not left
        if description["status"] == "RUNNING" and stop_at_approval and waiting:
            waiting_state = json.loads(entered_input)  # what the execution knows so far (registration, plan)
            return Outcome(
                "AWAITING_APPROVAL",
                final_state,
                waiting_state if isinstance(waiting_state, dict) else {},
                None,
                None,
                time.monotonic() - started,
                stages,
            )
        if description["status"] != "RUNNING":
            output = json.loads(description.get("output") or "{}")
            return Outcome(
                status=description["status"],
                final_state=final_state,
                output=output if isinstance(output, dict) else {},
                error=description.get("error"),
                cause=description.get("cause"),
                seconds=time.monotonic() - started,
                stages=stages,
            )
        time.sleep(poll)
    return Outcome("WAITING", final_state, {}, None, None, time.monotonic() - started, stages)
