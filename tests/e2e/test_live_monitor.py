"""The live monitor and delayed labels on the local cloud, through public faces only (HTTP, the CLI,
S3, CloudWatch): drifted live inputs give a drift verdict and Live* metrics within one monitor
run; labels for captured requests give the live metric an offline computation gives; the schedule
runs the monitor on the local clock.

The model here (``live-visits``) is the demo's, trained on 1984-1985 and promoted at once; its
live traffic is 1988's rows, where household income (hhninc) rose.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests
import yaml
from sklearn.metrics import accuracy_score, roc_auc_score

from conveyor.cli.target import Target
from tests.conftest import DATASET, DEMO_SPEC

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local-cloud")]
MODEL = "live-visits"
REQUESTS = 300
FEATURES = ("age", "hhninc", "educ", "female", "married", "kids", "outwork", "self", "edlevel")


@dataclass
class Cli:
    state: Path

    def json(self, *args: str, timeout: float = 600) -> tuple[int, dict[str, Any]]:
        done = subprocess.run(
            [sys.executable, "-m", "conveyor.cli.main", *args, "--state", str(self.state), "--json"],
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
        try:
            return done.returncode, json.loads(done.stdout)
        except json.JSONDecodeError:
            pytest.fail(f"`conveyor {' '.join(args)}` printed no JSON (exit {done.returncode}):\n{done.stderr[-3000:]}")


@pytest.fixture(scope="module")
def cli(cloud: Target, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    state = tmp_path_factory.mktemp("live") / "local.json"
    state.write_text(
        json.dumps(
            {
                "endpoint": cloud.endpoint,
                "api_url": cloud.api_url,
                "region": cloud.region,
                "outputs": cloud.outputs,
                "schedules_url": cloud.schedules_url,
            }
        )
    )
    return Cli(state)


@dataclass
class Served:
    rows: pd.DataFrame
    answers: list[dict[str, Any]]


@pytest.fixture(scope="module")
def served(cloud: Target, cli: Cli, tmp_path_factory: pytest.TempPathFactory) -> Served:
    """v1 (1984-1985) serving, then REQUESTS requests of 1988 rows, each answered 200."""
    spec = yaml.safe_load(DEMO_SPEC.read_text())
    spec["name"] = MODEL
    spec["gates"] = {"primary_metric": "roc_auc", "max_degradation": 1.0, "min_agreement": 0.0, "max_flip_rate": 1.0}
    spec["monitoring"] = {"schedule": "rate(5 minutes)", "window_seconds": 3600, "min_requests": 100}
    folder = tmp_path_factory.mktemp("live-data")
    (folder / "model.yaml").write_text(yaml.safe_dump(spec))
    frame = pd.read_csv(DATASET)
    train = folder / "german_health_1984_1985.csv"
    frame[frame["year"] <= 1985].to_csv(train, index=False)
    code, result = cli.json("drop", str(train), "--model", MODEL, "--spec", str(folder / "model.yaml"), timeout=900)
    assert code == 0, result
    rows = frame[frame["year"] == 1988].sample(REQUESTS, random_state=11).reset_index(drop=True)
    answers = []
    session = requests.Session()
    for row in rows.to_dict("records"):
        instance = {name: row[name] for name in FEATURES}
        instance["edlevel"] = str(instance["edlevel"])
        request_id = f"live-{uuid.uuid4()}"
        response = session.post(
            f"{cloud.api_url}/models/{MODEL}/predict",
            json={"instances": [instance]},
            headers={"X-Request-Id": request_id},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        answers.append(response.json())
    return Served(rows, answers)


def _monitor_when_captured(cli: Cli, expected: int) -> dict[str, Any]:
    """Run the monitor now until it sees every request (capture is written in batches, within seconds)."""
    deadline = time.monotonic() + 120
    while True:
        code, document = cli.json("monitor", MODEL, "--now")
        assert code == 0, document
        if document["requests"] >= expected or time.monotonic() > deadline:
            return document
        time.sleep(1)


def test_drifted_live_inputs_give_a_drift_verdict_and_live_metrics_in_cloudwatch(
    cloud: Target, cli: Cli, served: Served
) -> None:
    document = _monitor_when_captured(cli, REQUESTS)
    assert set(document) == {"model", "version", "window", "requests", "drift", "score_shift", "live_metrics"}
    assert (document["model"], document["version"], document["requests"]) == (MODEL, 1, REQUESTS)
    assert document["drift"]["verdict"] == "drift"
    assert "hhninc" in document["drift"]["drifted_features"]
    assert document["score_shift"]["n_current"] == REQUESTS
    cloudwatch = cloud.client("cloudwatch")
    listed = cloudwatch.list_metrics(Namespace="Conveyor", MetricName="LiveDriftedFeatures")["Metrics"]
    dimension_sets = {tuple(sorted((d["Name"], d["Value"]) for d in m["Dimensions"])) for m in listed}
    assert (("model", MODEL),) in dimension_sets
    assert (("model", MODEL), ("version", "1")) in dimension_sets
    now = time.time()
    data = cloudwatch.get_metric_data(
        MetricDataQueries=[
            {
                "Id": "drifted",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "Conveyor",
                        "MetricName": "LiveDriftedFeatures",
                        "Dimensions": [{"Name": "model", "Value": MODEL}],
                    },
                    "Period": 60,
                    "Stat": "Maximum",
                },
            }
        ],
        StartTime=now - 900,
        EndTime=now + 60,
    )["MetricDataResults"][0]
    assert max(data["Values"]) == float(len(document["drift"]["drifted_features"]))
    pages = cloudwatch.get_paginator("list_metrics").paginate(Namespace="Conveyor")
    names = {m["MetricName"] for page in pages for m in page["Metrics"]}
    assert {"LiveRequests", "LiveDomainClassifierAUC", "LiveScoreShift", "LiveLabelledRequests"} <= names


def test_labels_for_captured_requests_give_the_offline_metric(
    cloud: Target, cli: Cli, served: Served, tmp_path: Path
) -> None:
    _monitor_when_captured(cli, REQUESTS)
    labelled = 200
    labels = pd.DataFrame(
        {
            "request_id": [a["request_id"] for a in served.answers[:labelled]] + ["never-served"],
            "docvis": [*served.rows["docvis"].head(labelled).tolist(), 3],
        }
    )
    path = tmp_path / "labels.csv"
    labels.to_csv(path, index=False)
    code, joined = cli.json("labels", str(path), "--model", MODEL)
    assert code == 0, joined
    assert (joined["labels"], joined["matched"], joined["unknown_request_ids"]) == (labelled + 1, labelled, 1)
    code, document = cli.json("monitor", MODEL, "--now")
    assert code == 0, document
    live = document["live_metrics"]
    truth = (served.rows["docvis"].head(labelled) > 0).astype(int)
    scores = [a["probabilities"][0]["1"] for a in served.answers[:labelled]]
    predicted = [int(a["predictions"][0]) for a in served.answers[:labelled]]
    assert live["labelled_requests"] == labelled
    assert live["roc_auc"] == pytest.approx(roc_auc_score(truth, scores), abs=1e-6)
    assert live["accuracy"] == pytest.approx(accuracy_score(truth, predicted), abs=1e-6)


def test_a_malformed_label_file_is_quarantined(cli: Cli, served: Served, tmp_path: Path) -> None:
    path = tmp_path / "bad-labels.csv"
    pd.DataFrame({"request_id": ["x"], "visits": [1]}).to_csv(path, index=False)
    code, outcome = cli.json("labels", str(path), "--model", MODEL)
    assert code == 2 and outcome["verdict"] == "quarantined" and "docvis" in outcome["reason"]


def test_the_schedule_runs_the_monitor_on_the_local_clock(cloud: Target, cli: Cli, served: Served) -> None:
    bucket = cloud.output("CaptureBucketName")

    def reports() -> set[str]:
        listed = cloud.s3.list_objects_v2(Bucket=bucket, Prefix=f"{MODEL}/monitor/")
        return {o["Key"] for o in listed.get("Contents", [])}

    before = reports()
    code, advanced = cli.json("monitor", MODEL, "--advance", "600", timeout=900)
    assert code == 0, advanced
    assert any("MonitorSchedule" in f["rule"] for f in advanced["fired"]), advanced
    new = reports() - before
    assert new, "the tick ran the model's monitor (its 5-minute schedule was due on the advanced clock)"
