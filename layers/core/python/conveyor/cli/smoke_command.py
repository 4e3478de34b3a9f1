"""``conveyor smoke``: one model's whole path through a stack, then cleaned away (the deploy workflow's check).

It drops the bundled dataset under a model name of its own (``smoke-{UTC time}-{random}``, so the
next deploy's smoke test is a new model, never a repeated arrival), follows the pipeline until the
version serves, predicts through the API (SigV4-signed with ``--stack``), and cleans up:

- the model's registry items (its versions, routing record, datasets, deployments) are deleted, so
  it stops serving (the API answers 404 for it once the endpoints' routing cache expires);
- every version of every object under ``{model}/`` in the data, artifact and capture buckets is
  deleted (on a deployed stack deleting object versions in the artifact bucket is the operator
  role's alone: run the smoke test as that role, README "Smoke test").

What stays: the pipeline's execution history and the registry events (an audit trail, not data),
and capture records Firehose delivers after the cleanup (its buffer is up to 15 minutes); the
capture bucket's lifecycle rule expires those.
"""

from __future__ import annotations

import csv
import secrets
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from conveyor.cli.common import ExitCode, JsonFlag, StackOption, StateOption, console, fail, load_target, print_json
from conveyor.cli.target import Target

SMOKE_PREFIX = "smoke"
SMOKE_ROWS = 3000  # enough rows for the bundled spec's gates, few enough to train in seconds
PREDICT_ROWS = 3
FEATURES = ("age", "hhninc", "educ", "female", "married", "kids", "outwork", "self", "edlevel")


def smoke_model_name(now: datetime | None = None) -> str:
    """A model name no earlier smoke test used: the UTC time and a random suffix."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dt%H%M%S")
    return f"{SMOKE_PREFIX}-{stamp}-{secrets.token_hex(3)}"


@dataclass
class SmokeRun:
    """What ``conveyor smoke --json`` prints: each step and how it ended."""

    model: str
    target: str
    steps: list[dict[str, Any]] = field(default_factory=list)
    failed: str | None = None  # the first step that failed
    exit_code: int = int(ExitCode.OK)
    served: dict[str, Any] = field(default_factory=dict)  # the drop step's execution and version

    def step(self, name: str, run: Callable[[], dict[str, Any]], *, quiet: bool) -> bool:
        started = time.monotonic()
        try:
            detail = run()
        except SmokeFailure as failure:
            self.steps.append({"step": name, "ok": False, "error": str(failure), "seconds": _since(started)})
            if self.failed is None:
                self.failed, self.exit_code = name, int(failure.code)
            if not quiet:
                console.print(f"[bold red]{name} failed[/] {failure}")
            return False
        self.steps.append({"step": name, "ok": True, **detail, "seconds": _since(started)})
        if name == "drop":
            self.served.update(detail)
        if not quiet:
            console.print(f"[green]{name}[/] ok ({_since(started):.1f} s)")
        return True

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "target": self.target,
            "ok": self.failed is None,
            "failed": self.failed,
            "steps": self.steps,
            "exit_code": self.exit_code,
        }


class SmokeFailure(Exception):
    def __init__(self, message: str, code: ExitCode = ExitCode.FAILURE) -> None:
        super().__init__(message)
        self.code = code


def _since(started: float) -> float:
    return round(time.monotonic() - started, 3)


def smoke(
    data: Annotated[
        Path | None,
        typer.Option(help="CSV to drop [default: the bundled dataset, events/data/].", exists=True, dir_okay=False),
    ] = None,
    spec: Annotated[
        Path | None,
        typer.Option(help="Spec to train with [default: the bundled doctor-visits spec].", exists=True, dir_okay=False),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the version to serve.")] = 1800.0,
    keep: Annotated[bool, typer.Option(help="Leave the smoke model in place (no cleanup), to inspect it.")] = False,
    state: StateOption = None,
    stack: StackOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Smoke-test a stack: drop the bundled data under a new model, wait until it serves, predict, clean up.

    Exit codes: 0 every step passed; 2 the data was rejected; 3 the candidate was rejected; 4 timed out;
    1 any other failure (the message names the step). The cleanup runs whatever failed before it.
    """
    data_file, spec_file = _bundled(data, spec)
    target = load_target(state, stack)
    run = SmokeRun(model=smoke_model_name(), target=target.where)
    if not as_json:
        console.print(f"smoke test of {target.where} with model [bold]{run.model}[/]")
    with tempfile.TemporaryDirectory(prefix="conveyor-smoke-") as scratch:
        drop_file = _smoke_rows(data_file, Path(scratch) / f"{run.model}.csv")
        _ = (
            run.step("spec", lambda: _upload_spec(target, run.model, spec_file), quiet=as_json)
            and run.step("drop", lambda: _drop(target, run.model, drop_file, timeout), quiet=as_json)
            and run.step("predict", lambda: _predict(target, run.model, drop_file, run.served, timeout), quiet=as_json)
        )
    if not keep:
        run.step("cleanup", lambda: cleanup(target, run.model), quiet=as_json)
    if as_json:
        print_json(run.to_dict())
    if run.failed is not None:
        failed = next(step for step in run.steps if not step["ok"])
        raise fail(f"smoke test failed at {run.failed}: {failed['error']}", ExitCode(run.exit_code))
    if not as_json:
        console.print(f"[bold green]smoke test passed[/] on {target.where}")


