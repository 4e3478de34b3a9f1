"""Deployments on the local cloud, through public faces only (S3, the CLI, HTTP, SNS and EventBridge
subscriptions): manual approval, a canary whose challenger fails and is rolled back automatically while
the champion keeps answering, and a rejection.

The model here (``canary-visits``) is the demo's, with a canary strategy, manual approval and gates
loose enough that every candidate is registered: what is tested is the deployment, not the gates.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests
import yaml

from conveyor.cli.target import Target
from conveyor.registry import traffic_share
from tests.conftest import DATASET, DEMO_ROW, DEMO_SPEC

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local-cloud")]
MODEL = "canary-visits"
WEIGHT = 0.5
BAKE_SECONDS = 6
ROUTING_CACHE_SECONDS = (
    5  # infra.constants.ROUTING_CACHE_SECONDS: how long the predict function may serve a stale split
)
ROW = DEMO_ROW


def _spec() -> bytes:
    spec = yaml.safe_load(DEMO_SPEC.read_text())
    spec["name"] = MODEL
    spec["gates"] = {"primary_metric": "roc_auc", "max_degradation": 1.0, "min_agreement": 0.0, "max_flip_rate": 1.0}
    spec["retrain"] = {"on_drift": True, "min_new_rows": 1, "schedule": None, "batch_window_seconds": 1}
    spec["deployment"] = {
        "strategy": "canary",
        "approval": "manual",
        "approval_timeout_seconds": 900,
        "canary": {"weight": WEIGHT, "bake_seconds": BAKE_SECONDS},
        # Extensions let a bake on a busy machine (fewer requests per second) gather its minimum.
        "bake": {"min_requests": 20, "max_error_rate": 0.05, "max_p99_latency_ms": 2000, "max_extensions": 10},
    }
    return yaml.safe_dump(spec).encode()


@dataclass
class Cli:
    state: Path

    def run(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "conveyor.cli.main", *args, "--state", str(self.state)],
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )

    def json(self, *args: str, timeout: float = 600) -> tuple[int, dict[str, Any]]:
        done = self.run(*args, "--json", timeout=timeout)
        try:
            return done.returncode, json.loads(done.stdout)
        except json.JSONDecodeError:
            pytest.fail(f"`conveyor {' '.join(args)}` printed no JSON (exit {done.returncode}):\n{done.stderr[-3000:]}")


@dataclass
class Watchers:
    """An SQS queue subscribed to the alerts topic, and one fed by an EventBridge rule on the registry's events."""

    sqs: Any
    alerts: str
    events: str

    def _drain(self, queue: str, seconds: float, until: Any = None) -> list[dict[str, Any]]:
        """What arrives within ``seconds``; with ``until``, stop as soon as ``until(found)`` holds."""
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not (until is not None and until(found)):
            messages = self.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            for message in messages.get("Messages", []):
                found.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        return found

    def alerts_seen(self, seconds: float = 3, until: Any = None) -> list[dict[str, Any]]:
        return self._drain(self.alerts, seconds, until)

    def events_seen(self, seconds: float = 3, until: Any = None) -> list[dict[str, Any]]:
        return self._drain(self.events, seconds, until)

    def events_named(self, *names: str, seconds: float = 120) -> set[str]:
        """Names of the events that arrive until every one of ``names`` did (or ``seconds`` passed)."""
        seen = self.events_seen(seconds, until=lambda found: set(names) <= {e["detail-type"] for e in found})
        return {e["detail-type"] for e in seen}


