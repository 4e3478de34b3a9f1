"""One contract for each port, run through the in-memory adapters and through the AWS adapters on a
moto server: the fakes the unit tests use cannot drift from what the cloud does.

Buckets are versioned (every Conveyor bucket is): a delete adds a delete marker and older versions
stay readable by version id.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from conveyor.adapters.aws import DynamoTable, S3ObjectStore, StepFunctionsCallbacks, StepFunctionsStarter
from conveyor.adapters.memory import MemoryCallbacks, MemoryObjectStore, MemoryStarter, MemoryTable
from conveyor.config import Settings
from conveyor.ports import (
    CallbackExpired,
    ConditionFailed,
    ExecutionStarter,
    ObjectMissing,
    ObjectRef,
    ObjectStore,
    Table,
    TaskCallbacks,
)
from tests.component.conftest import create_registry_table, moto_server

BUCKET = "contract-bucket"
_names = itertools.count(1)


@dataclass
class Ports:
    """One backend's adapters, plus how a test makes a waiting task and reads what it received."""

    bucket: str  # versioned, this test's own (S3 bucket names are global)
    store: ObjectStore
    table: Table
    starter: ExecutionStarter
    callbacks: TaskCallbacks
    waiting_token: Callable[[], str]
    received: Callable[[str], Any]  # token -> ("success", output) | ("failure", {"error", "cause"})


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    with moto_server() as (endpoint, port), pytest.MonkeyPatch.context() as patch:
        config = f"{endpoint}/moto-api/config"
        patch.setenv("MOTO_PORT", str(port))  # Step Functions' service integrations call this server
        requests.post(config, json={"stepfunctions": {"execute_state_machine": True}}, timeout=10)
        yield endpoint
        requests.post(config, json={"stepfunctions": {"execute_state_machine": False}}, timeout=10)


def _memory_ports() -> Ports:
    callbacks = MemoryCallbacks()
    tokens = (f"token-{n}" for n in itertools.count(1))

    def waiting_token() -> str:
        token = next(tokens)
        callbacks.wait(token)
        return token

    return Ports(
        BUCKET, MemoryObjectStore(), MemoryTable(), MemoryStarter(), callbacks, waiting_token, callbacks.answers.get
    )


class _WaitingWorkflow:
    """A state machine whose one task waits for a callback; its token arrives on a queue."""

    def __init__(self, client: Callable[[str], Any], suffix: str) -> None:
        self._sqs = client("sqs")
        self._sfn = client("stepfunctions")
        self._queue = self._sqs.create_queue(QueueName=f"tokens-{suffix}")["QueueUrl"]
        task = {
            "Type": "Task",
            "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
            "Parameters": {"QueueUrl": self._queue, "MessageBody": {"token.$": "$$.Task.Token"}},
            "End": True,
        }
        self.arn = self._sfn.create_state_machine(
            name=f"waits-{suffix}",
            definition=json.dumps({"StartAt": "Wait", "States": {"Wait": task}}),
            roleArn="arn:aws:iam::123456789012:role/contract",
        )["stateMachineArn"]
        self._executions: dict[str, str] = {}

    def waiting_token(self) -> str:
        name = f"wait-{len(self._executions)}"  # moto names an unnamed execution "None": name each one
        execution = self._sfn.start_execution(stateMachineArn=self.arn, name=name, input="{}")["executionArn"]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            # Short polls: moto holds the queue during a long poll, and the task's send waits for it.
            for message in self._sqs.receive_message(QueueUrl=self._queue).get("Messages", []):
                self._sqs.delete_message(QueueUrl=self._queue, ReceiptHandle=message["ReceiptHandle"])
                token = str(json.loads(message["Body"])["token"])
                self._executions[token] = execution
                return token
            time.sleep(0.05)
        raise AssertionError("the waiting task sent no token within 30 s")

    def received(self, token: str) -> Any:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            execution = self._sfn.describe_execution(executionArn=self._executions[token])
            if execution["status"] == "SUCCEEDED":
                return ("success", json.loads(execution["output"]))
            if execution["status"] == "FAILED":
                events = self._sfn.get_execution_history(executionArn=self._executions[token])["events"]
                failed = next(e["executionFailedEventDetails"] for e in events if e["type"] == "ExecutionFailed")
                return ("failure", {"error": failed.get("error"), "cause": failed.get("cause")})
            time.sleep(0.1)
        raise AssertionError("the execution did not end within 30 s")


