"""Pipeline commands against the running local cloud: ``drop`` data, see its ``status``, find the
``impact`` of a data object (and retrain without it), and ``predict`` over HTTP."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from conveyor import layout
from conveyor.cli.common import (
    ExitCode,
    JsonFlag,
    StackOption,
    StateOption,
    console,
    fail,
    load_target,
    out,
    print_json,
)
from conveyor.cli.follow import drop_and_follow, follow, print_execution_outcome
from conveyor.cli.target import Target, TargetError
from conveyor.errors import ConveyorError

if TYPE_CHECKING:
    from conveyor.registry import Registry

NO_MODELS_YET = "no models yet: drop data with `conveyor drop FILE --model NAME --spec model.yaml`"


def drop(
    file: Annotated[
        Path, typer.Argument(help="CSV or Parquet file to drop.", exists=True, dir_okay=False, readable=True)
    ],
    model: Annotated[str, typer.Option("--model", "-m", help="Model the data is for (the S3 prefix).")],
    spec: Annotated[
        Path | None,
        typer.Option(help="Model spec (YAML) to upload first; needed once per model.", exists=True, dir_okay=False),
    ] = None,
    wait: Annotated[bool, typer.Option(help="Follow the pipeline until it ends.")] = True,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the pipeline.")] = 900.0,
    state: StateOption = None,
    stack: StackOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Upload FILE to s3://DATA_BUCKET/MODEL/incoming/ (a drop starts the pipeline) and follow it.

    Exit codes with --wait: 0 new version serving; 2 data rejected (quarantined, report beside it);
    3 candidate rejected by its gates, or rolled back during its canary (the champion keeps serving);
    5 accepted and recorded: the retrain policy did not fire, or the retrain was folded into another run
    (one retrain per burst; the run is named); 6 the candidate awaits approval
    (`conveyor approve MODEL VERSION`); 1 pipeline failed; 4 timed out.
    """
    from conveyor.spec import load_spec

    target = load_target(state, stack)
    if spec is not None:
        try:
            parsed = load_spec(spec.read_bytes())
        except ConveyorError as error:
            raise fail(f"{spec}: {error}", ExitCode.BAD_INPUT) from None
        if parsed.name != model:
            raise fail(f"{spec} is the spec of model {parsed.name!r}, not {model!r}", ExitCode.BAD_INPUT)
        target.s3.put_object(
            Bucket=target.output("ArtifactBucketName"), Key=layout.spec_key(model), Body=spec.read_bytes()
        )
    outcome = drop_and_follow(target, file, model, wait=wait, timeout=timeout, quiet=as_json)
    if as_json:
        print_json(outcome)
    raise typer.Exit(outcome.get("exit_code", ExitCode.OK))


# --- conveyor status -------------------------------------------------------------------------


