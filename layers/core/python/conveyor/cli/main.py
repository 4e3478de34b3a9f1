"""``conveyor``: run the assembly line locally, drop data, watch the pipeline, call the model.

Exit codes (all commands): 0 success; 1 failure (the message says why); 2 bad input or data
rejected; 3 candidate rejected by its gates or rolled back during its bake (the champion keeps
serving); 4 timed out waiting; 5 data accepted and recorded, the retrain policy did not fire;
6 the candidate awaits approval (`conveyor approve` / `reject`).
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from conveyor import layout
from conveyor.cli import follow as following
from conveyor.cli.target import Target, TargetError, default_state_path
from conveyor.errors import ConveyorError

app = typer.Typer(
    name="conveyor",
    help=(
        "Conveyor: data dropped into S3 is validated, trains a candidate, which is compared with the model in "
        "production, registered as ONNX and served.\n\n"
        "Start here: `conveyor demo` tells the whole story on the bundled dataset. `conveyor up` keeps a local "
        "cloud running (S3, DynamoDB, Step Functions... on 127.0.0.1) for `drop`, `status` and `predict`.\n\n"
        "Exit codes: 0 ok; 1 failed; 2 bad input or data rejected; 3 candidate rejected (by its gates, a "
        "reviewer, or its bake: rolled back); 4 timed out; 5 data recorded without retraining; 6 awaiting approval."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)
out = Console()

StateOption = Annotated[
    Path | None,
    typer.Option(
        "--state", help="State file of the running local cloud [default: .conveyor/local.json in the checkout]."
    ),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout, for scripts.")]


def _fail(message: str, code: int = 1) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


def _target(state: Path | None) -> Target:
    try:
        return Target.load(state)
    except TargetError as error:
        raise _fail(str(error)) from None


@app.command()
def up(
    port: Annotated[int, typer.Option(help="Port of the AWS endpoint (moto); 0 picks a free one.")] = 0,
    api_port: Annotated[int, typer.Option(help="Port of the prediction API; 0 picks a free one.")] = 0,
    state: StateOption = None,
) -> None:
    """Start the local cloud and keep it running until Ctrl-C.

    Synthesizes the CDK app (cached), starts a moto server on 127.0.0.1 with every resource the stack
    declares, runs the Lambda handlers in-process, starts the pipeline for each object dropped under
    {model}/incoming/ of the data bucket, and serves the prediction API over HTTP. Clients talk to it as
    to AWS: boto3 or the AWS CLI with --endpoint-url.
    """
    from conveyor.localcloud.cloud import LocalCloud

    state_path = state or default_state_path()
    cloud = LocalCloud(port=port, api_port=api_port)
    with console.status("starting the local cloud (synthesizing the CDK app, creating its resources)"):
        try:
            info = cloud.start()
        except ConveyorError as error:
            cloud.stop()
            raise _fail(str(error)) from None
    cloud.write_state(state_path)
    data_bucket = info.outputs.get("DataBucketName", "?")
    console.print(f"[bold green]local cloud up[/] in {info.startup_seconds:.1f} s")
    console.print(f"  AWS endpoint  {info.endpoint}   (region {info.region}, any credentials)")
    console.print(f"  API           {info.api_url}/models/{{model}}/predict")
    for name, value in sorted(info.outputs.items()):
        console.print(f"  {name:<20} {value}")
    console.print(f"  state file    {state_path}")
    console.print(
        f"\n  drop data:  aws s3 cp FILE s3://{data_bucket}/MODEL/incoming/ --endpoint-url {info.endpoint}"
        "\n  stop:       Ctrl-C"
    )
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        while not stopped.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        cloud.stop()
        state_path.unlink(missing_ok=True)
        console.print("local cloud stopped")


@app.command()
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
    as_json: JsonFlag = False,
) -> None:
    """Upload FILE to s3://DATA_BUCKET/MODEL/incoming/ (a drop starts the pipeline) and follow it.

    Exit codes with --wait: 0 new version serving; 2 data rejected (quarantined, report beside it);
    3 candidate rejected by its gates, or rolled back during its canary (the champion keeps serving);
    5 accepted and recorded, the retrain policy did not fire; 6 the candidate awaits approval
    (`conveyor approve MODEL VERSION`); 1 pipeline failed; 4 timed out.
    """
    from conveyor.spec import load_spec

    target = _target(state)
    if spec is not None:
        try:
            parsed = load_spec(spec.read_bytes())
        except ConveyorError as error:
            raise _fail(f"{spec}: {error}", 2) from None
        if parsed.name != model:
            raise _fail(f"{spec} is the spec of model {parsed.name!r}, not {model!r}", 2)
        target.s3.put_object(
            Bucket=target.output("ArtifactBucketName"), Key=layout.spec_key(model), Body=spec.read_bytes()
        )
    outcome = drop_and_follow(target, file, model, wait=wait, timeout=timeout, quiet=as_json)
    if as_json:
        out.print_json(json.dumps(outcome, default=str))
    raise typer.Exit(outcome.get("exit_code", 0))


def drop_and_follow(
    target: Target, file: Path, model: str, *, wait: bool, timeout: float, quiet: bool = False
) -> dict[str, Any]:
    bucket = target.output("DataBucketName")
    key = layout.incoming_key(model, file.name)
    started = time.monotonic()
    put = target.s3.put_object(Bucket=bucket, Key=key, Body=file.read_bytes())
    arn = following.execution_arn_for(
        target.output("StateMachineArn"), bucket, key, put.get("VersionId"), put.get("ETag", "").strip('"')
    )
    if not quiet:
        console.print(f"dropped [bold]{file.name}[/] → s3://{bucket}/{key}")
    result: dict[str, Any] = {"bucket": bucket, "key": key, "version_id": put.get("VersionId"), "execution_arn": arn}
    if not wait:
        return {**result, "exit_code": 0}

    def show(name: str, phase: str, seconds: float) -> None:
        if quiet:
            return
        if phase == "entered":
            console.print(f"  → {name}")
        else:
            console.print(f"    [dim]{name} done in {seconds:.2f} s[/]")

    outcome = following.follow(target.sfn, arn, timeout=timeout, on_stage=show)
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
        evaluation={
            k: outcome.output.get("evaluation", {}).get(k) for k in ("passed", "reason", "candidate", "champion")
        },
        exit_code=outcome.exit_code,
    )
    if not quiet:
        _print_outcome(result)
    return result


def _print_outcome(result: dict[str, Any]) -> None:
    code = result["exit_code"]
    registration = result.get("registration") or {}
    drift = result.get("drift") or {}
    if drift.get("verdict") == "drift":
        console.print(f"[bold yellow]drift detected[/] {drift.get('summary', '')}")
    if code == following.EXIT_SERVING:
        console.print(f"[bold green]serving[/] {registration.get('summary', '')}")
    elif code == following.EXIT_CANDIDATE_REJECTED and result.get("error") == following.ROLLED_BACK:
        console.print(f"[bold red]rolled back[/] {result.get('cause')}")
    elif code == following.EXIT_CANDIDATE_REJECTED:
        console.print(
            f"[bold yellow]candidate rejected[/] {registration.get('summary', '')} The champion keeps serving."
        )
    elif code == following.EXIT_RECORDED:
        console.print(f"[bold]recorded[/] {(result.get('drift') or {}).get('summary', '')}")
    elif code == following.EXIT_AWAITING_APPROVAL:
        console.print(
            f"[bold yellow]awaiting approval[/] {registration.get('summary', '')}\n"
            f"  conveyor approve {registration.get('model')} {registration.get('version')}   "
            f"or   conveyor reject {registration.get('model')} {registration.get('version')} --reason ..."
        )
    elif code == following.EXIT_DATA_REJECTED:
        console.print(f"[bold red]data rejected[/] {result.get('cause')}")
    elif code == following.EXIT_TIMEOUT:
        console.print(f"[bold red]timed out[/] waiting for {result['execution_arn']}")
    else:
        console.print(f"[bold red]pipeline failed[/] ({result.get('error')}): {result.get('cause')}")


@app.command()
def status(
    model: Annotated[str | None, typer.Argument(help="Only this model.")] = None,
    state: StateOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Show each model's versions, what is serving, and the latest pipeline executions."""
    from conveyor.adapters.aws import DynamoTable
    from conveyor.deployment import Deployments
    from conveyor.registry import Registry

    target = _target(state)
    table_name = target.output("RegistryTableName")
    registry_table = DynamoTable(table_name, resource=_resource(target))
    registry = Registry(registry_table)
    scan = target.dynamodb.scan(TableName=table_name, ProjectionExpression="pk, sk")
    models = sorted({i["pk"]["S"].split("#", 1)[1] for i in scan.get("Items", []) if i["pk"]["S"].startswith("MODEL#")})
    if model:
        models = [m for m in models if m == model]
    executions = target.sfn.list_executions(stateMachineArn=target.output("StateMachineArn"), maxResults=20)[
        "executions"
    ]
    document: dict[str, Any] = {"models": [], "executions": []}
    deployments = Deployments(registry_table)
    for name in models:
        routing = registry.routing(name)
        versions = registry.versions(name)
        document["models"].append(
            {
                "model": name,
                "serving": routing.champion["version"] if routing and routing.champion else None,
                "revision": routing.revision if routing else 0,
                "killed": bool(routing and routing.killed),
                "challenger": (
                    {"version": routing.challenger["version"], "weight": routing.challenger_weight}
                    if routing and routing.challenger
                    else None
                ),
                "shadow": routing.shadow["version"] if routing and routing.shadow else None,
                "traffic": routing.traffic() if routing else {},
                "deployments": [_deployment_view(d) for d in deployments.in_progress(name)],
                "breakers": _breakers(target, name),
                "versions": [
                    {
                        "version": v.version,
                        "status": v.status,
                        "metrics": v.metrics.get("candidate", {}),
                        "decision": v.decision,
                    }
                    for v in versions
                ],
            }
        )
    for execution in executions:
        if model and not execution["name"].startswith(model):
            continue
        document["executions"].append(
            {"name": execution["name"], "status": execution["status"], "started": str(execution["startDate"])}
        )
    if as_json:
        out.print_json(json.dumps(document, default=str))
        return
    if not document["models"]:
        out.print("no models yet: drop data with `conveyor drop FILE --model NAME --spec model.yaml`")
    for entry in document["models"]:
        trial = ""
        if entry["challenger"]:
            trial += f", challenger v{entry['challenger']['version']} at {entry['challenger']['weight']:.0%}"
        if entry["shadow"]:
            trial += f", shadow v{entry['shadow']}"
        if entry["killed"]:
            trial += ", KILLED"
        grid = Table(
            title=f"{entry['model']} (serving v{entry['serving']}{trial}, routing revision {entry['revision']})"
        )
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
    if document["executions"]:
        grid = Table(title="latest executions")
        for column in ("name", "status", "started"):
            grid.add_column(column)
        for e in document["executions"]:
            grid.add_row(e["name"], e["status"], e["started"])
        out.print(grid)


