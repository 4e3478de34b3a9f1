"""``conveyor demo``: the whole assembly line on the bundled dataset, through public faces only
(S3 uploads with boto3, the Step Functions API to watch, HTTP to predict)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests
from rich.console import Console
from rich.table import Table

from conveyor import layout
from conveyor.cli.common import ExitCode
from conveyor.cli.follow import drop_and_follow
from conveyor.cli.target import Target
from conveyor.localcloud.template import repo_root

MODEL = "doctor-visits"
FEATURES = ("age", "hhninc", "educ", "female", "married", "kids", "outwork", "self", "edlevel")


def split_by_year(source: Path, directory: Path) -> dict[str, Path]:
    """Write the dataset's years as the files that would arrive over time."""
    directory.mkdir(parents=True, exist_ok=True)
    with source.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = list(reader)
    year = header.index("year")
    by_year = {y: [r for r in rows if r[year] == y] for y in ("1984", "1985", "1986", "1987", "1988")}
    # 1986 arrives in two parts: most of the year, then a small late batch.
    groups = {
        "1984-1985": by_year["1984"] + by_year["1985"],
        "1986": by_year["1986"][:3200],
        "1986-late": by_year["1986"][3200:],
        "1988": by_year["1988"],
    }
    files = {}
    for label, selected in groups.items():
        path = directory / f"german_health_{label}.csv"
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(selected)
        files[label] = path
    broken = directory / "german_health_1987_broken.csv"
    with broken.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([h for h in header if h != "docvis"])  # the target column went missing upstream
        for r in rows[:200]:
            writer.writerow([("forty" if h == "age" else v) for h, v in zip(header, r, strict=True) if h != "docvis"])
    files["broken"] = broken
    return files


def sample_instances(path: Path, count: int) -> list[dict[str, Any]]:
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))[:count]
    return [{f: (str(r[f]) if f == "edlevel" else float(r[f])) for f in FEATURES} for r in rows]


def _start_cloud(
    root: Path, workdir: Path, data_dir: Path, console: Console
) -> tuple[subprocess.Popen[bytes], Target, float]:
    state = workdir / "local.json"
    state.unlink(missing_ok=True)
    log = (workdir / "local-cloud.log").open("wb")
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "conveyor.cli.main", "up", "--state", str(state), "--data-dir", str(data_dir)],
        cwd=root,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    with console.status("starting the local cloud: synthesizing the CDK app, creating its resources on moto"):
        while not state.exists():
            if process.poll() is not None:
                raise RuntimeError(
                    f"the local cloud exited with {process.returncode}; see {workdir / 'local-cloud.log'}"
                )
            if time.monotonic() - started > 300:
                process.terminate()
                raise RuntimeError("the local cloud did not start within 300 s")
            time.sleep(0.1)
    return process, Target.load(state), time.monotonic() - started


def _predict(target: Target, instances: list[dict[str, Any]], request_id: str) -> requests.Response:
    return requests.post(
        f"{target.api_url}/models/{MODEL}/predict",
        json={"instances": instances},
        headers={"X-Request-Id": request_id},
        timeout=30,
    )


def _show_predictions(out: Console, instances: list[dict[str, Any]], answer: dict[str, Any]) -> None:
    grid = Table(title=f"{answer['model']} v{answer['model_version']} (request {answer['request_id']})")
    for column in ("age", "female", "hhninc", "edlevel", "prediction", "P(visit)"):
        grid.add_column(column)
    for row, label, probs in zip(instances, answer["predictions"], answer.get("probabilities", []), strict=False):
        grid.add_row(
            f"{row['age']:.0f}",
            f"{row['female']:.0f}",
            f"{row['hhninc']:.2f}",
            row["edlevel"],
            str(label),
            f"{probs.get('1', 0):.3f}",
        )
    out.print(grid)


