"""Guards the one moto internal the local cloud patches (see conveyor.localcloud.runtime)."""

import inspect
import io
import json
import zipfile
from importlib import metadata

import boto3
import pytest
from moto.awslambda.models import LambdaFunction

from conveyor.localcloud.runtime import PATCHED_METHOD, LambdaRuntime, LocalFunction, install_moto_patch
from tests.component.conftest import moto_server as fresh_moto_server


def test_moto_is_the_pinned_version():
    assert metadata.version("moto") == "5.2.5", "conveyor.localcloud patches moto 5.2.5 internals: re-check them"


def test_the_patched_method_still_has_the_expected_shape():
    original = inspect.getattr_static(LambdaFunction, PATCHED_METHOD)
    assert callable(original)
    assert list(inspect.signature(original).parameters) == ["self", "event"]
    # The public invoke path calls it and reads (payload, errored, logs).
    assert PATCHED_METHOD in inspect.getsource(LambdaFunction.invoke)


@pytest.fixture
def moto_server(monkeypatch):
    with fresh_moto_server() as (endpoint, port):
        monkeypatch.setenv("MOTO_PORT", str(port))
        original = inspect.getattr_static(LambdaFunction, PATCHED_METHOD)
        yield endpoint
        setattr(LambdaFunction, PATCHED_METHOD, original)


def test_invoke_through_the_api_runs_the_handler_in_process_and_errors_keep_their_type(moto_server):
    runtime = LambdaRuntime()

    def handler(event, context):
        if event.get("fail"):
            raise ValueError("bad event")
        return {"echo": event, "function": context.function_name}

    runtime.register(
        LocalFunction(name="echo", arn="arn:aws:lambda:us-east-1:123456789012:function:echo", code="x", handler=handler)
    )
    install_moto_patch(runtime)
    kw = {
        "endpoint_url": moto_server,
        "region_name": "us-east-1",
        "aws_access_key_id": "k",
        "aws_secret_access_key": "s",
    }
    role = boto3.client("iam", **kw).create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    buffer = io.BytesIO()
    zipfile.ZipFile(buffer, "w").writestr("h.py", "")
    lam = boto3.client("lambda", **kw)
    lam.create_function(
        FunctionName="echo", Runtime="python3.12", Role=role, Handler="h.h", Code={"ZipFile": buffer.getvalue()}
    )
    ok = lam.invoke(FunctionName="echo", Payload=json.dumps({"a": 1}))
    assert json.loads(ok["Payload"].read()) == {"echo": {"a": 1}, "function": "echo"}
    assert "FunctionError" not in ok
    failed = lam.invoke(FunctionName="echo", Payload=json.dumps({"fail": True}))
    assert failed["FunctionError"] == "Handled"
    error = json.loads(failed["Payload"].read())
    assert error["errorType"] == "ValueError" and error["errorMessage"] == "bad event"
    assert runtime.invocations == 2


def test_the_dynamodb_write_methods_still_exist():
    from moto.dynamodb.models import DynamoDBBackend

    from conveyor.localcloud.fidelity import DYNAMODB_WRITES

    for name in DYNAMODB_WRITES:
        assert callable(getattr(DynamoDBBackend, name)), name


def test_concurrent_pipelines_get_consecutive_versions_on_the_local_cloud(moto_server):
    """Eight registrations at once through the threaded moto server: versions 1..8, no gaps, no duplicates."""
    import threading

    from conveyor.adapters.aws import DynamoTable
    from conveyor.localcloud.fidelity import serialize_dynamodb_writes
    from conveyor.registry import ModelVersion, Registry
    from tests.component.conftest import create_registry_table

    serialize_dynamodb_writes()
    kw = {
        "endpoint_url": moto_server,
        "region_name": "us-east-1",
        "aws_access_key_id": "k",
        "aws_secret_access_key": "s",
    }
    create_registry_table(boto3.client("dynamodb", **kw))
    barrier = threading.Barrier(8)
    versions: list[int] = []

    def register(i: int) -> None:
        registry = Registry(DynamoTable("registry", resource=boto3.resource("dynamodb", **kw)))
        barrier.wait()
        version = ModelVersion(model="m", version=0, status="candidate", artifact_key=f"k{i}", sha256=f"{i:064d}")
        versions.append(registry.register(version).version)

    threads = [threading.Thread(target=register, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(versions) == list(range(1, 9))
    registry = Registry(DynamoTable("registry", resource=boto3.resource("dynamodb", **kw)))
    assert [v.version for v in registry.versions("m")] == list(range(1, 9))
    assert len({v.sha256 for v in registry.versions("m")}) == 8


def test_a_plain_handler_added_first_does_not_become_powertools_handler():
    """The predict handler's JsonLog on the shared "conveyor" logger before any Powertools function was
    imported (a prediction is the first request after a restart): later Powertools loggers still format."""
    import logging

    from aws_lambda_powertools import Logger

    from conveyor.adapters.apigw import JsonLog
    from conveyor.localcloud.runtime import powertools_handlers_first

    name = "conveyor-handler-order-test"
    shared = logging.getLogger(name)
    plain = JsonLog(service=name, stream=io.StringIO())
    shared.addHandler(plain)
    try:
        first = Logger(service=name, stream=io.StringIO())  # one function's module
        powertools_handlers_first()  # what the runtime does after importing a function's module
        second = Logger(service=name, stream=io.StringIO())  # the next function's module
        second.append_keys(cold_start=True)  # raised AttributeError: the formatter was JsonLog's (None)
        assert second.registered_handler is first.registered_handler
        assert shared.handlers[0] is shared.powertools_handler and plain in shared.handlers  # type: ignore[attr-defined]
    finally:
        for handler in list(shared.handlers):
            shared.removeHandler(handler)