def _breakers(target: Target, model: str) -> dict[str, Any]:
    """The breakers ``GET /models/{model}`` shows (the answering container's); {} when the API does not answer."""
    import requests

    try:
        response = requests.get(f"{target.api_url}/models/{model}", timeout=3)
        return dict(response.json().get("breakers") or {}) if response.ok else {}
    except (requests.RequestException, ValueError):
        return {}


@app.command()
def impact(
    uri: Annotated[str, typer.Argument(help="s3://BUCKET/KEY of a dropped (incoming/) or accepted data object.")],
    model: Annotated[str | None, typer.Option(help="Model [default: the key's first path segment].")] = None,
    retrain: Annotated[
        bool, typer.Option(help="Exclude the object from all future training and retrain without it now.")
    ] = False,
    reason: Annotated[
        str, typer.Option(help="Why (recorded with the exclusion and the new version).")
    ] = "deletion request",
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the retrain.")] = 900.0,
    state: StateOption = None,
    as_json: JsonFlag = False,
) -> None:
    """List every model version trained on a data object (for deletion requests); --retrain retrains without it.

    Exit codes: 0 listed (with --retrain: a version trained without the object serves); 2 no such accepted
    object, or it is the model's only accepted data (nothing is excluded then); 3 the retrained candidate was rejected by its gates; 1 the retrain failed.
    """
    from conveyor.adapters.aws import DynamoTable, StepFunctionsStarter
    from conveyor.registry import Registry

    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise _fail(f"{uri!r} is not an s3://BUCKET/KEY uri", 2)
    bucket, key = uri[5:].split("/", 1)
    name = model or key.split("/", 1)[0]
    target = _target(state)
    registry = Registry(DynamoTable(target.output("RegistryTableName"), resource=_resource(target)))
    datasets, versions = registry.impact(name, bucket, key)
    if not datasets:
        raise _fail(f"no accepted data object of model {name!r} at {uri}", 2)
    routing = registry.routing(name)
    serving = int(routing.champion["version"]) if routing and routing.champion else None
    document: dict[str, Any] = {
        "model": name,
        "objects": [
            {k: d.get(k) for k in ("bucket", "key", "source_key", "sha256", "rows", "excluded")} for d in datasets
        ],
        "versions": [{"version": v.version, "status": v.status, "serving": v.version == serving} for v in versions],
    }
    if not as_json:
        for d in document["objects"]:
            console.print(f"object s3://{d['bucket']}/{d['key']} (sha256 {str(d['sha256'])[:12]}, {d['rows']} rows)")
        for v in document["versions"]:
            console.print(f"  trained v{v['version']} ({v['status']}{', serving' if v['serving'] else ''})")
        if not versions:
            console.print("  no version was trained on it")
    code = 0
    if retrain:
        excluded = {str(d["sha256"]) for d in datasets}
        if not [d for d in registry.datasets(name) if str(d["sha256"]) not in excluded]:
            raise _fail(
                f"nothing left to train {name!r} on without {uri}: it is the model's only accepted data; "
                "nothing was excluded and no retrain started",
                2,
            )
        for d in datasets:
            registry.exclude_dataset(name, d["sha256"], reason)
        digest = "-".join(sorted(str(d["sha256"])[:8] for d in datasets))
        execution = f"{name}-retrain-{digest}-{int(time.time())}"[:80]
        payload = {
            "retrain": {
                "model": name,
                "reason": f"{reason}: retrain without {uri}",
                "excluded": [d["sha256"] for d in datasets],
            }
        }
        arn = target.output("StateMachineArn")
        StepFunctionsStarter(arn, client=target.sfn).start(execution, payload)
        if not as_json:
            console.print(f"excluded from training; retraining ({execution})")
        outcome = following.follow(
            target.sfn, arn.replace(":stateMachine:", ":execution:") + f":{execution}", timeout=timeout
        )
        registration = outcome.output.get("registration") or {}
        document["retrain"] = {
            "execution": execution,
            "status": outcome.status,
            "final_state": outcome.final_state,
            "registration": registration,
        }
        code = outcome.exit_code
        if not as_json:
            _print_outcome(
                {
                    "exit_code": code,
                    "registration": registration,
                    "error": outcome.error,
                    "cause": outcome.cause,
                    "execution_arn": execution,
                }
            )
    if as_json:
        out.print_json(json.dumps(document, default=str))
    raise typer.Exit(code)


