"""Live traffic commands against the running local cloud: ``conveyor labels`` and ``conveyor monitor``.

Registered in ``conveyor.cli.app.COMMANDS``.

Exit codes of ``labels``: 0 joined (matched or not); 2 the file was quarantined, or bad input; 1 the
join did not finish in time. ``monitor``: 0 ran (whatever it found); 1 the run failed; 2 bad input.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

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
from conveyor.cli.target import Target


def _wait_for_join(target: Target, model: str, label_object: str, timeout: float) -> dict[str, Any] | None:
    from conveyor.layout import labels_report_key

    bucket = target.output("CaptureBucketName")
    key = labels_report_key(model, label_object)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            document: dict[str, Any] = json.loads(target.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
            return document
        except target.s3.exceptions.NoSuchKey:
            time.sleep(0.5)
    return None


def labels(
    file: Annotated[Path, typer.Argument(help="Labels (CSV or Parquet): request_id, row (optional), the target.")],
    model: Annotated[str, typer.Option(help="The model the labels are for.")],
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the join.")] = 300.0,
    state: StateOption = None,
    stack: StackOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Upload labels to s3://DATA_BUCKET/MODEL/labels/ and report how many matched captured requests.

    Labels join the served answer of their request (never a shadow's); the live monitor then reports
    live metrics over them. Exit codes: 0 joined; 2 quarantined (malformed) or bad input; 1 timed out.
    """
    from conveyor.layout import label_key, label_object_id

    if not file.is_file() or file.suffix.lower() not in {".csv", ".parquet", ".pq"}:
        raise fail(f"{file}: expected a CSV or Parquet file", ExitCode.BAD_INPUT)
    target = load_target(state, stack)
    bucket = target.output("DataBucketName")
    data = file.read_bytes()
    key = label_key(model, file.name, hashlib.sha256(data).hexdigest())
    put = target.s3.put_object(Bucket=bucket, Key=key, Body=data)
    label_object = label_object_id(bucket, key, put.get("VersionId") or put.get("ETag", "").strip('"'))
    if not as_json:
        console.print(f"uploaded s3://{bucket}/{key}; joining with the capture")
    outcome = _wait_for_join(target, model, label_object, timeout)
    if outcome is None:
        raise fail(f"the join of s3://{bucket}/{key} did not finish within {timeout:.0f} s", ExitCode.FAILURE)
    if as_json:
        print_json(outcome)
    elif outcome["verdict"] == "quarantined":
        out.print(f"quarantined: {outcome['reason']} (s3://{bucket}/{outcome['quarantine_key']})", markup=False)
    else:
        out.print(
            f"{outcome['matched']} of {outcome['labels']} labels matched captured requests; "
            f"{outcome['unknown_request_ids']} unknown request id(s), {outcome['unmatched_rows']} row(s) not in "
            "their request"
        )
    raise typer.Exit(ExitCode.DATA_REJECTED if outcome["verdict"] == "quarantined" else ExitCode.OK)


def monitor(
    model: Annotated[str, typer.Argument(help="The model to monitor.")],
    now: Annotated[
        bool, typer.Option("--now", help="Run the live monitor now (through the monitor function).")
    ] = False,
    window: Annotated[int | None, typer.Option(help="Window in seconds [default: the spec's].")] = None,
    advance: Annotated[
        float | None,
        typer.Option(help="Local cloud only: move its clock forward SECONDS and fire the schedules that became due."),
    ] = None,
    state: StateOption = None,
    stack: StackOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Run the live monitor of MODEL now (--now), or advance the local cloud's clock (--advance).

    --json prints the serving version's document: {model, version, window, requests, drift: {verdict,
    drifted_features, features}, score_shift, live_metrics: {METRIC: value, labelled_requests: n}}.
    """
    if now == (advance is not None):
        raise fail("give exactly one of --now and --advance SECONDS", ExitCode.BAD_INPUT)
    target = load_target(state, stack)
    if advance is not None:
        _advance(target, advance, as_json)
        return
    payload: dict[str, Any] = {"action": "run", "model": model}
    if window:
        payload["window"] = window
    response = target.client("lambda").invoke(
        FunctionName=target.output("MonitorFunctionName"), Payload=json.dumps(payload).encode()
    )
    result = json.loads(response["Payload"].read() or b"{}")
    if response.get("FunctionError") or not result.get("versions"):
        message = result.get("errorMessage") or f"no version of {model} serves"
        raise fail(f"the monitor of {model} failed: {message}", ExitCode.FAILURE)
    document = result["versions"][0]
    if as_json:
        print_json(document)
        raise typer.Exit(ExitCode.OK)
    for version in result["versions"]:
        drift, metrics = version["drift"], version["live_metrics"]
        shift = version["score_shift"]
        out.print(f"{model} v{version['version']}: {version['requests']} requests in {version['window']['seconds']} s")
        out.print(f"  drift: {drift['verdict']} {', '.join(drift['drifted_features'])}".rstrip())
        out.print(f"  score shift: {shift['shift'] if shift else 'not measured'}")
        out.print(f"  live metrics: {json.dumps(metrics)}")
    out.print(f"report: s3://{target.output('CaptureBucketName')}/{result['report_key']}")
    raise typer.Exit(ExitCode.OK)


def _advance(target: Target, seconds: float, as_json: bool) -> None:
    import requests

    if not target.schedules_url:
        raise fail("this local cloud has no clock hook (started by an older conveyor?)", ExitCode.FAILURE)
    response = requests.post(f"{target.schedules_url}/advance", json={"seconds": seconds}, timeout=900)
    document = response.json()
    if as_json:
        print_json(document)
    else:
        for fired in document.get("fired", []):
            out.print(f"fired {fired['rule']} at {fired['time']} -> {fired['function']}")
    raise typer.Exit(ExitCode.OK if response.ok else ExitCode.FAILURE)
