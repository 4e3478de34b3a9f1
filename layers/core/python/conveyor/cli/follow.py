"""Follow one pipeline execution through the Step Functions API, show each stage as it runs, and
print how it ended (``drop``, ``impact --retrain`` and ``approve --wait`` end this way)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conveyor.cli.common import ExitCode, console
from conveyor.cli.target import Target
from conveyor.layout import incoming_key, model_of
from conveyor.workflow import Error, State

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
    def exit_code(self) -> ExitCode:
        if self.status == "WAITING":
            return ExitCode.TIMED_OUT
        if self.status == "AWAITING_APPROVAL":
            return ExitCode.AWAITING_APPROVAL
        if self.status == "SUCCEEDED":
            # Folded into run: the drop's retrain is another run's (named at $.claim.owner). The others
            # (candidate rejected, superseded, rejected by a reviewer, expired): the champion keeps serving.
            ended = {State.SERVING: ExitCode.OK, State.RECORDED: ExitCode.RECORDED, State.FOLDED: ExitCode.RECORDED}
            return ended.get(self.final_state, ExitCode.REJECTED)
        if self.error == Error.DATA_REJECTED:
            return ExitCode.DATA_REJECTED
        if self.error == ROLLED_BACK:
            return ExitCode.REJECTED
        return ExitCode.FAILURE


def execution_arn_for(state_machine_arn: str, bucket: str, key: str, version_id: str | None, etag: str | None) -> str:
    """The execution a drop of s3://bucket/key starts (named by the dispatcher, so a drop starts one)."""
    from conveyor.dispatch import Drop
    from conveyor.ports import ObjectRef

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
    from botocore.exceptions import ClientError  # with the first call, not at import (fast start)

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


def stage_printer(quiet: bool, *, durations: bool = True) -> Callable[[str, str, float], None]:
    """An ``on_stage`` for :func:`follow` that prints each stage entered (and, with ``durations``, its time)."""

    def show(name: str, phase: str, seconds: float) -> None:
        if quiet:
            return
        if phase == "entered":
            console.print(f"  → {name}")
        elif durations:
            console.print(f"    [dim]{name} done in {seconds:.2f} s[/]")

    return show


def drop_and_follow(
    target: Target, file: Path, model: str, *, wait: bool, timeout: float, quiet: bool = False
) -> dict[str, Any]:
    """Upload ``file`` under ``{model}/incoming/`` of the data bucket and, with ``wait``, follow its execution.

    Returns what ``conveyor drop --json`` prints: the object, the execution and (with ``wait``) its
    outcome, stages, validation, drift, registration and evaluation, and the ``exit_code``.
    """
    bucket = target.output("DataBucketName")
    key = incoming_key(model, file.name)
    started = time.monotonic()
    put = target.s3.put_object(Bucket=bucket, Key=key, Body=file.read_bytes())
    arn = execution_arn_for(
        target.output("StateMachineArn"), bucket, key, put.get("VersionId"), put.get("ETag", "").strip('"')
    )
    if not quiet:
        console.print(f"dropped [bold]{file.name}[/] → s3://{bucket}/{key}")
    result: dict[str, Any] = {"bucket": bucket, "key": key, "version_id": put.get("VersionId"), "execution_arn": arn}
    if not wait:
        return {**result, "exit_code": int(ExitCode.OK)}
    outcome = follow(target.sfn, arn, timeout=timeout, on_stage=stage_printer(quiet))
    result.update(
        status=outcome.status,
        final_state=outcome.final_state,
        error=outcome.error,
        cause=outcome.cause,
        seconds=round(time.monotonic() - started, 3),
        stages=[{"state": s, "seconds": round(t, 3)} for s, t in outcome.stages],
        validation=outcome.output.get("validation"),
        drift=outcome.output.get("drift"),
        registration=outcome.output.get("registration"),
        claim=outcome.output.get("claim"),
        evaluation={
            k: outcome.output.get("evaluation", {}).get(k) for k in ("passed", "reason", "candidate", "champion")
        },
        exit_code=int(outcome.exit_code),
    )
    if not quiet:
        print_outcome(result)
    return result


def print_execution_outcome(outcome: Outcome, execution: str) -> None:
    """How a followed execution ended, as :func:`print_outcome` tells it."""
    print_outcome(
        {
            "exit_code": outcome.exit_code,
            "registration": outcome.output.get("registration") or {},
            "error": outcome.error,
            "cause": outcome.cause,
            "execution_arn": execution,
        }
    )


def print_outcome(result: dict[str, Any]) -> None:
    """One line on how a pipeline ended (serving, rejected, rolled back, recorded, awaiting approval...)."""
    code = result["exit_code"]
    registration = result.get("registration") or {}
    drift = result.get("drift") or {}
    if drift.get("verdict") == "drift":
        console.print(f"[bold yellow]drift detected[/] {drift.get('summary', '')}")
    if code == ExitCode.OK:
        console.print(f"[bold green]serving[/] {registration.get('summary', '')}")
    elif code == ExitCode.REJECTED and result.get("error") == ROLLED_BACK:
        console.print(f"[bold red]rolled back[/] {result.get('cause')}")
    elif code == ExitCode.REJECTED:
        console.print(
            f"[bold yellow]candidate rejected[/] {registration.get('summary', '')} The champion keeps serving."
        )
    elif code == ExitCode.RECORDED:
        claim = result.get("claim") or {}
        folded = claim.get("outcome") == "folded"
        said = f"into run {claim.get('owner')}: {claim.get('summary', '')}" if folded else drift.get("summary", "")
        console.print(f"[bold]{'folded' if folded else 'recorded'}[/] {said}")
    elif code == ExitCode.AWAITING_APPROVAL:
        console.print(
            f"[bold yellow]awaiting approval[/] {registration.get('summary', '')}\n"
            f"  conveyor approve {registration.get('model')} {registration.get('version')}   "
            f"or   conveyor reject {registration.get('model')} {registration.get('version')} --reason ..."
        )
    elif code == ExitCode.DATA_REJECTED:
        console.print(f"[bold red]data rejected[/] {result.get('cause')}")
    elif code == ExitCode.TIMED_OUT:
        console.print(f"[bold red]timed out[/] waiting for {result['execution_arn']}")
    else:
        console.print(f"[bold red]pipeline failed[/] ({result.get('error')}): {result.get('cause')}")
