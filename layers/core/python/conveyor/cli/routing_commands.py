"""Routing commands against the running local cloud: ``kill`` / ``revive`` a model, ``rollback`` to an
earlier version, ``approve`` / ``reject`` a candidate that waits for a reviewer."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from conveyor.cli.common import ExitCode, JsonFlag, StackOption, StateOption, console, fail, load_target, print_json
from conveyor.cli.follow import follow, print_execution_outcome, stage_printer
from conveyor.cli.target import Target

if TYPE_CHECKING:
    from conveyor.registry import Registry, Routing

ModelArgument = Annotated[str, typer.Argument(help="Model whose candidate awaits approval.")]
VersionArgument = Annotated[int, typer.Argument(help="Version number (see `conveyor status MODEL`).")]


def _registry(state: Path | None, stack: str | None) -> Registry:
    from conveyor.registry import Registry

    return Registry(load_target(state, stack).registry_table())


def _routing_change(action: str, run: Callable[[], Routing], as_json: bool) -> None:
    from conveyor.registry import RegistryError

    try:
        routing = run()
    except RegistryError as error:
        raise fail(str(error), ExitCode.BAD_INPUT) from None
    if as_json:
        print_json(
            {
                "model": routing.model,
                "action": action,
                "champion": routing.champion,
                "killed": routing.killed,
                "fallback": routing.fallback,
                "revision": routing.revision,
            }
        )
        return
    champion = routing.champion["version"] if routing.champion else None
    serving = f"KILLED, fallback {json.dumps(routing.fallback)}" if routing.killed else "serving"
    console.print(
        f"{action}: {routing.model} champion v{champion}, {serving} "
        f"(routing revision {routing.revision}; endpoints see it within the routing cache time)"
    )


def kill(
    model: Annotated[str, typer.Argument(help="Model to switch off.")],
    fallback: Annotated[
        str, typer.Option(help="What requests get meanwhile: previous (the version before), static, or none (503).")
    ] = "previous",
    static_prediction: Annotated[
        str | None, typer.Option(help="With --fallback static: the prediction to answer with (JSON value).")
    ] = None,
    state: StateOption = None,
    stack: StackOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Kill switch: stop serving MODEL's champion now. Undo with `conveyor revive MODEL`."""
    value = None
    if static_prediction is not None:
        try:
            value = json.loads(static_prediction)
        except json.JSONDecodeError as error:
            raise fail(f"--static-prediction is not a JSON value: {error}", ExitCode.BAD_INPUT) from None
    registry = _registry(state, stack)
    _routing_change("kill", lambda: registry.kill(model, fallback, value), as_json)


