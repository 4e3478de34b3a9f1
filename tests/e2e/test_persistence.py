"""The local cloud keeps its state across restarts, through its public faces: `conveyor up` in its own
process (its own --data-dir and --state), the CLI, S3 and HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests
import yaml
from typer.testing import CliRunner

from conveyor.cli.app import app
from conveyor.cli.target import Target
from tests.conftest import DATASET, DEMO_ROW, DEMO_SPEC, ROOT
from tests.e2e.conftest import wait_until

pytestmark = [pytest.mark.e2e]
MODEL = "persisted"


class Cloud:
    """One `conveyor up` process on a data directory; start it again on the same directory."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.data = workdir / "data"
        self.state = workdir / "local.json"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> Target:
        self.starts += 1
        log = (self.workdir / f"up-{self.starts}.log").open("wb")
        command = [sys.executable, "-m", "conveyor.cli.main", "up", "--state", str(self.state)]
        self.process = subprocess.Popen(
            [*command, "--data-dir", str(self.data)],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "CONVEYOR_MODEL_DIR": str(self.workdir / f"models-{self.starts}")},
        )
        wait_until(lambda: self.state.exists() or self.process.poll() is not None, timeout=240, what="start")  # type: ignore[union-attr]
        assert self.process.poll() is None, self.log()
        return Target.load(self.state)

    def log(self) -> str:
        return (self.workdir / f"up-{self.starts}.log").read_text()[-3000:]

    def stop(self, sig: int = signal.SIGTERM) -> None:
        assert self.process is not None
        self.process.send_signal(sig)
        self.process.wait(timeout=60)
        self.state.unlink(missing_ok=True)  # a kill -9 leaves it behind

    def cli(self, *args: str) -> tuple[int, str]:
        result = CliRunner().invoke(app, [*args, "--state", str(self.state)])
        return result.exit_code, result.stdout


@pytest.fixture
def cloud_dir(tmp_path: Path) -> Iterator[Cloud]:
    cloud = Cloud(tmp_path)
    yield cloud
    if cloud.process is not None and cloud.process.poll() is None:
        cloud.process.kill()


def _spec(tmp_path: Path) -> Path:
    spec = yaml.safe_load(DEMO_SPEC.read_text())
    spec["name"] = MODEL
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _years(tmp_path: Path, years: list[int]) -> Path:
    frame = pd.read_csv(DATASET)
    path = tmp_path / f"years-{'-'.join(map(str, years))}.csv"
    frame[frame["year"].isin(years)].to_csv(path, index=False)
    return path


def _predict(target: Target, request_id: str) -> dict[str, Any]:
    response = requests.post(
        f"{target.api_url}/models/{MODEL}/predict",
        json={"instances": [DEMO_ROW]},
        headers={"X-Request-Id": request_id},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def _json(cloud: Cloud, *args: str) -> Any:
    code, stdout = cloud.cli(*args, "--json")
    assert code == 0, stdout
    return json.loads(stdout)


def _captured_request_ids(target: Target) -> set[str]:
    bucket = target.output("CaptureBucketName")
    found = set()
    for page in target.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{MODEL}/capture/"):
        for item in page.get("Contents", []):
            for line in target.s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().splitlines():
                found.add(json.loads(line).get("request_id"))
    return found


def test_sigterm_then_start_again_keeps_everything(cloud_dir: Cloud, tmp_path: Path) -> None:
    target = cloud_dir.start()
    code, out = cloud_dir.cli(
        "drop", str(_years(tmp_path, [1984, 1985])), "--model", MODEL, "--spec", str(_spec(tmp_path))
    )
    assert code == 0, out
    before = _predict(target, "before-restart")
    status = _json(cloud_dir, "status", MODEL)
    models = _json(cloud_dir, "models", MODEL)
    lineage = _json(cloud_dir, "lineage", MODEL, "1")
    cloud_dir.stop(signal.SIGTERM)

    target = cloud_dir.start()
    assert _json(cloud_dir, "status", MODEL) == status
    assert _json(cloud_dir, "models", MODEL) == models
    assert _json(cloud_dir, "lineage", MODEL, "1") == lineage
    after = _predict(target, "after-restart")
    assert (after["model_version"], after["predictions"], after.get("probabilities")) == (
        before["model_version"],
        before["predictions"],
        before.get("probabilities"),
    )
    assert "before-restart" in _captured_request_ids(target)  # the capture flushed at SIGTERM was kept
    code, out = cloud_dir.cli("drop", str(_years(tmp_path, [1986])), "--model", MODEL, "--json")
    assert json.loads(out)["registration"]["version"] == 2, out
    cloud_dir.stop(signal.SIGTERM)


def _state_reached(target: Target, arn: str) -> str | None:
    from botocore.exceptions import ClientError

    try:
        events = target.sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    except ClientError:  # the dispatcher has not started it yet
        return None
    entered = [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]
    return entered[-1] if entered else None


def test_kill_9_mid_pipeline_then_retry_finishes_it(cloud_dir: Cloud, tmp_path: Path) -> None:
    target = cloud_dir.start()
    code, out = cloud_dir.cli(
        "drop", str(_years(tmp_path, [1984, 1985, 1986, 1987, 1988])), "--model", MODEL,
        "--spec", str(_spec(tmp_path)), "--no-wait", "--json",
    )  # fmt: skip
    assert code == 0, out
    arn = json.loads(out)["execution_arn"]
    name = arn.rsplit(":", 1)[-1]
    # Past validation, and a snapshot written since: kill -9 while the pipeline runs.
    wait_until(
        lambda: _state_reached(target, arn) not in (None, "Run kind?", "Validate", "Data accepted?"), timeout=120
    )
    pointer = cloud_dir.data / "current"
    seen = pointer.read_text() if pointer.exists() else ""
    wait_until(lambda: pointer.exists() and pointer.read_text() != seen, timeout=30, interval=0.05, what="a snapshot")
    assert target.sfn.describe_execution(executionArn=arn)["status"] == "RUNNING", "the pipeline ended too soon"
    cloud_dir.stop(signal.SIGKILL)

    target = cloud_dir.start()
    status = _json(cloud_dir, "status", MODEL)
    (interrupted,) = [e for e in status["executions"] if e["name"] == name]
    assert interrupted["interrupted"] is True and "conveyor retry" in interrupted["cause"]
    code, out = cloud_dir.cli("retry", name, "--json")
    assert code == 0, out
    assert json.loads(out)["resumed_at"] not in (None, "Validate")
    code, out = cloud_dir.cli("retry", name)
    assert code == 2, "an execution is resumed once"
    # S3 and DynamoDB agree: an artifact for every registered version, and a version for every artifact.
    from conveyor.registry import Registry

    versions = Registry(target.registry_table()).versions(MODEL)
    artifacts = target.s3.list_objects_v2(Bucket=target.output("ArtifactBucketName"), Prefix=f"{MODEL}/models/")
    stored = {item["Key"].rsplit("sha256-", 1)[-1].removesuffix(".onnx") for item in artifacts.get("Contents", [])}
    assert versions and stored == {v.sha256 for v in versions}
    assert _json(cloud_dir, "status", MODEL)["models"][0]["serving"] == 1
    cloud_dir.stop(signal.SIGTERM)