def run_demo(*, console: Console, out: Console, keep_running: bool, as_json: bool) -> int:
    root = repo_root()
    workdir = root / ".conveyor" / "demo"
    dataset = root / "events" / "data" / "german_health_1984_1988.csv"
    spec = root / "events" / "specs" / f"{MODEL}.yaml"
    files = split_by_year(dataset, workdir / "drops")
    tables = console if as_json else out  # with --json, stdout carries the one JSON document only
    console.rule("[bold]Conveyor demo: doctor visits (German health registry, 1984-1988)")
    console.print("Predict whether a person visits a doctor in a year (docvis > 0) from demographics.")
    # A data directory of its own: the demo starts empty and never touches `conveyor up`'s state.
    data_dir = Path(tempfile.mkdtemp(prefix="conveyor-demo-"))
    process, target, startup = _start_cloud(root, workdir, data_dir, console)
    summary: dict[str, Any] = {"startup_seconds": round(startup, 2), "drops": []}
    try:
        console.print(f"local cloud up in {startup:.1f} s: AWS endpoint {target.endpoint}, API {target.api_url}")
        target.s3.put_object(
            Bucket=target.output("ArtifactBucketName"), Key=layout.spec_key(MODEL), Body=spec.read_bytes()
        )
        console.print(f"spec uploaded: s3://{target.output('ArtifactBucketName')}/{layout.spec_key(MODEL)}")
        results = _tell_story(target, files, summary, console=console, tables=tables)
        if results is None:
            return ExitCode.FAILURE
        console.rule("Summary")
        _print_summary(tables, summary["drops"])
        summary["ok"] = _story_holds(results)
        if as_json:
            out.print_json(json.dumps(summary, default=str))
        if keep_running:
            console.print(f"the local cloud keeps running (pid {process.pid}); stop it with: kill {process.pid}")
    finally:
        if not keep_running:
            _stop_cloud(process, console)
            shutil.rmtree(data_dir, ignore_errors=True)
    return ExitCode.OK if summary["ok"] else ExitCode.FAILURE


def _tell_story(
    target: Target, files: dict[str, Path], summary: dict[str, Any], *, console: Console, tables: Console
) -> list[dict[str, Any]] | None:
    """Drop the five files in turn, showing each outcome; None if the first version cannot serve."""
    instances = sample_instances(files["1986"], 5)

    def drop(label: str, file: str) -> dict[str, Any]:
        result = drop_and_follow(target, files[file], MODEL, wait=True, timeout=900)
        summary["drops"].append(_drop_summary(label, result))
        return result

    console.rule("1. First data arrives: 1984-1985")
    dropped_at = time.monotonic()
    first = drop("1984-1985", "1984-1985")
    response = _predict(target, instances, "demo-request-1")
    summary["drop_to_first_prediction_seconds"] = round(time.monotonic() - dropped_at, 2)
    if response.status_code != 200:
        console.print(f"[bold red]prediction failed[/] {response.status_code}: {response.text}")
        return None
    _show_predictions(tables, instances, response.json())
    console.print(f"drop → first served prediction: [bold]{summary['drop_to_first_prediction_seconds']:.1f} s[/]")

    console.rule("2. A new year arrives: 1986")
    second = drop("1986", "1986")
    _show_predictions(tables, instances, _predict(target, instances, "demo-request-2").json())

    console.rule("3. A broken file arrives (target column missing, 'forty' in age)")
    third = drop("broken", "broken")
    _show_quarantine(console, target, third)
    response = _predict(target, instances, "demo-request-3")
    console.print(
        f"the champion still serves: HTTP {response.status_code}, model_version {response.json().get('model_version')}"
    )

    console.rule("4. A small late 1986 batch arrives: accepted and recorded, no retrain by policy")
    fourth = drop("1986 late", "1986-late")

    console.rule("5. 1988 arrives: incomes have risen since 1984-1985")
    fifth = drop("1988", "1988")
    _show_drift(tables, target, fifth)
    return [first, second, third, fourth, fifth]


def _story_holds(results: list[dict[str, Any]]) -> bool:
    """v1 serves; v2 serves or is rejected by its gates; the broken file is quarantined; the small
    sample is only recorded; 1988 is flagged for drift and retrains."""
    first, second, third, fourth, fifth = (result["exit_code"] for result in results)
    serving_or_rejected = {ExitCode.OK, ExitCode.REJECTED}
    return (
        first == ExitCode.OK
        and second in serving_or_rejected
        and third == ExitCode.DATA_REJECTED
        and fourth == ExitCode.RECORDED
        and fifth in serving_or_rejected
        and "hhninc" in ((results[4].get("drift") or {}).get("drifted_features") or [])
    )


