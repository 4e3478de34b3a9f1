"""The local SQS event source mapping against moto's SQS: what it processed is deleted at once
(nothing left in flight to reappear), what the function reports as failed stays for a retry."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from moto import mock_aws

from conveyor.localcloud.poller import QueuePoller


class FakeRuntime:
    """Stands in for LambdaRuntime: records each batch, fails the messages whose body says so."""

    def __init__(self, *, errored: bool = False) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self._errored = errored

    def invoke(self, function: str, event: dict[str, Any]) -> SimpleNamespace:
        records = event["Records"]
        self.batches.append(records)
        failures = [{"itemIdentifier": r["messageId"]} for r in records if json.loads(r["body"]).get("fail")]
        return SimpleNamespace(errored=self._errored, payload={"batchItemFailures": failures})


@pytest.fixture
def queue(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        sqs = boto3.client("sqs")
        url = sqs.create_queue(QueueName="ingest", Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        yield sqs, url, arn


def _counts(sqs: Any, url: str) -> tuple[int, int]:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


def _poller(sqs: Any, url: str, arn: str, runtime: FakeRuntime) -> QueuePoller:
    return QueuePoller(
        sqs, runtime, queue_url=url, queue_arn=arn, function="dispatch", batch_size=10, region="us-east-1"
    )  # type: ignore[arg-type]


def test_processed_messages_are_deleted_and_reported_failures_stay(queue):
    sqs, url, arn = queue
    for n in range(4):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"n": n, "fail": n == 2}))
    runtime = FakeRuntime()
    poller = _poller(sqs, url, arn, runtime)
    handled = 0
    while handled < 4:
        handled += poller.poll_once(wait_seconds=0)
    records = [r for batch in runtime.batches for r in batch]
    assert sorted(json.loads(r["body"])["n"] for r in records) == [0, 1, 2, 3]
    assert {r["eventSource"] for r in records} == {"aws:sqs"} and records[0]["eventSourceARN"] == arn
    # Three deleted at once; the failed one is in flight until its visibility timeout, then retried.
    assert _counts(sqs, url) == (0, 1)


def test_a_batch_whose_function_errored_is_not_deleted(queue):
    sqs, url, arn = queue
    for n in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"n": n}))
    poller = _poller(sqs, url, arn, FakeRuntime(errored=True))
    handled = 0
    while handled < 3:
        handled += poller.poll_once(wait_seconds=0)
    assert _counts(sqs, url) == (0, 3)