def status(
    model: Annotated[str | None, typer.Argument(help="Only this model.")] = None,
    state: StateOption = None,
    stack: StackOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Show each model's versions, what is serving, and the latest pipeline executions."""
    document = status_document(load_target(state, stack), model)
    if as_json:
        print_json(document)
        return
    _print_status(document)


def status_document(target: Target, model: str | None) -> dict[str, Any]:
    """What `conveyor status --json` prints: each model's routing, deployments and versions; the latest executions."""
    from conveyor.deployment import Deployments
    from conveyor.registry import Registry

    table = target.registry_table()
    registry = Registry(table)
    deployments = Deployments(table)
    models = [name for name in target.model_names() if not model or name == model]
    executions = target.sfn.list_executions(stateMachineArn=target.output("StateMachineArn"), maxResults=20)
    return {
        "models": [
            _model_status(
                registry,
                name,
                deployments=[_deployment_view(d) for d in deployments.in_progress(name)],
                breakers=_breakers(target, name),
            )
            for name in models
        ],
        "executions": [
            _execution_view(target, e) for e in executions["executions"] if not model or e["name"].startswith(model)
        ],
    }


def _execution_view(target: Target, execution: dict[str, Any]) -> dict[str, Any]:
    """An execution as `conveyor status` lists it; one the local cloud's stop interrupted says where it stopped."""
    view = {"name": execution["name"], "status": execution["status"], "started": str(execution["startDate"])}
    if execution["status"] == "ABORTED":
        from conveyor.resume import is_interrupted

        description = target.sfn.describe_execution(executionArn=execution["executionArn"])
        if is_interrupted(description):
            view.update(interrupted=True, cause=description.get("cause"))
    return view


def _model_status(
    registry: Registry, name: str, *, deployments: list[dict[str, Any]], breakers: dict[str, Any]
) -> dict[str, Any]:
    routing = registry.routing(name)
    entry: dict[str, Any] = {"model": name, "serving": None, "revision": 0, "killed": False, "challenger": None}
    entry.update(shadow=None, traffic={}, deployments=deployments, breakers=breakers)
    if routing is not None:
        entry.update(
            serving=routing.champion["version"] if routing.champion else None,
            revision=routing.revision,
            killed=bool(routing.killed),
            challenger=(
                {"version": routing.challenger["version"], "weight": routing.challenger_weight}
                if routing.challenger
                else None
            ),
            shadow=routing.shadow["version"] if routing.shadow else None,
            traffic=routing.traffic(),
        )
    entry["versions"] = [
        {"version": v.version, "status": v.status, "metrics": v.metrics.get("candidate", {}), "decision": v.decision}
        for v in registry.versions(name)
    ]
    return entry


def _print_status(document: dict[str, Any]) -> None:
    if not document["models"]:
        out.print(NO_MODELS_YET)
    for entry in document["models"]:
        _print_model_status(entry)
    if document["executions"]:
        _print_executions(document["executions"])


def _print_model_status(entry: dict[str, Any]) -> None:
    trial = ""
    if entry["challenger"]:
        trial += f", challenger v{entry['challenger']['version']} at {entry['challenger']['weight']:.0%}"
    if entry["shadow"]:
        trial += f", shadow v{entry['shadow']}"
    if entry["killed"]:
        trial += ", KILLED"
    grid = Table(title=f"{entry['model']} (serving v{entry['serving']}{trial}, routing revision {entry['revision']})")
    for column in ("version", "status", "metrics", "decision"):
        grid.add_column(column)
    for v in entry["versions"]:
        metrics = ", ".join(f"{k} {val:.4f}" for k, val in v["metrics"].items() if isinstance(val, int | float))
        grid.add_row(str(v["version"]), v["status"], metrics, v["decision"])
    out.print(grid)
    for d in entry["deployments"]:
        out.print(f"  deployment in progress: {d['text']}")
    opened = [f"v{v} {b['state']}" for v, b in entry["breakers"].items() if b["state"] != "closed"]
    if opened:
        out.print(f"  breakers (the champion answers for): {', '.join(opened)}")


def _print_executions(executions: list[dict[str, Any]]) -> None:
    grid = Table(title="latest executions")
    for column in ("name", "status", "started"):
        grid.add_column(column)
    for e in executions:
        grid.add_row(e["name"], "INTERRUPTED" if e.get("interrupted") else e["status"], e["started"])
    out.print(grid)
    for e in executions:
        if e.get("interrupted"):
            out.print(f"  {e['name']}: {e['cause']}")


def _breakers(target: Target, model: str) -> dict[str, Any]:
    """The breakers ``GET /models/{model}`` shows (the answering container's); {} when the API does not answer."""
    import requests

    try:
        response = target.request("GET", f"/models/{model}", timeout=3)
        return dict(response.json().get("breakers") or {}) if response.ok else {}
    except (requests.RequestException, ValueError, TargetError):
        return {}


def _deployment_view(record: dict[str, Any]) -> dict[str, Any]:
    """A deployment record as `conveyor status` shows it."""
    now = time.time()
    state = str(record.get("state"))
    view: dict[str, Any] = {
        "version": int(record["version"]),
        "state": state,
        "strategy": record.get("strategy"),
        "phase": record.get("phase"),
        "phases": len(record.get("phases") or []),
        "execution": record.get("execution"),
    }
    if state == "awaiting_approval":
        view["text"] = _approval_text(record, view, now)
    elif state == "trial":
        view["text"] = _trial_text(record, view, now)
    else:
        view["text"] = f"v{view['version']} {record.get('strategy')}: {state}"
    return view


def _approval_text(record: dict[str, Any], view: dict[str, Any], now: float) -> str:
    model, version = record["model"], view["version"]
    expires_at = float(record.get("expires_at") or 0.0)
    view["expires_at"] = expires_at
    if expires_at and expires_at < now:
        view["state"] = "approval_expired"
        return f"v{version} waited for approval; the request expired"
    return (
        f"v{version} awaits approval ({record.get('strategy')}): conveyor approve {model} {version}"
        f"  |  conveyor reject {model} {version} --reason ..."
    )


def _trial_text(record: dict[str, Any], view: dict[str, Any], now: float) -> str:
    phase = int(record.get("phase", 0))
    kind = (record.get("phases") or [{}])[phase].get("kind", "challenger")
    started = float(record.get("phase_started_at") or now)
    what = "shadow" if kind == "shadow" else f"canary at {float(record.get('weight') or 0):.0%}"
    view.update(weight=record.get("weight"), phase_started_at=started, last_check=record.get("last_check"))
    text = (
        f"v{view['version']} {record.get('strategy')}: {what}, phase {phase + 1} of {view['phases']}, "
        f"for {now - started:.0f} s"
    )
    last = record.get("last_check") or {}
    if last.get("summary"):
        text += f"; last check: {last['verdict']} ({last['summary']})"
    return text


# --- conveyor impact -------------------------------------------------------------------------


def impact(
    uri: Annotated[str, typer.Argument(help="s3://BUCKET/KEY of a dropped (incoming/) or accepted data object.")],
    model: Annotated[str | None, typer.Option(help="Model [default: the key's first path segment].")] = None,
    retrain: Annotated[
        bool, typer.Option(help="Exclude the object from all future training and retrain without it now.")
    ] = False,
    erase: Annotated[
        bool,
        typer.Option(
            help="Delete every stored version of the object, its quarantined and original parts, its reports and "
            "the capture records of its entities; record the erasure in the registry (operator role)."
        ),
    ] = False,
    reason: Annotated[
        str, typer.Option(help="Why (recorded with the exclusion and the new version).")
    ] = "deletion request",
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the retrain.")] = 900.0,
    state: StateOption = None,
    stack: StackOption = None,
    as_json: JsonFlag = False,
) -> None:
    """List every model version trained on a data object (for deletion requests); --retrain retrains without it;
    --erase deletes it everywhere it is stored (README, "Erasure requests").

    Exit codes: 0 listed (with --retrain: a version trained without the object serves); 2 no such accepted
    object, or it is the model's only accepted data (nothing is excluded then); 3 the retrained candidate was
    rejected by its gates; 1 the retrain or the erasure failed.
    """
    from conveyor.registry import Registry

    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise fail(f"{uri!r} is not an s3://BUCKET/KEY uri", ExitCode.BAD_INPUT)
    bucket, key = uri[5:].split("/", 1)
    name = model or key.split("/", 1)[0]
    target = load_target(state, stack)
    registry = Registry(target.registry_table())
    document = _impact_document(registry, name, bucket, key)
    if not document["objects"]:
        raise fail(f"no accepted data object of model {name!r} at {uri}", ExitCode.BAD_INPUT)
    if not as_json:
        _print_impact(document)
    code = ExitCode.OK
    if erase:
        document["erasure"] = _erase(target, registry, name, bucket, key, reason, quiet=as_json)
    if retrain:
        document["retrain"], code = _retrain(target, registry, name, bucket, key, reason, timeout, quiet=as_json)
    if as_json:
        print_json(document)
    raise typer.Exit(code)


def _impact_document(registry: Registry, model: str, bucket: str, key: str) -> dict[str, Any]:
    datasets, versions = registry.impact(model, bucket, key)
    routing = registry.routing(model)
    serving = int(routing.champion["version"]) if routing and routing.champion else None
    return {
        "model": model,
        "objects": [
            {k: d.get(k) for k in ("bucket", "key", "source_key", "sha256", "rows", "excluded")} for d in datasets
        ],
        "versions": [{"version": v.version, "status": v.status, "serving": v.version == serving} for v in versions],
    }


def _print_impact(document: dict[str, Any]) -> None:
    for d in document["objects"]:
        console.print(f"object s3://{d['bucket']}/{d['key']} (sha256 {str(d['sha256'])[:12]}, {d['rows']} rows)")
    for v in document["versions"]:
        console.print(f"  trained v{v['version']} ({v['status']}{', serving' if v['serving'] else ''})")
    if not document["versions"]:
        console.print("  no version was trained on it")


def _erase(
    target: Target, registry: Registry, model: str, bucket: str, key: str, reason: str, *, quiet: bool
) -> dict[str, Any]:
    import getpass

    from botocore.exceptions import BotoCoreError, ClientError

    from conveyor.cli.erase import erase

    try:
        erased = erase(target, registry, model, bucket, key, reason=reason, by=getpass.getuser())
    except (ClientError, BotoCoreError, PermissionError) as error:
        raise fail(
            f"the erasure of s3://{bucket}/{key} is incomplete (run it again as the operator): {error}"
        ) from None
    if not quiet:
        versions = sum(erased["object_versions"].values())
        capture = erased["capture"]
        console.print(
            f"erased: {versions} object version(s) of {len(erased['object_versions'])} key(s); "
            f"{capture['records_removed']} capture record(s) in {capture['files_rewritten']} file(s); recorded"
        )
    return erased


def _retrain(
    target: Target, registry: Registry, model: str, bucket: str, key: str, reason: str, timeout: float, *, quiet: bool
) -> tuple[dict[str, Any], ExitCode]:
    """Exclude the object, start the retrain and follow it: what --json shows, and the exit code."""
    from conveyor.erasure import retrain_without
    from conveyor.registry import RegistryError

    try:
        started = retrain_without(registry, target.execution_starter(), model, bucket, key, reason=reason)
    except RegistryError as error:
        raise fail(str(error), ExitCode.BAD_INPUT) from None
    if not quiet:
        console.print(f"excluded from training; retraining ({started.execution})")
    arn = target.output("StateMachineArn").replace(":stateMachine:", ":execution:") + f":{started.execution}"
    outcome = follow(target.sfn, arn, timeout=timeout)
    if not quiet:
        print_execution_outcome(outcome, started.execution)
    document = {
        "execution": started.execution,
        "status": outcome.status,
        "final_state": outcome.final_state,
        "registration": outcome.output.get("registration") or {},
    }
    return document, outcome.exit_code


# --- conveyor predict ------------------------------------------------------------------------


def predict(
    model: Annotated[str, typer.Argument(help="Model to call.")],
    body: Annotated[
        str | None, typer.Option("--json", help='Request body, e.g. \'{"instances": [{"age": 40, ...}]}\'.')
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", help="Read the request body from this file.", exists=True)
    ] = None,
    request_id: Annotated[str | None, typer.Option(help="X-Request-Id to send (echoed back).")] = None,
    state: StateOption = None,
    stack: StackOption = None,
) -> None:
    """POST a request to /models/MODEL/predict and print the JSON answer (exit 1 on an error status).

    With --stack the request is signed with SigV4 (the API is IAM-authorized): the caller needs
    execute-api:Invoke on it.
    """
    import requests

    if (body is None) == (file is None):
        raise fail("give exactly one of --json or --file", ExitCode.BAD_INPUT)
    text = body if body is not None else file.read_text()  # type: ignore[union-attr]
    try:
        json.loads(text)
    except json.JSONDecodeError as error:
        raise fail(f"the request body is not valid JSON: {error}", ExitCode.BAD_INPUT) from None
    target = load_target(state, stack)
    headers = {"Content-Type": "application/json"}
    if request_id:
        headers["X-Request-Id"] = request_id
    try:
        response = target.request("POST", f"/models/{model}/predict", data=text, headers=headers, timeout=30)
    except TargetError as error:
        raise fail(str(error)) from None
    except requests.RequestException as error:
        raise fail(f"{target.api_url} did not answer: {error}") from None
    try:
        out.print_json(json.dumps(response.json()))
    except ValueError:
        out.print(response.text)
    if response.status_code != 200:
        raise typer.Exit(ExitCode.FAILURE)