def _show_quarantine(console: Console, target: Target, result: dict[str, Any]) -> None:
    validation = result.get("validation") or {}
    if not validation.get("report_key"):
        return
    bucket = target.output("DataBucketName")
    report = json.loads(target.s3.get_object(Bucket=bucket, Key=validation["report_key"])["Body"].read())
    console.print(f"quarantined with its report: s3://{bucket}/{validation['report_key']}")
    for check in report.get("checks", []):
        if not check.get("passed", True) and check.get("severity") == "error":
            console.print(f"  [red]✗[/] {check.get('name')}: {check.get('message')}")


def _print_summary(tables: Console, drops: list[dict[str, Any]]) -> None:
    grid = Table()
    for column in ("drop", "outcome", "drift", "version", "roc_auc", "champion roc_auc", "seconds"):
        grid.add_column(column)
    for d in drops:
        grid.add_row(
            d["drop"],
            d["outcome"],
            d["drift"],
            str(d.get("version") or "-"),
            d["roc_auc"],
            d["champion_roc_auc"],
            f"{d['seconds']:.1f}",
        )
    tables.print(grid)


def _stop_cloud(process: subprocess.Popen[bytes], console: Console) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
    console.print("local cloud stopped")


def _show_drift(out: Console, target: Target, result: dict[str, Any]) -> None:
    drift = result.get("drift") or {}
    if not drift.get("report_key"):
        return
    report = json.loads(
        target.s3.get_object(Bucket=target.output("DataBucketName"), Key=drift["report_key"])["Body"].read()
    )
    grid = Table(title=f"drift of this drop against v{drift.get('champion_version')}'s training profile")
    for column in ("feature", "reference mean", "this drop", "PSI", "KS", "JS", "p (Holm)", "drifted"):
        grid.add_column(column)
    for feature in report.get("features", []):
        values = feature.get("values") or {}
        grid.add_row(
            str(feature.get("name")),
            _number((feature.get("reference") or {}).get("mean")),
            _number((feature.get("current") or {}).get("mean")),
            _number(values.get("psi")),
            _number(values.get("ks")),
            _number(values.get("js")),
            _number(feature.get("pvalue_adjusted")),
            "[bold red]yes[/]" if feature.get("drifted") else "no",
        )
    out.print(grid)
    out.print(report.get("summary", ""))
    out.print(f"drift report: s3://{target.output('DataBucketName')}/{drift['report_key']}")


def _number(value: Any) -> str:
    if isinstance(value, int | float):
        return f"{value:.3g}"
    return "-" if value is None else str(value)


def _drop_summary(label: str, result: dict[str, Any]) -> dict[str, Any]:
    outcomes = {
        ExitCode.OK: "serving",
        ExitCode.FAILURE: "failed",
        ExitCode.DATA_REJECTED: "data rejected",
        ExitCode.REJECTED: "candidate rejected",
        ExitCode.TIMED_OUT: "timed out",
        ExitCode.RECORDED: "recorded",
        ExitCode.AWAITING_APPROVAL: "awaiting approval",
    }
    outcome = outcomes[result["exit_code"]]
    drift = (result.get("drift") or {}).get("verdict") or "-"
    evaluation = result.get("evaluation") or {}
    candidate = evaluation.get("candidate") or {}
    champion = evaluation.get("champion") or {}
    registration = result.get("registration") or {}
    return {
        "drop": label,
        "outcome": outcome,
        "drift": drift,
        "version": registration.get("version"),
        "roc_auc": f"{candidate['roc_auc']:.4f}" if "roc_auc" in candidate else "-",
        "champion_roc_auc": f"{champion['roc_auc']:.4f}" if "roc_auc" in champion else "-",
        "seconds": result.get("seconds", 0.0),
        "reason": evaluation.get("reason") or result.get("cause"),
    }