def _aws_ports(endpoint: str) -> Ports:
    def client(service: str) -> Any:
        return boto3.client(
            service, endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s"
        )

    suffix = str(next(_names))
    s3 = client("s3")
    s3.create_bucket(Bucket=f"{BUCKET}-{suffix}")
    s3.put_bucket_versioning(Bucket=f"{BUCKET}-{suffix}", VersioningConfiguration={"Status": "Enabled"})
    create_registry_table(client("dynamodb"), f"contract-{suffix}")
    resource = boto3.resource(
        "dynamodb", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s"
    )
    workflow = _WaitingWorkflow(client, suffix)
    return Ports(
        f"{BUCKET}-{suffix}",
        S3ObjectStore(s3),
        DynamoTable(f"contract-{suffix}", resource=resource),
        StepFunctionsStarter(workflow.arn, client=client("stepfunctions")),
        StepFunctionsCallbacks(client=client("stepfunctions")),
        workflow.waiting_token,
        workflow.received,
    )


@pytest.fixture(params=["memory", "aws"])
def ports(request: pytest.FixtureRequest) -> Ports:
    if request.param == "memory":
        return _memory_ports()
    return _aws_ports(request.getfixturevalue("moto_endpoint"))


# objects ------------------------------------------------------------------------------------


def test_put_get_head_describe_the_same_version(ports: Ports) -> None:
    ref = ports.store.put(ports.bucket, "m/a.csv", b"x,y\n1,2\n", "text/csv")
    assert (ref.bucket, ref.key, ref.size) == (ports.bucket, "m/a.csv", 8)
    assert ref.version_id
    assert ref.etag == hashlib.md5(b"x,y\n1,2\n").hexdigest()
    assert ports.store.get(ports.bucket, "m/a.csv") == b"x,y\n1,2\n"
    assert ports.store.head(ports.bucket, "m/a.csv") == ref
    assert ports.store.head(ports.bucket, "m/a.csv", ref.version_id) == ref
    empty = ports.store.put(ports.bucket, "m/empty", b"")
    assert ports.store.get(ports.bucket, "m/empty") == b"" and empty.size == 0
    assert ports.store.keys(ports.bucket, "m/") == ["m/a.csv", "m/empty"]


def test_every_put_is_a_version_readable_by_its_id(ports: Ports) -> None:
    first = ports.store.put(ports.bucket, "k", b"one")
    second = ports.store.put(ports.bucket, "k", b"two")
    assert first.version_id != second.version_id
    assert first.etag != second.etag
    assert ports.store.get(ports.bucket, "k") == b"two"
    assert ports.store.get(ports.bucket, "k", first.version_id) == b"one"
    assert ports.store.head(ports.bucket, "k", first.version_id) == first
    assert ports.store.head(ports.bucket, "k") == second


def test_a_missing_object_or_version_is_object_missing(ports: Ports) -> None:
    other = ports.store.put(ports.bucket, "other", b"o")
    ports.store.put(ports.bucket, "k", b"k")
    with pytest.raises(ObjectMissing) as missing:
        ports.store.get(ports.bucket, "nothing/here")
    assert (missing.value.bucket, missing.value.key) == (ports.bucket, "nothing/here")
    assert "nothing/here" in str(missing.value)
    with pytest.raises(ObjectMissing):
        ports.store.get(ports.bucket, "k", other.version_id)  # a version of another key
    assert ports.store.head(ports.bucket, "nothing/here") is None
    assert ports.store.head(ports.bucket, "k", other.version_id) is None
    with pytest.raises(ObjectMissing):
        ports.store.copy(ObjectRef(ports.bucket, "nothing/here"), ports.bucket, "dest")
    assert ports.store.keys(ports.bucket, "dest") == []


def test_download_and_upload_stream_files(ports: Ports, tmp_path: Path) -> None:
    first = ports.store.put(ports.bucket, "m/big.csv", b"a\n1\n")
    ports.store.put(ports.bucket, "m/big.csv", b"a\n2\n")
    ports.store.download(ports.bucket, "m/big.csv", tmp_path / "now.csv")
    ports.store.download(ports.bucket, "m/big.csv", tmp_path / "then.csv", first.version_id)
    assert (tmp_path / "now.csv").read_bytes() == b"a\n2\n" and (tmp_path / "then.csv").read_bytes() == b"a\n1\n"
    with pytest.raises(ObjectMissing):
        ports.store.download(ports.bucket, "nothing/here", tmp_path / "none.csv")
    (tmp_path / "part.csv").write_bytes(b"a\n3\n")
    ref = ports.store.upload(ports.bucket, "m/part.csv", tmp_path / "part.csv")
    assert ref.version_id and ref.size == 4 and ref.etag == hashlib.md5(b"a\n3\n").hexdigest()
    assert ports.store.get(ports.bucket, "m/part.csv", ref.version_id) == b"a\n3\n"


