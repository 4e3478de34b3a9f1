"""The predict hot path: what runs after the response (the shadow, capture, metrics), the routing
refresh that loads a new revision's versions before it serves them (pre-warm), capture as log
lines, the Lambda extension runner, and the standard-library SigV4 signer."""

from __future__ import annotations

import datetime
import io
import json
import threading
from typing import Any
from unittest import mock

import pytest

from conveyor.adapters.memory import MemoryCapture, MemoryMetrics, MemoryObjectStore, MemoryTable
from conveyor.afterwork import LambdaExtensionRunner, ManualRunner, ThreadRunner
from conveyor.capture import CAPTURE_LINE_FIELDS, MAX_LOG_LINE_BYTES, LogLineCapture
from conveyor.layout import artifact_key
from conveyor.registry import ModelVersion, Registry, sha256_hex
from conveyor.serving import ModelCache, PredictionService
from tests.conftest import DEMO_ROW as ROW

MODEL = "doctor-visits"


class CountingStore(MemoryObjectStore):
    """Counts the artifact downloads."""

    def __init__(self) -> None:
        super().__init__()
        self.loads: list[str] = []

    def get(self, bucket: str, key: str, version_id: str | None = None) -> bytes:
        self.loads.append(key)
        return super().get(bucket, key, version_id)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def served(tmp_path, trained_model, other_model):
    store, registry, clock, after = CountingStore(), Registry(MemoryTable()), Clock(), ManualRunner()
    for onnx in (trained_model.onnx, other_model.onnx):
        digest = sha256_hex(onnx)
        store.put("artifacts", artifact_key(MODEL, digest), onnx)
        registry.register(
            ModelVersion(
                model=MODEL, version=0, status="approved", artifact_key=artifact_key(MODEL, digest), sha256=digest
            )
        )
    registry.promote(MODEL, 1)
    capture, metrics = MemoryCapture(), MemoryMetrics()
    service = PredictionService(
        registry,
        ModelCache(store, "artifacts", str(tmp_path), clock=clock),
        routing_cache_seconds=5.0,
        clock=clock,
        capture=capture,
        metrics=metrics,
        after=after,
    )
    return service, registry, store, clock, after, capture, metrics


def test_the_shadow_is_scored_and_captured_after_the_response(served):
    service, registry, _, clock, after, capture, metrics = served
    registry.set_shadow(MODEL, 2)
    clock.now += 10  # past the routing cache: the request reads the new record
    answer = service.predict(MODEL, {"instances": [ROW]}, "r-1")
    assert answer["model_version"] == 1
    assert capture.records == [] and after.pending  # nothing of the shadow yet: the client has its answer
    after.drain()
    by_role = {r["role"]: r for r in capture.records}
    assert set(by_role) == {"champion", "shadow"} and by_role["shadow"]["model_version"] == 2
    assert by_role["shadow"]["served"] is False and by_role["shadow"]["predictions"]
    assert {p[2]["version"] for p in metrics.datapoints if "version" in p[2]} == {"1", "2"}


def test_a_new_revision_is_loaded_before_it_takes_a_request(served, trained_model, other_model):
    service, registry, store, clock, after, _, _ = served
    service.predict(MODEL, {"instances": [ROW]}, "cold")  # the container's first request loads v1
    after.drain()
    registry.set_challenger(MODEL, 2, 1.0)  # every request to version 2, once the container sees it
    clock.now += 3  # past half the routing cache time: the after-response refresh reads the record
    loads = len(store.loads)
    answer = service.predict(MODEL, {"instances": [ROW]}, "still-v1")
    assert answer["model_version"] == 1 and len(store.loads) == loads  # the cached routing; nothing loaded
    after.drain()  # after the response: the new revision read, version 2 downloaded, then switched to
    assert artifact_key(MODEL, sha256_hex(other_model.onnx)) in store.loads[loads:]
    loads = len(store.loads)
    answer = service.predict(MODEL, {"instances": [ROW]}, "first-on-v2")
    assert answer["model_version"] == 2 and len(store.loads) == loads  # no client paid the download


def test_the_cache_time_still_bounds_a_stale_routing(served):
    service, registry, _, clock, after, _, _ = served
    service.predict(MODEL, {"instances": [ROW]}, "cold")
    registry.set_challenger(MODEL, 2, 1.0)
    clock.now += 6  # an idle container: past the whole cache time, the request reads the record itself
    assert service.predict(MODEL, {"instances": [ROW]}, "late")["model_version"] == 2
    after.drain()