def _routing_registry(state: Path | None) -> Any:
    from conveyor.adapters.aws import DynamoTable
    from conveyor.registry import Registry

    target = _target(state)
    return Registry(DynamoTable(target.output("RegistryTableName"), resource=_resource(target)))


def _routing_change(action: str, run: Any, as_json: bool) -> None:
    from conveyor.registry import RegistryError

    try:
        routing = run()
    except RegistryError as error:
        raise _fail(str(error), 2) from None
    document = {
        "model": routing.model,
        "action": action,
        "champion": routing.champion,
        "killed": routing.killed,
        "fallback": routing.fallback,
        "revision": routing.revision,
    }
    if as_json:
        out.print_json(json.dumps(document, default=str))
    else:
        console.print(
            f"{action}: {routing.model} champion v{routing.champion['version']}, "
            f"{'KILLED, fallback ' + json.dumps(routing.fallback) if routing.killed else 'serving'} "
            f"(routing revision {routing.revision}; endpoints see it within the routing cache time)"
        )


@app.command()
def kill(
    model: Annotated[str, typer.Argument(help="Model to switch off.")],
    fallback: Annotated[
        str, typer.Option(help="What requests get meanwhile: previous (the version before), static, or none (503).")
    ] = "previous",
    static_prediction: Annotated[
        str | None, typer.Option(help="With --fallback static: the prediction to answer with (JSON value).")
    ] = None,
    state: StateOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Kill switch: stop serving MODEL's champion now. Undo with `conveyor revive MODEL`."""
    value = None
    if static_prediction is not None:
        try:
            value = json.loads(static_prediction)
        except json.JSONDecodeError as error:
            raise _fail(f"--static-prediction is not a JSON value: {error}", 2) from None
    registry = _routing_registry(state)
    _routing_change("kill", lambda: registry.kill(model, fallback, value), as_json)


@app.command()
def revive(
    model: Annotated[str, typer.Argument(help="Model to switch back on.")],
    state: StateOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Undo a kill: the champion serves again."""
    registry = _routing_registry(state)
    _routing_change("revive", lambda: registry.revive(model), as_json)


@app.command()
def rollback(
    model: Annotated[str, typer.Argument(help="Model to roll back.")],
    to: Annotated[int | None, typer.Option(help="Version to serve [default: the one that served before].")] = None,
    state: StateOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Send all traffic back to an earlier version (by a conditional write of the routing record)."""
    registry = _routing_registry(state)
    _routing_change("rollback", lambda: registry.rollback(model, to), as_json)


def _deployment_view(record: dict[str, Any]) -> dict[str, Any]:
    """A deployment record as `conveyor status` shows it."""
    now = time.time()
    model, version, state = record["model"], int(record["version"]), str(record.get("state"))
    view: dict[str, Any] = {
        "version": version,
        "state": state,
        "strategy": record.get("strategy"),
        "phase": record.get("phase"),
        "phases": len(record.get("phases") or []),
        "execution": record.get("execution"),
    }
    if state == "awaiting_approval":
        expires_at = float(record.get("expires_at") or 0.0)
        view["expires_at"] = expires_at
        if expires_at and expires_at < now:
            view["state"] = state = "approval_expired"
            text = f"v{version} waited for approval; the request expired"
        else:
            text = (
                f"v{version} awaits approval ({record.get('strategy')}): conveyor approve {model} {version}"
                f"  |  conveyor reject {model} {version} --reason ..."
            )
    elif state == "trial":
        phase = int(record.get("phase", 0))
        kind = (record.get("phases") or [{}])[phase].get("kind", "challenger")
        started = float(record.get("phase_started_at") or now)
        what = "shadow" if kind == "shadow" else f"canary at {float(record.get('weight') or 0):.0%}"
        view.update(weight=record.get("weight"), phase_started_at=started, last_check=record.get("last_check"))
        text = f"v{version} {record.get('strategy')}: {what}, phase {phase + 1} of {view['phases']}, for {now - started:.0f} s"
        last = record.get("last_check") or {}
        if last.get("summary"):
            text += f"; last check: {last['verdict']} ({last['summary']})"
    else:
        text = f"v{version} {record.get('strategy')}: {state}"
    view["text"] = text
    return view


def _approval_ports(state: Path | None) -> tuple[Target, Any, Any, Any, Any]:
    from conveyor.adapters.aws import DynamoTable, EventBridgePublisher, StepFunctionsCallbacks
    from conveyor.deployment import Deployments
    from conveyor.registry import Registry

    target = _target(state)
    table = DynamoTable(target.output("RegistryTableName"), resource=_resource(target))
    return (
        target,
        Registry(table),
        Deployments(table),
        StepFunctionsCallbacks(client=target.sfn),
        EventBridgePublisher(client=target.client("events")),
    )


def _reviewer() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _answer_approval(action: str, run: Any, target: Target, as_json: bool, wait: bool, timeout: float) -> None:
    from conveyor.deployment import DeploymentError
    from conveyor.registry import RegistryError

    try:
        result = run()
    except (DeploymentError, RegistryError) as error:
        if as_json:
            out.print_json(json.dumps({"action": action, "error": str(error), "exit_code": 2}))
        raise _fail(str(error), 2) from None
    code = 0
    if wait and action == "approve" and result.get("execution"):
        if not as_json:
            console.print(f"approved {result['model']} v{result['version']}; following its deployment")

        def show(name: str, phase: str, seconds: float) -> None:
            if not as_json and phase == "entered":
                console.print(f"  → {name}")

        outcome = following.follow(
            target.sfn, result["execution"], timeout=timeout, on_stage=show, stop_at_approval=False
        )
        code = outcome.exit_code
        result.update(
            deployment={
                "status": outcome.status,
                "final_state": outcome.final_state,
                "error": outcome.error,
                "cause": outcome.cause,
                "stages": [s for s, _ in outcome.stages],
            }
        )
        if not as_json:
            _print_outcome(
                {
                    "exit_code": code,
                    "registration": outcome.output.get("registration") or {},
                    "error": outcome.error,
                    "cause": outcome.cause,
                    "execution_arn": result["execution"],
                }
            )
    elif not as_json:
        verb = "approved" if action == "approve" else "rejected"
        console.print(
            f"{verb} {result['model']} v{result['version']}"
            + ("; its deployment resumes" if action == "approve" else "; nothing will be deployed")
        )
    result["exit_code"] = code
    if as_json:
        out.print_json(json.dumps(result, default=str))
    raise typer.Exit(code)


VersionArgument = Annotated[int, typer.Argument(help="Version number (see `conveyor status MODEL`).")]


@app.command()
def approve(
    model: Annotated[str, typer.Argument(help="Model whose candidate awaits approval.")],
    version: VersionArgument,
    by: Annotated[str | None, typer.Option(help="Who approves (recorded) [default: the current user].")] = None,
    wait: Annotated[
        bool, typer.Option(help="Follow the deployment (bakes, promotion or rollback) to its end.")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to follow the deployment with --wait.")] = 3600.0,
    state: StateOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Approve a candidate that waits for a reviewer (`deployment.approval: manual`).

    It becomes approved, ModelApproved is emitted, and its deployment resumes (canary, linear, shadow or at once).

    Exit codes: 0 approved (with --wait: and serving); 2 unknown version, or nothing of it waits for approval.

    With --wait: 3 rolled back during its bake, 4 timed out following. 1 any other failure.
    """
    from conveyor.deployment import approve as approve_version

    target, registry, deployments, callbacks, events = _approval_ports(state)
    reviewer = by or _reviewer()
    _answer_approval(
        "approve",
        lambda: approve_version(registry, deployments, callbacks, events, model=model, version=version, by=reviewer),
        target,
        as_json,
        wait,
        timeout,
    )


@app.command()
def reject(
    model: Annotated[str, typer.Argument(help="Model whose candidate awaits approval.")],
    version: VersionArgument,
    reason: Annotated[str, typer.Option(help="Why (recorded with the version and sent with the alert).")] = (
        "rejected by a reviewer"
    ),
    by: Annotated[str | None, typer.Option(help="Who rejects (recorded) [default: the current user].")] = None,
    state: StateOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Reject a candidate that waits for a reviewer: the champion keeps serving.

    It becomes rejected, ModelRejected is emitted, and its waiting deployment ends ("Rejected by reviewer").

    Exit codes: 0 rejected; 2 unknown version, or nothing of it waits for approval; 1 any other failure.
    """
    from conveyor.deployment import reject as reject_version

    target, registry, deployments, callbacks, events = _approval_ports(state)
    reviewer = by or _reviewer()
    _answer_approval(
        "reject",
        lambda: reject_version(
            registry, deployments, callbacks, events, model=model, version=version, by=reviewer, reason=reason
        ),
        target,
        as_json,
        False,
        0.0,
    )


def _resource(target: Target) -> Any:
    import boto3

    return boto3.resource(
        "dynamodb",
        endpoint_url=target.endpoint,
        region_name=target.region,
        aws_access_key_id="conveyor-local",
        aws_secret_access_key="conveyor-local",  # noqa: S106 - the local cloud's fixed fake credentials
    )


@app.command()
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
) -> None:
    """POST a request to /models/MODEL/predict and print the JSON answer (exit 1 on an error status)."""
    import requests

    if (body is None) == (file is None):
        raise _fail("give exactly one of --json or --file", 2)
    text = body if body is not None else file.read_text()  # type: ignore[union-attr]
    try:
        json.loads(text)
    except json.JSONDecodeError as error:
        raise _fail(f"the request body is not valid JSON: {error}", 2) from None
    target = _target(state)
    headers = {"Content-Type": "application/json"}
    if request_id:
        headers["X-Request-Id"] = request_id
    response = requests.post(f"{target.api_url}/models/{model}/predict", data=text, headers=headers, timeout=30)
    try:
        out.print_json(json.dumps(response.json()))
    except ValueError:
        out.print(response.text)
    if response.status_code != 200:
        raise typer.Exit(1)


@app.command()
def demo(
    keep_running: Annotated[bool, typer.Option(help="Leave the local cloud running at the end.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Tell the whole story on the bundled dataset (German health registry, 1984-1988).

    Starts a local cloud, drops 1984-1985 data as a user would (an S3 upload), shows each pipeline stage,
    serves v1 over HTTP, drops 1986 (v2 is served or rejected with the reason), drops a broken file (it is
    quarantined and the champion keeps serving), prints a summary and stops what it started.
    """
    from conveyor.cli.demo import run_demo

    raise typer.Exit(run_demo(console=console, out=out, keep_running=keep_running, as_json=as_json))


def _register_offline_commands() -> None:
    """Offline commands: the same domain code as the Lambdas, on local files, with no cloud."""
    from conveyor.cli.data_commands import init, validate
    from conveyor.cli.drift_command import drift

    app.command()(init)
    app.command()(validate)
    app.command()(drift)


_register_offline_commands()


def _register_model_commands() -> None:
    """Models: `train` and `evaluate` offline (the Train and Evaluate stages' code on local files);
    `models` and `lineage` read the registry of the running local cloud."""
    from conveyor.cli.model_commands import evaluate, lineage, models, train

    app.command()(train)
    app.command()(evaluate)
    app.command()(models)
    app.command()(lineage)


_register_model_commands()


def main() -> None:
    try:
        app()
    except ConveyorError as error:
        console.print(f"[bold red]error:[/] {error}")
        sys.exit(1)


if __name__ == "__main__":
    main()