def test_delete_adds_a_marker_and_keeps_the_versions(ports: Ports) -> None:
    first = ports.store.put(ports.bucket, "m/incoming/a.csv", b"one")
    second = ports.store.put(ports.bucket, "m/incoming/a.csv", b"two")
    ports.store.put(ports.bucket, "m/incoming/b.csv", b"b")
    ports.store.delete(ports.bucket, "m/incoming/a.csv")
    with pytest.raises(ObjectMissing):
        ports.store.get(ports.bucket, "m/incoming/a.csv")
    assert ports.store.head(ports.bucket, "m/incoming/a.csv") is None
    assert ports.store.keys(ports.bucket, "m/") == ["m/incoming/b.csv"]
    assert ports.store.get(ports.bucket, "m/incoming/a.csv", first.version_id) == b"one"
    assert ports.store.get(ports.bucket, "m/incoming/a.csv", second.version_id) == b"two"
    assert ports.store.head(ports.bucket, "m/incoming/a.csv", second.version_id) == second
    ports.store.delete(ports.bucket, "never/written")  # no error, as S3
    third = ports.store.put(ports.bucket, "m/incoming/a.csv", b"three")  # a put after a delete is current again
    assert ports.store.get(ports.bucket, "m/incoming/a.csv") == b"three"
    assert ports.store.head(ports.bucket, "m/incoming/a.csv") == third
    assert ports.store.keys(ports.bucket, "m/") == ["m/incoming/a.csv", "m/incoming/b.csv"]


def test_copy_reads_the_named_version_even_after_a_delete(ports: Ports) -> None:
    first = ports.store.put(ports.bucket, "m/incoming/a.csv", b"one")
    ports.store.put(ports.bucket, "m/incoming/a.csv", b"two")
    latest = ports.store.copy(
        ports.store.head(ports.bucket, "m/incoming/a.csv") or first, ports.bucket, "m/accepted/latest"
    )
    assert ports.store.get(ports.bucket, "m/accepted/latest") == b"two"
    assert (latest.bucket, latest.key, latest.size) == (ports.bucket, "m/accepted/latest", 3)
    assert ports.store.head(ports.bucket, "m/accepted/latest") == latest
    ports.store.delete(ports.bucket, "m/incoming/a.csv")
    old = ports.store.copy(first, ports.bucket, "m/accepted/first")
    assert ports.store.get(ports.bucket, "m/accepted/first") == b"one"
    assert old.version_id and ports.store.get(ports.bucket, "m/accepted/first", old.version_id) == b"one"
    unversioned = ObjectRef(ports.bucket, "m/incoming/a.csv")
    with pytest.raises(ObjectMissing):
        ports.store.copy(unversioned, ports.bucket, "m/accepted/current")  # the current version is a marker


def test_keys_are_listed_in_lexicographic_order_under_the_prefix(ports: Ports) -> None:
    for key in ("b/2", "a/1", "b/10", "ab", "b/1"):
        ports.store.put(ports.bucket, key, b".")
    assert ports.store.keys(ports.bucket, "b/") == ["b/1", "b/10", "b/2"]
    assert ports.store.keys(ports.bucket) == ["a/1", "ab", "b/1", "b/10", "b/2"]
    assert ports.store.keys(ports.bucket, "c/") == []


# table --------------------------------------------------------------------------------------


def test_items_round_trip_with_their_types(ports: Ports) -> None:
    item = {
        "pk": "MODEL#m",
        "sk": "VERSION#0001",
        "n": 3,
        "f": 0.25,
        "flag": True,
        "none": None,
        "nested": {"list": [1, 2.5, "x", {"deep": False}]},
    }
    assert ports.table.get("MODEL#m", "VERSION#0001") is None
    ports.table.put(item)
    stored = ports.table.get("MODEL#m", "VERSION#0001")
    assert stored == item
    assert isinstance(stored and stored["n"], int) and isinstance(stored and stored["f"], float)
    assert stored is not None
    stored["n"] = 99  # a returned item is a copy
    assert ports.table.get("MODEL#m", "VERSION#0001") == item