def revive(
    model: Annotated[str, typer.Argument(help="Model to switch back on.")],
    state: StateOption = None,
    stack: StackOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Undo a kill: the champion serves again."""
    registry = _registry(state, stack)
    _routing_change("revive", lambda: registry.revive(model), as_json)


def rollback(
    model: Annotated[str, typer.Argument(help="Model to roll back.")],
    to: Annotated[int | None, typer.Option(help="Version to serve [default: the one that served before].")] = None,
    state: StateOption = None,
    stack: StackOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Send all traffic back to an earlier version (by a conditional write of the routing record)."""
    registry = _registry(state, stack)
    _routing_change("rollback", lambda: registry.rollback(model, to), as_json)


# --- conveyor approve / reject ---------------------------------------------------------------


def _answer(
    action: str, where: tuple[Path | None, str | None], by: str | None, as_json: bool, **arguments: Any
) -> tuple[Target, dict[str, Any]]:
    """Approve or reject through the domain (registry, deployments, task callbacks, events)."""
    from conveyor.deployment import DeploymentError, Deployments, approve, reject
    from conveyor.registry import Registry, RegistryError

    target = load_target(*where)
    table = target.registry_table()
    answer = approve if action == "approve" else reject
    try:
        result = answer(
            Registry(table),
            Deployments(table),
            target.task_callbacks(),
            target.event_publisher(),
            by=by or _reviewer(),
            **arguments,
        )
    except (DeploymentError, RegistryError) as error:
        raise fail(str(error), ExitCode.BAD_INPUT, as_json=as_json, action=action) from None
    return target, result


def _reviewer() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _follow_deployment(target: Target, result: dict[str, Any], timeout: float, as_json: bool) -> ExitCode:
    """Follow an approved version's deployment to its end (promotion or rollback) and say how it ended."""
    if not as_json:
        console.print(f"approved {result['model']} v{result['version']}; following its deployment")
    outcome = follow(
        target.sfn,
        result["execution"],
        timeout=timeout,
        on_stage=stage_printer(as_json, durations=False),
        stop_at_approval=False,
    )
    result["deployment"] = {
        "status": outcome.status,
        "final_state": outcome.final_state,
        "error": outcome.error,
        "cause": outcome.cause,
        "stages": [s for s, _ in outcome.stages],
    }
    if not as_json:
        print_execution_outcome(outcome, result["execution"])
    return outcome.exit_code


def _finish(result: dict[str, Any], code: ExitCode, as_json: bool) -> None:
    result["exit_code"] = int(code)
    if as_json:
        print_json(result)
    raise typer.Exit(code)


def approve(
    model: ModelArgument,
    version: VersionArgument,
    by: Annotated[str | None, typer.Option(help="Who approves (recorded) [default: the current user].")] = None,
    wait: Annotated[
        bool, typer.Option(help="Follow the deployment (bakes, promotion or rollback) to its end.")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to follow the deployment with --wait.")] = 3600.0,
    state: StateOption = None,
    stack: StackOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Approve a candidate that waits for a reviewer (`deployment.approval: manual`).

    It becomes approved, ModelApproved is emitted, and its deployment resumes (canary, linear, shadow or at once).

    Exit codes: 0 approved (with --wait: and serving); 2 unknown version, or nothing of it waits for approval.

    With --wait: 3 rolled back during its bake, 4 timed out following. 1 any other failure.
    """
    target, result = _answer("approve", (state, stack), by, as_json, model=model, version=version)
    code = ExitCode.OK
    if wait and result.get("execution"):
        code = _follow_deployment(target, result, timeout, as_json)
    elif not as_json:
        console.print(f"approved {result['model']} v{result['version']}; its deployment resumes")
    _finish(result, code, as_json)


def reject(
    model: ModelArgument,
    version: VersionArgument,
    reason: Annotated[str, typer.Option(help="Why (recorded with the version and sent with the alert).")] = (
        "rejected by a reviewer"
    ),
    by: Annotated[str | None, typer.Option(help="Who rejects (recorded) [default: the current user].")] = None,
    state: StateOption = None,
    stack: StackOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Reject a candidate that waits for a reviewer: the champion keeps serving.

    It becomes rejected, ModelRejected is emitted, and its waiting deployment ends ("Rejected by reviewer").

    Exit codes: 0 rejected; 2 unknown version, or nothing of it waits for approval; 1 any other failure.
    """
    _, result = _answer("reject", (state, stack), by, as_json, model=model, version=version, reason=reason)
    if not as_json:
        console.print(f"rejected {result['model']} v{result['version']}; nothing will be deployed")
    _finish(result, ExitCode.OK, as_json)


def migrate_routing(state: StateOption = None, stack: StackOption = None, as_json: JsonFlag = False) -> None:
    """Move each model's routing record to its own partition (ROUTING#{model}), once after upgrading.

    Stacks deployed before the routing record had its own partition keep serving without it (the old
    record is read until the next change writes the new one); this moves them all now, so the IAM
    rule that only promotion, trial, rollback and the operator may change what serves holds for every
    model. Run it with the operator role. Exit codes: 0 done (also when nothing was left to move).
    """
    from conveyor.registry import Registry

    target = load_target(state, stack)
    registry = Registry(target.registry_table())
    moved = [model for model in target.model_names() if registry.migrate_routing(model)]
    if as_json:
        print_json({"moved": moved})
        return
    console.print(f"moved {len(moved)} routing record(s){': ' + ', '.join(moved) if moved else ''}")
