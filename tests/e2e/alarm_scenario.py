"""A served model whose latency alarm breaches, and what watches it: shared by the alarm e2e test and the
alarm-to-action benchmark. Public faces only: S3, the CLI, HTTP, SNS and EventBridge subscriptions,
CloudWatch's DescribeAlarms.

v1 is trained on 1984-1985 with the demo's monitoring defaults (p99 latency above 250 ms alarms). v2 is
trained on 1984-1986 with a latency alarm set below any real latency (``max_latency_p99_ms: 0.001``,
one 10-second period) and ``on_alarm: {latency: rollback}``. Every request v2 answers is a genuine
breach of that alarm: its measured p99 is above the threshold. No fault is injected in the serving code.
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


def spec(model: str, *, strict: bool) -> bytes:
    document = yaml.safe_load(DEMO_SPEC.read_text())
    document["name"] = model
    document["gates"] = {
        "primary_metric": "roc_auc",
        "max_degradation": 1.0,
        "min_agreement": 0.0,
        "max_flip_rate": 1.0,
    }
    document["retrain"] = {"on_drift": True, "min_new_rows": 1, "schedule": None, "batch_window_seconds": 1}
    document["deployment"] = {"strategy": "all_at_once", "approval": "auto"}
    if strict:
        document["monitoring"] = {
            "max_latency_p99_ms": 0.001,
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
    """Prediction requests over HTTP from a thread; keeps (sent, status, model_version) of each."""

    def __init__(self, url: str, interval: float = 0.05) -> None:
        self.url, self.interval = url, interval
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
        n = 0
        while not self._stop.is_set():
            n += 1
            sent = time.time()
            try:
                response = session.post(
                    self.url, json={"instances": [DEMO_ROW]}, headers={"X-Request-Id": f"alarm-{n}"}, timeout=30
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
    """v1 (lenient alarms) serving, then v2 (the strict latency alarm, rollback on alarm) serving."""
    bucket = cloud.output("ArtifactBucketName")
    for version, (strict, chosen) in enumerate(((False, [1984, 1985]), (True, [1986])), start=1):
        cloud.s3.put_object(Bucket=bucket, Key=f"{model}/spec.yaml", Body=spec(model, strict=strict))
        code, result = cli.json("drop", str(years(directory, chosen)), "--model", model)
        assert code == 0, result
        assert result["registration"]["version"] == version, result
    assert serving_version(cloud, model) == 2