def test_after_response_failures_never_reach_the_client(served):
    service, _, _, _, after, capture, _ = served

    def broken(records: list[dict[str, Any]]) -> None:
        raise OSError("the log is gone")

    capture.put = broken
    assert service.predict(MODEL, {"instances": [ROW]}, "r")["model_version"] == 1
    after.drain()
    assert service.capture_failures == 1


def test_capture_lines_are_the_records_one_per_line(trained_model):
    stream = io.StringIO()
    sink = LogLineCapture(stream)
    record = {"model": MODEL, "model_version": 1, "role": "champion", "served": True, "request_id": "r"}
    record |= {"routing_key": "r", "inputs": [ROW], "predictions": [1]}
    sink.put([record, {**record, "role": "shadow", "served": False}])
    lines = stream.getvalue().splitlines()
    assert [json.loads(line) for line in lines] == [record, {**record, "role": "shadow", "served": False}]
    assert all(field in json.loads(lines[0]) for field in CAPTURE_LINE_FIELDS)  # what the filter matches
    sink.put([{**record, "inputs": [{"text": "x" * MAX_LOG_LINE_BYTES}]}])
    huge = stream.getvalue().splitlines()[-1]
    assert len(huge) < MAX_LOG_LINE_BYTES and json.loads(huge)["truncated"] is True


def test_the_thread_runner_holds_a_requests_jobs_until_the_handler_has_returned():
    runner, ran = ThreadRunner(), threading.Event()
    runner.defer(ran.set)
    assert runner._held == [ran.set] and runner._thread is None  # nothing runs beside the handler
    runner.finished()
    assert ran.wait(10) and runner.drain(10) and runner._held == []


def test_the_thread_runner_drains():
    runner, ran = ThreadRunner(), []
    for i in range(20):
        runner.defer(lambda i=i: ran.append(i))
    assert runner.drain(10) and ran == list(range(20))


class FakeRuntimeApi:
    """Lambda's extensions API: ``event/next`` blocks until the test starts an invocation."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.invocations = threading.Semaphore(0)
        self.waiting = threading.Event()

    def __call__(self, address: str) -> Any:
        api = self

        class Connection:
            def request(self, method: str, path: str, body: Any = None, headers: Any = None) -> None:
                api.calls.append((method, path))
                self.path = path

            def getresponse(self) -> Any:
                if self.path.endswith("event/next"):
                    api.waiting.set()
                    api.invocations.acquire()

                class Response:
                    status = 200

                    def read(self) -> bytes:
                        return b"{}"

                    def getheader(self, name: str) -> str:
                        return "ext-1"

                return Response()

            def close(self) -> None:
                return

        return Connection()


def test_the_extension_runs_an_invocations_work_after_the_handler_returns_then_asks_for_the_next():
    api = FakeRuntimeApi()
    runner = LambdaExtensionRunner("127.0.0.1:9001", connect=api)
    runner.register()
    assert api.waiting.wait(5) and api.calls == [
        ("POST", "/2020-01-01/extension/register"),
        ("GET", "/2020-01-01/extension/event/next"),
    ]
    api.waiting.clear()
    api.invocations.release()  # an invocation starts; the handler defers work, then returns
    done = threading.Event()
    runner.defer(done.set)
    assert not done.wait(0.2)  # the handler has not returned: the work waits
    runner.finished()
    assert done.wait(5) and runner.drain(5)
    assert api.waiting.wait(5)  # then the extension asks for the next event: the invocation may end
    assert api.calls[-1] == ("GET", "/2020-01-01/extension/event/next")


def test_sigv4_signature_equals_botocores():
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from conveyor.adapters.lean_aws import sign

    body = b'{"TableName": "registry"}'
    headers = {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "DynamoDB_20120810.GetItem"}
    ours = sign(
        "POST", "dynamodb.us-east-1.amazonaws.com", "/", headers, body,
        service="dynamodb", region="us-east-1", access_key="AKID", secret_key="SECRET", token="TOKEN", now=1.7e9,
    )  # fmt: skip
    request = AWSRequest(
        method="POST", url="https://dynamodb.us-east-1.amazonaws.com/", data=body, headers=dict(headers)
    )
    request.headers["X-Amz-Content-SHA256"] = ours["x-amz-content-sha256"]
    at = datetime.datetime.fromtimestamp(1.7e9, datetime.UTC).replace(tzinfo=None)
    with mock.patch("botocore.auth.get_current_datetime", return_value=at):
        SigV4Auth(Credentials("AKID", "SECRET", "TOKEN"), "dynamodb", "us-east-1").add_auth(request)
    assert ours["Authorization"] == request.headers["Authorization"]