def test_conditional_writes_fail_with_condition_failed(ports: Ports) -> None:
    ports.table.put({"pk": "p", "sk": "s", "revision": 1}, if_absent=True)
    with pytest.raises(ConditionFailed):
        ports.table.put({"pk": "p", "sk": "s", "revision": 9}, if_absent=True)
    with pytest.raises(ConditionFailed):
        ports.table.put({"pk": "p", "sk": "s", "revision": 9}, if_equals=("revision", 2))
    with pytest.raises(ConditionFailed):
        ports.table.put({"pk": "p", "sk": "absent", "revision": 1}, if_equals=("revision", 0))
    with pytest.raises(ConditionFailed):
        ports.table.put({"pk": "p", "sk": "s", "revision": 9}, if_equals=("missing_attribute", 1))
    assert ports.table.get("p", "s") == {"pk": "p", "sk": "s", "revision": 1}
    ports.table.put({"pk": "p", "sk": "s", "revision": 2}, if_equals=("revision", 1))
    assert ports.table.get("p", "s") == {"pk": "p", "sk": "s", "revision": 2}
    ports.table.put({"pk": "p", "sk": "s", "revision": 3})  # unconditional writes always win
    assert ports.table.get("p", "absent") is None


def test_query_by_prefix_in_sort_key_order(ports: Ports) -> None:
    for sk in ("VERSION#0002", "VERSION#0010", "VERSION#0001", "DATASET#a", "ROUTING"):
        ports.table.put({"pk": "MODEL#m", "sk": sk, "v": sk})
    ports.table.put({"pk": "MODEL#other", "sk": "VERSION#0003"})
    versions = ["VERSION#0001", "VERSION#0002", "VERSION#0010"]
    assert [i["sk"] for i in ports.table.query("MODEL#m", "VERSION#")] == versions
    assert [i["sk"] for i in ports.table.query("MODEL#m", "VERSION#", newest_first=True)] == versions[::-1]
    assert [i["sk"] for i in ports.table.query("MODEL#m", "VERSION#", newest_first=True, limit=2)] == versions[:0:-1]
    assert [i["sk"] for i in ports.table.query("MODEL#m", "VERSION#", limit=1)] == versions[:1]
    assert ports.table.query("MODEL#none", "") == []


# executions and callbacks -------------------------------------------------------------------


def test_an_execution_name_starts_once(ports: Ports) -> None:
    # A repeat with the same name and the same input while the first still runs is where the two
    # differ: Step Functions answers it as the first start (nothing new runs), the fake says False.
    assert ports.starter.start("drop-abc", {"kind": "drop", "key": "a"}) is True
    assert ports.starter.start("drop-abc", {"kind": "drop", "key": "b"}) is False
    assert ports.starter.start("drop-def", {"kind": "drop", "key": "a"}) is True


def test_a_callback_answers_its_task_once(ports: Ports) -> None:
    approved, rejected = ports.waiting_token(), ports.waiting_token()
    ports.callbacks.succeed(approved, {"approved_by": "ana"})
    assert ports.received(approved) == ("success", {"approved_by": "ana"})
    ports.callbacks.fail(rejected, "Rejected", "not good enough")
    outcome, failure = ports.received(rejected)
    assert (outcome, failure["error"]) == ("failure", "Rejected")  # moto 5.2.5 does not keep the cause
    with pytest.raises(CallbackExpired):
        ports.callbacks.succeed(approved, {"approved_by": "bo"})
    with pytest.raises(CallbackExpired):
        ports.callbacks.succeed("no-such-token", {})
    # AWS refuses any second answer; moto 5.2.5 refuses only a second success, so only that is asserted.


# a caller that depends on the object store's errors -----------------------------------------


def test_a_drop_without_a_spec_is_quarantined_with_the_same_reason(ports: Ports) -> None:
    from conveyor.adapters.memory import MemoryEvents, MemoryMetrics, MemoryNotifier
    from conveyor.stages.context import PipelineContext, StageEvent
    from conveyor.stages.validate import validate_drop

    settings = Settings(
        data_bucket=ports.bucket,
        artifact_bucket=ports.bucket,
        capture_bucket=ports.bucket,
        registry_table="t",
        alerts_topic_arn="",
    )
    ctx = PipelineContext(settings, ports.store, ports.table, MemoryNotifier(), MemoryMetrics(), MemoryEvents())
    ref = ports.store.put(ports.bucket, "nospec/incoming/a.csv", b"a,b\n1,2\n")
    detail = {"bucket": {"name": ports.bucket}, "object": {"key": ref.key, "version-id": ref.version_id, "size": 8}}
    result = validate_drop(StageEvent(state={"detail": detail}, execution_id="x"), ctx)
    assert result["verdict"] == "rejected"
    assert f"no spec for model nospec: upload s3://{ports.bucket}/nospec/spec.yaml first" in result["summary"]
    assert ports.store.keys(ports.bucket, "nospec/incoming/") == []
    assert ports.store.get(ports.bucket, ref.key, ref.version_id) == b"a,b\n1,2\n"
