"""A served model whose latency alarm breaches, and what watches it: shared by the alarm e2e test and the
alarm-to-action benchmark. Public faces only: S3, the CLI, HTTP, SNS and EventBridge subscriptions,
CloudWatch's DescribeAlarms.

v1 is a small fast model (logistic regression, trained on 1984-1985) with the demo's monitoring defaults
(p99 latency above 250 ms alarms). v2 is a far larger model (a random forest of 400 fully grown trees,
about 100 MB of ONNX, trained on 1984-1986) whose gates are lenient enough to let it through (latency
ceilings and ratio, model size, degradation, slices), with a latency alarm of ``LATENCY_THRESHOLD_MS``
(one 10-second period) and ``on_alarm: {latency: rollback}``. The traffic sends ``TRAFFIC_ROWS`` distinct
rows per request, where the forest's cost shows: measured offline with onnxruntime on one thread, 100
rows take about 0.02 ms with v1 and 13 ms with v2 (a single row: 0.01 ms and 0.03 ms, below the serving
overhead). On the local cloud v1 answers 300 rows in a few ms and v2 in tens of ms (its first request also
loads the model), so the threshold lies between the two: v2 breaches it genuinely, by being slow, and v1
stays well under it. No fault is injected in the serving code.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import requests
import yaml

from conveyor.cli.target import Target
from tests.conftest import DATASET, DEMO_ROW, DEMO_SPEC

PERIOD_SECONDS = 10
LATENCY_THRESHOLD_MS = 15.0
TRAFFIC_ROWS = 300
FAST_ESTIMATOR: dict[str, Any] = {"type": "logistic_regression"}
SLOW_ESTIMATOR: dict[str, Any] = {
    "type": "random_forest",
    "params": {"n_estimators": 400, "max_depth": None, "min_samples_leaf": 1},
}


def traffic_rows(n: int) -> list[dict[str, Any]]:
    """``n`` distinct in-range rows (the demo row varied), so each row takes its own paths through the trees."""
    return [
        {
            **DEMO_ROW,
            "age": 25 + i % 40,
            "hhninc": round(0.5 + (i * 7) % 39, 1),
            "educ": 7 + (i * 5) % 12,
            "female": i % 2,
            "married": (i // 2) % 2,
            "kids": (i // 4) % 2,
            "edlevel": str(1 + i % 4),
        }
        for i in range(n)
    ]


def spec(model: str, *, slow: bool) -> bytes:
    """v1 (``slow=False``): the fast model, the demo's monitoring. v2: the far larger model, lenient gates
    (the test's spec only), the latency alarm between the two versions' latencies, rollback on it."""
    document = yaml.safe_load(DEMO_SPEC.read_text())
    document["name"] = model
    document["estimator"] = SLOW_ESTIMATOR if slow else FAST_ESTIMATOR
    document["gates"] = {
        "primary_metric": "roc_auc",
        "max_degradation": 1.0,
        "min_agreement": 0.0,
        "max_flip_rate": 1.0,
        "max_slice_gap": 1.0,
        "max_importance_share": 1.0,
        "max_p99_ms_single": 10_000.0,
        "max_p99_ms_batch": 100_000.0,
        "max_latency_ratio": 1_000_000.0,
        "max_model_mb": 2_000.0,
    }
    document["retrain"] = {"on_drift": True, "min_new_rows": 1, "schedule": None, "batch_window_seconds": 1}
    document["deployment"] = {"strategy": "all_at_once", "approval": "auto"}
    if slow:
        document["monitoring"] = {
            "max_latency_p99_ms": LATENCY_THRESHOLD_MS,
            "period_seconds": PERIOD_SECONDS,
            "evaluation_periods": 1,
            "datapoints_to_alarm": 1,
            "on_alarm": {"latency": "rollback"},
        }
    return yaml.safe_dump(document).encode()


def years(directory: Path, chosen: list[int]) -> Path:
    frame = pd.read_csv(DATASET)
    path = directory / f"german_health_{'_'.join(map(str, chosen))}.csv"
    frame[frame["year"].isin(chosen)].to_csv(path, index=False)
    return path


@dataclass
class Cli:
    state: Path

    def json(self, *args: str, timeout: float = 600) -> tuple[int, Any]:
        done = subprocess.run(
            [sys.executable, "-m", "conveyor.cli.main", *args, "--state", str(self.state), "--json"],
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
        try:
            return done.returncode, json.loads(done.stdout)
        except json.JSONDecodeError as error:
            raise AssertionError(f"`conveyor {' '.join(args)}` printed no JSON:\n{done.stderr[-3000:]}") from error

    @classmethod
    def for_cloud(cls, cloud: Target, directory: Path) -> Cli:
        state = directory / "local.json"
        state.write_text(
            json.dumps(
                {"endpoint": cloud.endpoint, "api_url": cloud.api_url, "region": cloud.region, "outputs": cloud.outputs}
            )
        )
        return cls(state)


@dataclass
class Watchers:
    """Queues subscribed to the alerts topic and fed by EventBridge rules (registry events of the model,
    and the state changes of its alarms); everything read is kept."""

    sqs: Any
    queues: dict[str, str]
    seen: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def create(cls, cloud: Target, model: str) -> Watchers:
        sqs, sns, events = cloud.client("sqs"), cloud.client("sns"), cloud.client("events")
        queues = {}
        for kind in ("alerts", "registry", "alarms"):
            name = f"{model}-{kind}-watch"
            url = sqs.create_queue(QueueName=name)["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            queues[kind] = url
            if kind == "alerts":
                sns.subscribe(TopicArn=cloud.output("AlertsTopicArn"), Protocol="sqs", Endpoint=arn)
                continue
            pattern: dict[str, Any] = {"source": ["conveyor.registry"], "detail": {"model": [model]}}
            if kind == "alarms":
                prefix = f"{cloud.output('StackName')}-{model}-"
                pattern = {"source": ["aws.cloudwatch"], "detail": {"alarmName": [{"prefix": prefix}]}}
            events.put_rule(Name=name, EventPattern=json.dumps(pattern))
            events.put_targets(Rule=name, Targets=[{"Id": "q", "Arn": arn}])
        return cls(sqs, queues, {kind: [] for kind in queues})

    def drain(self) -> None:
        for kind, url in self.queues.items():
            while True:
                messages = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
                batch = messages.get("Messages", [])
                if not batch:
                    break
                for message in batch:
                    body = json.loads(message["Body"])
                    if kind == "alerts":  # an SNS notification: its subject and message
                        body = {"Subject": body.get("Subject"), "Message": body.get("Message", "")}
                    self.seen[kind].append(body)
                    self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


class Traffic:
    """Prediction requests of ``rows`` rows over HTTP from a thread; keeps (sent, status, model_version) of
    each."""

    def __init__(self, url: str, interval: float = 0.05, rows: int = TRAFFIC_ROWS) -> None:
        self.url, self.interval, self.rows = url, interval, rows
        self.answers: list[tuple[float, int, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        session = requests.Session()
        instances = traffic_rows(self.rows)
        n = 0
        while not self._stop.is_set():
            n += 1
            sent = time.time()
            try:
                response = session.post(
                    self.url,
                    json={"instances": instances},
                    headers={"X-Request-Id": f"alarm-{n}"},
                    timeout=30,
                )
                self.answers.append((sent, response.status_code, response.json().get("model_version")))
            except (requests.RequestException, ValueError):
                self.answers.append((sent, 0, None))
            self._stop.wait(self.interval)


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 120, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


def serving_version(cloud: Target, model: str) -> int | None:
    response = requests.get(f"{cloud.api_url}/models/{model}", timeout=10)
    if response.status_code != 200:
        return None
    return int(response.json()["champion"]["version"])


def deploy_two_versions(cloud: Target, cli: Cli, model: str, directory: Path) -> None:
    """v1 (the fast model, lenient alarms) serving, then v2 (the slow model, its latency alarm between the two,
    rollback on alarm) serving."""
    bucket = cloud.output("ArtifactBucketName")
    for version, (slow, chosen) in enumerate(((False, [1984, 1985]), (True, [1986])), start=1):
        cloud.s3.put_object(Bucket=bucket, Key=f"{model}/spec.yaml", Body=spec(model, slow=slow))
        code, result = cli.json("drop", str(years(directory, chosen)), "--model", model)
        assert code == 0, result
        assert result["registration"]["version"] == version, result
    assert serving_version(cloud, model) == 2
