"""``conveyor retry``: resume an execution the local cloud's stop interrupted, at the state it had reached."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

import typer

from conveyor.cli.common import ExitCode, JsonFlag, StackOption, StateOption, console, fail, load_target, print_json
from conveyor.cli.follow import follow, print_execution_outcome, stage_printer
from conveyor.cli.target import Target


def retry(
    execution: Annotated[str, typer.Argument(help="Name (or ARN) of the interrupted execution.")],
    wait: Annotated[bool, typer.Option(help="Follow the new execution until it ends.")] = True,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for it.")] = 900.0,
    state: StateOption = None,
    stack: StackOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Resume an interrupted execution (`conveyor status` lists them) from the stage it reached.

    A new execution, named EXECUTION-rN, starts at the state the interrupted one had entered, with the
    state's input as it was then: Validate never runs again for the same drop. Exit codes as `conveyor drop`;
    2 when EXECUTION is not an interrupted execution, or was resumed already.
    """
    from conveyor.resume import CannotResume, is_interrupted, plan_resumption, resumed_from

    target = load_target(state, stack)
    machine = target.output("StateMachineArn")
    name = execution.rsplit(":", 1)[-1]
    arn = machine.replace(":stateMachine:", ":execution:") + f":{name}"
    description = _describe(target, arn)
    if description is None:
        raise fail(f"no execution {name!r}", ExitCode.BAD_INPUT, as_json=as_json)
    if not is_interrupted(description):
        raise fail(
            f"{name} was not interrupted (status {description['status']}): only an execution the local cloud's "
            "stop interrupted can be retried",
            ExitCode.BAD_INPUT,
            as_json=as_json,
        )
    executions = _executions(target, machine)
    base = re.sub(r"-r\d+$", "", name)
    resumptions = [e for e in executions if e["name"] != name and re.fullmatch(rf"{re.escape(base)}-r\d+", e["name"])]
    already = [e["name"] for e in resumptions if resumed_from(_input(target, e)) == name]
    if already:
        raise fail(f"{name} was resumed already, as {already[0]}", ExitCode.BAD_INPUT, as_json=as_json)
    try:
        plan = plan_resumption(
            name, description.get("input") or "{}", _history(target, arn), {e["name"] for e in executions}
        )
    except CannotResume as error:
        raise fail(str(error), ExitCode.BAD_INPUT, as_json=as_json) from None
    started = target.sfn.start_execution(stateMachineArn=machine, name=plan.name, input=json.dumps(plan.input))
    where = f"at {plan.state!r}" if plan.state else "from the start (it stopped before validation finished)"
    if not as_json:
        console.print(f"{name} resumes {where} as {plan.name}")
    document: dict[str, Any] = {"interrupted": name, "execution": plan.name, "resumed_at": plan.state}
    code = ExitCode.OK
    if wait:
        outcome = follow(target.sfn, started["executionArn"], timeout=timeout, on_stage=stage_printer(as_json))
        if not as_json:
            print_execution_outcome(outcome, plan.name)
        code = outcome.exit_code
        document.update(status=outcome.status, final_state=outcome.final_state, exit_code=int(code))
        document["registration"] = outcome.output.get("registration")
    if as_json:
        print_json(document)
    raise typer.Exit(code)


def _describe(target: Target, arn: str) -> dict[str, Any] | None:
    from botocore.exceptions import ClientError

    try:
        return dict(target.sfn.describe_execution(executionArn=arn))
    except ClientError as error:
        if error.response["Error"]["Code"] in ("ExecutionDoesNotExist", "InvalidArn"):
            return None
        raise


def _executions(target: Target, machine: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    arguments: dict[str, Any] = {"stateMachineArn": machine}
    while True:
        page = target.sfn.list_executions(**arguments)
        found.extend(page["executions"])
        if not page.get("nextToken"):
            return found
        arguments["nextToken"] = page["nextToken"]


def _input(target: Target, execution: dict[str, Any]) -> str:
    return str(target.sfn.describe_execution(executionArn=execution["executionArn"]).get("input") or "")


def _history(target: Target, arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    arguments: dict[str, Any] = {"executionArn": arn, "maxResults": 1000}
    while True:
        page = target.sfn.get_execution_history(**arguments)
        events.extend(page["events"])
        if not page.get("nextToken"):
            return events
        arguments["nextToken"] = page["nextToken"]