@pytest.fixture(scope="module")
def cli(cloud: Target, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    state = tmp_path_factory.mktemp("deployments") / "local.json"
    state.write_text(
        json.dumps(
            {"endpoint": cloud.endpoint, "api_url": cloud.api_url, "region": cloud.region, "outputs": cloud.outputs}
        )
    )
    return Cli(state)


@pytest.fixture(scope="module")
def watchers(cloud: Target) -> Watchers:
    sqs, sns, events = cloud.client("sqs"), cloud.client("sns"), cloud.client("events")

    def queue(name: str) -> tuple[str, str]:
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        return url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    alerts_url, alerts_arn = queue("deployment-alerts")
    sns.subscribe(TopicArn=cloud.output("AlertsTopicArn"), Protocol="sqs", Endpoint=alerts_arn)
    events_url, events_arn = queue("deployment-events")
    pattern = {"source": ["conveyor.registry"], "detail": {"model": [MODEL]}}
    events.put_rule(Name="deployment-events", EventPattern=json.dumps(pattern))
    events.put_targets(Rule="deployment-events", Targets=[{"Id": "q", "Arn": events_arn}])
    return Watchers(sqs, alerts_url, events_url)


def _years(tmp_path: Path, years: list[int]) -> Path:
    frame = pd.read_csv(DATASET)
    path = tmp_path / f"german_health_{'_'.join(map(str, years))}.csv"
    frame[frame["year"].isin(years)].to_csv(path, index=False)
    return path


def _drop_awaiting_approval(cli: Cli, data: Path) -> dict[str, Any]:
    code, result = cli.json("drop", str(data), "--model", MODEL)
    assert code == 6, result  # exit 6: the candidate awaits approval
    assert result["status"] == "AWAITING_APPROVAL" and result["final_state"] == "Await approval"
    assert result["registration"]["status"] == "candidate"
    return result


def _status(cli: Cli) -> dict[str, Any]:
    code, status = cli.json("status", MODEL)
    assert code == 0, status
    (entry,) = status["models"]
    return dict(entry)


def _serving(cloud: Target) -> dict[str, Any]:
    response = requests.get(f"{cloud.api_url}/models/{MODEL}", timeout=10)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(scope="module")
def champion(cloud: Target, cli: Cli, watchers: Watchers, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """v1 approved by a reviewer and serving (the first version: no champion to canary against)."""
    cloud.s3.put_object(Bucket=cloud.output("ArtifactBucketName"), Key=f"{MODEL}/spec.yaml", Body=_spec())
    dropped = _drop_awaiting_approval(cli, _years(tmp_path_factory.mktemp("v1"), [1984, 1985]))
    assert dropped["registration"]["version"] == 1
    watchers.alerts_seen(1)  # the request for approval; checked in its own test
    entry = _status(cli)
    assert entry["serving"] is None and [d["state"] for d in entry["deployments"]] == ["awaiting_approval"]
    code, approved = cli.json("approve", MODEL, "1", "--by", "e2e-reviewer", "--wait", timeout=300)
    assert code == 0, approved
    assert approved["deployment"]["status"] == "SUCCEEDED" and approved["deployment"]["final_state"] == "Serving"
    assert "Start phase" not in approved["deployment"]["stages"]  # promoted at once
    assert _serving(cloud)["champion"]["version"] == 1
    return {"version": 1}


def test_manual_approval_waits_for_a_reviewer_then_promotes(
    cloud: Target, cli: Cli, watchers: Watchers, champion: dict[str, Any]
) -> None:
    entry = _status(cli)
    assert entry["serving"] == 1 and entry["deployments"] == [] and entry["challenger"] is None
    assert [v["status"] for v in entry["versions"]] == ["production"]
    names = watchers.events_named("ModelRegistered", "ModelApproved", "ModelPromoted")
    assert {"ModelRegistered", "ModelApproved", "ModelPromoted"} <= names
    # Answering again is an error that says so, and so is an unknown version.
    again = cli.run("approve", MODEL, "1")
    assert again.returncode == 2 and "waiting for approval" in again.stderr
    unknown = cli.run("approve", MODEL, "99")
    assert unknown.returncode == 2 and "no version 99" in unknown.stderr


@dataclass
class Answer:
    request_id: str
    sent_at: float
    status: int
    version: int | None
    error: str | None
    fallback_from: int | None = None  # the body's fallback_from: the version the champion answered for
    fallback_header: str | None = None  # X-Conveyor-Fallback


class Traffic:
    """Sends prediction requests over HTTP from a thread, each with its own request id (the routing key)."""

    def __init__(self, url: str, interval: float = 0.04, prefix: str = "canary") -> None:
        self._url, self._interval, self._prefix = url, interval, prefix
        self.answers: list[Answer] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._session = requests.Session()

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            request_id = f"{self._prefix}-{n}"
            sent = time.time()
            try:
                response = self._session.post(
                    self._url, json={"instances": [ROW]}, headers={"X-Request-Id": request_id}, timeout=30
                )
                body = response.json()
                answer = Answer(
                    request_id,
                    sent,
                    response.status_code,
                    body.get("model_version"),
                    (body.get("error") or {}).get("code"),
                    body.get("fallback_from") if body.get("fallback") == "champion" else None,
                    response.headers.get("X-Conveyor-Fallback"),
                )
            except (requests.RequestException, ValueError) as error:
                answer = Answer(request_id, sent, 0, None, repr(error))
            self.answers.append(answer)
            time.sleep(self._interval)


def _wait_for(condition: Any, what: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {timeout} s")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def broken_canary(
    cloud: Target, cli: Cli, watchers: Watchers, champion: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """v2 registered and awaiting approval, then its ONNX overwritten in the artifact bucket (its sha256 check
    fails: the champion answers every request routed to it), approved, canaried under continuous traffic,
    rolled back."""
    dropped = _drop_awaiting_approval(cli, _years(tmp_path_factory.mktemp("v2"), [1986]))
    version = dropped["registration"]["version"]
    assert version == 2
    evidence = json.loads(
        cloud.s3.get_object(Bucket=cloud.output("ArtifactBucketName"), Key=f"{MODEL}/versions/{version}/evidence.json")[
            "Body"
        ].read()
    )
    assert evidence["sha256"] != _serving(cloud)["champion"]["sha256"]  # its own artifact: the champion's is intact
    cloud.s3.put_object(
        Bucket=cloud.output("ArtifactBucketName"), Key=evidence["artifact_key"], Body=b"not an onnx model"
    )
    watchers.alerts_seen(1)
    watchers.events_seen(1)
    with Traffic(f"{cloud.api_url}/models/{MODEL}/predict", prefix="broken-canary") as traffic:
        _wait_for(lambda: len(traffic.answers) >= 10, "10 answers before the approval")
        approved_at = time.time()
        code, approved = cli.json("approve", MODEL, str(version), "--wait", timeout=300)
        ended_at = time.time()
        # Every cached copy of the routing record has expired: answers keep coming after that.
        settled_from = ended_at + ROUTING_CACHE_SECONDS + 0.5
        _wait_for(lambda: sum(a.sent_at > settled_from for a in traffic.answers) >= 10, "10 answers after the rollback")
    yield {
        "version": version,
        "code": code,
        "approved": approved,
        "approved_at": approved_at,
        "ended_at": ended_at,
        "answers": traffic.answers,
    }


def test_a_failing_canary_is_rolled_back_automatically(broken_canary: dict[str, Any]) -> None:
    assert broken_canary["code"] == 3, broken_canary["approved"]  # exit 3: rolled back, the champion serves
    deployment = broken_canary["approved"]["deployment"]
    assert deployment["status"] == "FAILED" and deployment["error"] == "RolledBack"
    assert deployment["final_state"] == "Rolled back"
    assert "v2 rolled back during its canary at 50%" in deployment["cause"]
    assert "error rate" in deployment["cause"] and "v1 keeps serving all traffic" in deployment["cause"]
    stages = deployment["stages"]
    assert stages.index("Start phase") < stages.index("Bake") < stages.index("Check bake") < stages.index("Roll back")
    # Decided at a check of the canary (the first, or an extension), well before the approval could have expired.
    assert broken_canary["ended_at"] - broken_canary["approved_at"] < 900


def test_the_champion_answers_throughout_and_afterwards_takes_all_traffic(
    cloud: Target, cli: Cli, broken_canary: dict[str, Any]
) -> None:
    answers: list[Answer] = broken_canary["answers"]
    assert len(answers) > 100
    # No client saw the failed experiment: every request got a 200 from v1, before, during and after.
    assert all(a.status == 200 and a.version == 1 for a in answers), [
        a for a in answers if a.status != 200 or a.version != 1
    ][:5]
    # Requests are split by a stable hash of their request id: those on the challenger's side while the
    # canary ran were answered by the champion for v2, and say so (body and header); no other did.
    fallbacks = [a for a in answers if a.fallback_from is not None]
    assert fallbacks, "the broken challenger never received traffic: the canary did not run"
    assert all(a.fallback_from == 2 and a.fallback_header == "2" for a in fallbacks), fallbacks[:5]
    assert all(a.fallback_header is None for a in answers if a.fallback_from is None)
    assert all(traffic_share(a.request_id) < WEIGHT for a in fallbacks)
    first, last = min(a.sent_at for a in fallbacks), max(a.sent_at for a in fallbacks)
    assert broken_canary["approved_at"] <= first and last <= broken_canary["ended_at"] + ROUTING_CACHE_SECONDS
    on_trial = [a for a in answers if first <= a.sent_at <= last and traffic_share(a.request_id) < WEIGHT]
    assert all(a.fallback_from == 2 for a in on_trial), [a for a in on_trial if a.fallback_from is None][:5]
    print(  # the numbers the README quotes (pytest -s shows them)
        f"canary: {len(answers)} requests, all 200 from v1, {len(fallbacks)} of them answered for the broken "
        f"challenger (fallback); approve -> rolled back in {broken_canary['ended_at'] - broken_canary['approved_at']:.1f} s; "
        f"last fallback {last - broken_canary['ended_at']:+.1f} s after the rollback; "
        f"bake checks: {broken_canary['approved']['deployment']['stages'].count('Check bake')}"
    )
    # Once the rollback reached every cached routing record, all traffic is the champion's own.
    settled = [a for a in answers if a.sent_at > broken_canary["ended_at"] + ROUTING_CACHE_SECONDS + 0.5]
    assert len(settled) >= 10 and all(a.status == 200 and a.version == 1 and a.fallback_from is None for a in settled)
    state = _serving(cloud)
    assert state["champion"]["version"] == 1 and state["challenger"] is None and state["traffic"] == {"1": 1.0}
    # The breaker of v2 opened in the container that served the canary (GET /models/{model} shows it).
    assert state["breakers"]["2"]["opened_at"] is not None, state["breakers"]
    entry = _status(cli)
    versions = {v["version"]: v for v in entry["versions"]}
    assert versions[2]["status"] == "rejected" and versions[2]["decision"].startswith("rolled back:")
    assert entry["challenger"] is None and entry["deployments"] == []
    assert "2" in entry["breakers"]


def test_the_capture_holds_both_the_failure_and_the_fallback_answer(
    cloud: Target, broken_canary: dict[str, Any]
) -> None:
    fallbacks = {a.request_id for a in broken_canary["answers"] if a.fallback_from is not None}
    records = _captures(cloud, fallbacks)
    by_request: dict[str, list[tuple[int, str, int, str | None, Any]]] = {}
    for r in records:
        entry = (r["model_version"], r["role"], r["status"], r["error_code"], r.get("fallback_for"))
        by_request.setdefault(r["request_id"], []).append(entry)
    for request_id in fallbacks:
        failure, answer = sorted(by_request[request_id], key=lambda e: e[0], reverse=True)
        assert failure[:3] == (2, "challenger", 503) and failure[3] in {"model_unavailable", "breaker_open"}
        assert answer == (1, "champion", 200, None, 2)
    codes = [e[3] for entries in by_request.values() for e in entries if e[0] == 2]
    # v2 was tried (and failed its sha256 check) until its breaker opened; then it was not tried at all.
    assert codes.count("model_unavailable") >= 1 and codes.count("breaker_open") >= 1, codes


def _captures(cloud: Target, request_ids: set[str], timeout: float = 120) -> list[dict[str, Any]]:
    """Capture records of these requests, once the batch writer (about 1 s) has written them all."""
    bucket = cloud.output("CaptureBucketName")
    deadline = time.monotonic() + timeout
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        found = []
        for page in cloud.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{MODEL}/capture/"):
            for item in page.get("Contents", []):
                body = cloud.s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode()
                found.extend(r for r in map(json.loads, body.splitlines()) if r["request_id"] in request_ids)
        if sum(1 for r in found if r["model_version"] == 1) >= len(request_ids):
            return found
        time.sleep(0.3)
    pytest.fail(f"captures of {len(request_ids)} fallback requests not all written in {timeout} s")


def test_the_rollback_is_announced_on_sns_and_eventbridge(watchers: Watchers, broken_canary: dict[str, Any]) -> None:
    subject = "Conveyor: deployment rolled back"
    alerts = watchers.alerts_seen(120, until=lambda found: any(a.get("Subject") == subject for a in found))
    rolled_back = [a for a in alerts if a.get("Subject") == subject]
    assert rolled_back and "canary-visits v2 rolled back" in rolled_back[0]["Message"]
    events = watchers.events_seen(120, until=lambda found: any(e["detail-type"] == "ModelRolledBack" for e in found))
    events += watchers.events_seen(2)  # anything announced right after it (a ModelPromoted must not be)
    (event,) = [e for e in events if e["detail-type"] == "ModelRolledBack"]
    detail = event["detail"]
    assert detail["model_version"] == 2 and detail["details"]["champion"] == 1 and detail["details"]["trial_ended"]
    assert any(c["name"] == "error_rate" and not c["passed"] for c in detail["details"]["checks"])
    assert "ModelPromoted" not in {e["detail-type"] for e in events}


def test_a_reviewer_can_reject_a_candidate(
    cloud: Target, cli: Cli, watchers: Watchers, broken_canary: dict[str, Any], tmp_path: Path
) -> None:
    dropped = _drop_awaiting_approval(cli, _years(tmp_path, [1987]))
    version = str(dropped["registration"]["version"])
    code, rejected = cli.json("reject", MODEL, version, "--reason", "not before the audit")
    assert code == 0 and rejected["status"] == "rejected" and rejected["execution_stopped"] is True
    execution = cloud.sfn.describe_execution(executionArn=dropped["execution_arn"])
    deadline = time.monotonic() + 120
    while execution["status"] == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.3)
        execution = cloud.sfn.describe_execution(executionArn=dropped["execution_arn"])
    assert execution["status"] == "SUCCEEDED"
    history = cloud.sfn.get_execution_history(executionArn=dropped["execution_arn"], maxResults=1000)["events"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]
    assert entered[-1] == "Rejected by reviewer"
    entry = _status(cli)
    assert {v["version"]: v["status"] for v in entry["versions"]}[int(version)] == "rejected"
    assert entry["serving"] == 1
    assert "ModelRejected" in watchers.events_named("ModelRejected")
    assert cli.run("approve", MODEL, version).returncode == 2


def test_shadow_then_canary_promotes_a_healthy_version_and_status_shows_each_phase(
    cloud: Target, cli: Cli, watchers: Watchers, broken_canary: dict[str, Any], tmp_path: Path
) -> None:
    spec = yaml.safe_load(_spec())
    spec["deployment"] = {
        "strategy": "shadow_then_canary",
        "approval": "auto",
        "shadow": {"bake_seconds": 4},
        "canary": {"weight": WEIGHT, "bake_seconds": 4},
        # Latency of the local gateway on a busy machine is not the model's: a loose limit (default 250 ms).
        "bake": {
            "min_requests": 20,
            "max_error_rate": 0.05,
            "max_score_shift": 0.5,
            "max_extensions": 10,
            "max_p99_latency_ms": 2000,
        },
    }
    cloud.s3.put_object(
        Bucket=cloud.output("ArtifactBucketName"), Key=f"{MODEL}/spec.yaml", Body=yaml.safe_dump(spec).encode()
    )
    code, dropped = cli.json("drop", str(_years(tmp_path, [1988])), "--model", MODEL, "--no-wait")
    assert code == 0
    seen: dict[str, dict[str, Any]] = {}
    with Traffic(f"{cloud.api_url}/models/{MODEL}/predict") as traffic:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            entry = _status(cli)
            for deployment in entry["deployments"]:
                kind = "shadow" if entry["shadow"] else "canary"
                # "Start phase" moves the traffic, then records the phase: on a busy machine a status can
                # fall between the two, so a phase counts as seen once its record says so too.
                said = {"shadow": ": shadow, phase", "canary": "canary at"}[kind]
                if deployment["state"] == "trial" and said in deployment["text"]:
                    seen.setdefault(kind, {**deployment, "challenger": entry["challenger"], "shadow": entry["shadow"]})
            execution = cloud.sfn.describe_execution(executionArn=dropped["execution_arn"])
            if execution["status"] != "RUNNING":
                break
            time.sleep(0.5)
    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    output = json.loads(execution["output"])
    assert "promotion" in output, {k: output.get(k) for k in ("claim", "finish", "registration", "evaluation")}
    version = output["registration"]["version"]
    assert output["promotion"]["phases"] == ["shadow", "canary at 50%"]
    assert seen["shadow"]["shadow"] == version and seen["shadow"]["challenger"] is None
    assert seen["canary"]["challenger"] == {"version": version, "weight": WEIGHT}
    assert "canary at 50%" in seen["canary"]["text"]
    # The shadow scored requests but never answered one; v1 answered until the canary, then both.
    answered = {a.version for a in traffic.answers if a.status == 200}
    assert answered == {1, version} and all(a.status == 200 for a in traffic.answers)
    assert _serving(cloud)["champion"]["version"] == version
    assert "ModelPromoted" in watchers.events_named("ModelPromoted")