def _bundled(data: Path | None, spec: Path | None) -> tuple[Path, Path]:
    if data is not None and spec is not None:
        return data, spec
    from conveyor.errors import ConveyorError
    from conveyor.localcloud.template import repo_root

    try:
        root = repo_root()
    except ConveyorError:
        raise fail(
            "the bundled data is in a checkout: run from one, or give --data and --spec", ExitCode.BAD_INPUT
        ) from None
    return (
        data or root / "events" / "data" / "german_health_1984_1988.csv",
        spec or root / "events" / "specs" / "doctor-visits.yaml",
    )


def _smoke_rows(source: Path, destination: Path) -> Path:
    """The first SMOKE_ROWS rows of the bundled data (header kept)."""
    with source.open(newline="") as handle, destination.open("w", newline="") as written:
        reader, writer = csv.reader(handle), csv.writer(written)
        for number, row in enumerate(reader):
            if number > SMOKE_ROWS:
                break
            writer.writerow(row)
    return destination


def _upload_spec(target: Target, model: str, spec_file: Path) -> dict[str, Any]:
    import yaml

    from conveyor import layout

    document = yaml.safe_load(spec_file.read_text())
    document["name"] = model
    document["deployment"] = {"strategy": "all_at_once", "approval": "auto"}  # no bake, no reviewer
    key = layout.spec_key(model)
    target.s3.put_object(Bucket=target.output("ArtifactBucketName"), Key=key, Body=yaml.safe_dump(document).encode())
    return {"key": key}


def _drop(target: Target, model: str, drop_file: Path, timeout: float) -> dict[str, Any]:
    from conveyor.cli.follow import drop_and_follow

    result = drop_and_follow(target, drop_file, model, wait=True, timeout=timeout, quiet=True)
    code = ExitCode(result["exit_code"])
    if code != ExitCode.OK:
        reason = result.get("cause") or result.get("final_state") or result.get("status")
        raise SmokeFailure(f"the pipeline ended with exit code {int(code)} ({reason})", code)
    registration = result.get("registration") or {}
    return {"execution_arn": result["execution_arn"], "version": registration.get("version")}


def _predict(target: Target, model: str, drop_file: Path, served: dict[str, Any], timeout: float) -> dict[str, Any]:
    """POST a few rows until the new version answers them (the endpoint's routing cache may lag)."""
    import json

    import requests

    with drop_file.open(newline="") as handle:
        rows = [row for _, row in zip(range(PREDICT_ROWS), csv.DictReader(handle), strict=False)]
    instances = [{f: (str(r[f]) if f == "edlevel" else float(r[f])) for f in FEATURES} for r in rows]
    body = json.dumps({"instances": instances})
    deadline = time.monotonic() + min(timeout, 120.0)
    last = ""
    while time.monotonic() < deadline:
        try:
            response = target.request(
                "POST", f"/models/{model}/predict", data=body, headers={"Content-Type": "application/json"}
            )
        except requests.RequestException as error:
            last = f"no answer: {error}"
        else:
            answer = _json_or_empty(response)
            answered = response.status_code == 200 and len(answer.get("predictions", [])) == len(instances)
            if answered and served.get("version") in (None, answer.get("model_version")):
                return {"model_version": answer.get("model_version"), "predictions": answer["predictions"]}
            last = f"HTTP {response.status_code}: {response.text[:300]}"
        time.sleep(1.0)
    raise SmokeFailure(f"v{served.get('version')} of {model} did not answer a prediction: {last}")


def _json_or_empty(response: Any) -> dict[str, Any]:
    try:
        answer = response.json()
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


def cleanup(target: Target, model: str) -> dict[str, Any]:
    """Delete the model's registry items (it stops serving) and every object version under ``{model}/``."""
    from botocore.exceptions import ClientError

    try:
        items = _delete_registry_items(target, model)
        objects = {
            name: _delete_object_versions(target, target.output(name), f"{model}/")
            for name in ("DataBucketName", "ArtifactBucketName", "CaptureBucketName")
        }
    except ClientError as error:
        detail = error.response.get("Error", {})
        raise SmokeFailure(f"cleanup of {model} incomplete: {detail.get('Code')}: {detail.get('Message')}") from None
    return {"registry_items": items, "object_versions": objects}


def _delete_registry_items(target: Target, model: str) -> int:
    from conveyor.registry import model_partitions

    table = target.output("RegistryTableName")
    deleted = 0
    for pk in model_partitions(model):
        arguments: dict[str, Any] = {
            "TableName": table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}},
            "ProjectionExpression": "pk, sk",
        }
        while True:
            page = target.dynamodb.query(**arguments)
            for item in page.get("Items", []):
                target.dynamodb.delete_item(TableName=table, Key={"pk": item["pk"], "sk": item["sk"]})
                deleted += 1
            if "LastEvaluatedKey" not in page:
                break
            arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return deleted


def _delete_object_versions(target: Target, bucket: str, prefix: str) -> int:
    """Every version and delete marker under ``prefix`` (an unversioned bucket lists its objects as version null)."""
    deleted = 0
    for page in target.s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        found = [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
        objects = [{"Key": o["Key"], "VersionId": o["VersionId"]} for o in found]
        for start in range(0, len(objects), 1000):
            answer = target.s3.delete_objects(Bucket=bucket, Delete={"Objects": objects[start : start + 1000]})
            errors = answer.get("Errors") or []
            if errors:
                first = errors[0]
                raise SmokeFailure(f"s3://{bucket}/{first['Key']}: {first.get('Code')}: {first.get('Message')}")
            deleted += len(objects[start : start + 1000])
    return deleted
