"""The CLI against a deployed stack (``--stack NAME`` / CONVEYOR_STACK), with a moto server standing in
for AWS through the same code path: the stack's CloudFormation outputs found by ``describe_stacks``,
the standard credential chain and region from the environment (AWS_ENDPOINT_URL points at moto),
and predict's SigV4 signature checked on a tiny local HTTP server standing in for API Gateway."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner

from conveyor.adapters.aws import DynamoTable
from conveyor.cli.app import app
from conveyor.layout import artifact_key
from conveyor.registry import ModelVersion, Registry
from tests.component.conftest import create_registry_table, moto_server

STACK = "Conveyor-smoketest"
REGION = "eu-west-1"
ACCESS_KEY = "AKIDSTACKTEST"
SESSION_TOKEN = "session-token-of-an-assumed-role"


class _Api(BaseHTTPRequestHandler):
    """Records each request's headers and body; answers like the predict function."""

    seen: list[dict[str, Any]] = []

    def _answer(self, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
        _Api.seen.append({"method": "POST", "path": self.path, "headers": dict(self.headers), "body": body})
        self._answer({"model": "m", "model_version": 1, "predictions": [1], "request_id": "r"})

    def do_GET(self) -> None:
        _Api.seen.append({"method": "GET", "path": self.path, "headers": dict(self.headers), "body": ""})
        self._answer({"model": "m", "breakers": {}})

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture(scope="module")
def api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/prod/"
    server.shutdown()


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    with moto_server() as (url, _port):
        yield url


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, moto_endpoint: str) -> str:
    """The standard credential chain and region, from the environment; AWS_ENDPOINT_URL to moto."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "CONVEYOR_STATE", "CONVEYOR_STACK", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)
    return moto_endpoint


@pytest.fixture
def stack(aws: str, api: str) -> dict[str, str]:
    """A deployed stack as the CLI sees it: resources on moto and a CloudFormation stack whose outputs name them."""
    session = boto3.session.Session()
    suffix = str(len(_Api.seen)) + str(id(session))[-6:]
    names = {
        "DataBucketName": f"data-{suffix}",
        "ArtifactBucketName": f"artifacts-{suffix}",
        "CaptureBucketName": f"capture-{suffix}",
        "RegistryTableName": f"registry-{suffix}",
        "ApiUrl": api,
    }
    s3 = session.client("s3")
    for key in ("DataBucketName", "ArtifactBucketName", "CaptureBucketName"):
        s3.create_bucket(Bucket=names[key], CreateBucketConfiguration={"LocationConstraint": REGION})
    create_registry_table(session.client("dynamodb"), names["RegistryTableName"])
    machine = session.client("stepfunctions").create_state_machine(
        name=f"pipeline-{suffix}",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        roleArn="arn:aws:iam::123456789012:role/pipeline",
    )
    names["StateMachineArn"] = machine["stateMachineArn"]
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value} for key, value in names.items()},
    }
    cloudformation = session.client("cloudformation")
    cloudformation.delete_stack(StackName=STACK)
    cloudformation.create_stack(StackName=STACK, TemplateBody=json.dumps(template))
    registry = Registry(DynamoTable(names["RegistryTableName"], resource=session.resource("dynamodb")))
    for sha in ("a" * 64, "b" * 64):
        registry.register(
            ModelVersion(model="m", version=0, status="approved", artifact_key=artifact_key("m", sha), sha256=sha)
        )
    registry.promote("m", 1)
    registry.promote("m", 2)
    return names


def _run(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(app, list(args), env=env)


def test_models_and_status_read_the_stack_named_by_its_outputs(stack: dict[str, str]) -> None:
    models = _run("models", "--stack", STACK, "--json")
    assert models.exit_code == 0, models.output
    assert [m["model"] for m in json.loads(models.stdout)["models"]] == ["m"]
    status = _run("status", "m", "--stack", STACK, "--json")
    assert status.exit_code == 0, status.output
    assert json.loads(status.stdout)["models"][0]["serving"] == 2
    # status asked the API for the breakers: a signed GET
    assert any(r["method"] == "GET" and "Authorization" in r["headers"] for r in _Api.seen)


def test_conveyor_stack_in_the_environment_is_the_same_as_the_option(stack: dict[str, str]) -> None:
    rollback = _run("rollback", "m", "--json", env={"CONVEYOR_STACK": STACK})
    assert rollback.exit_code == 0, rollback.output
    assert json.loads(rollback.stdout)["champion"]["version"] == 1
    kill = _run("kill", "m", "--fallback", "none", "--json", env={"CONVEYOR_STACK": STACK})
    assert kill.exit_code == 0, kill.output
    session = boto3.session.Session()
    table = DynamoTable(stack["RegistryTableName"], resource=session.resource("dynamodb"))
    assert Registry(table).routing("m").killed


def test_predict_signs_its_request_with_sigv4_for_execute_api(stack: dict[str, str]) -> None:
    _Api.seen.clear()
    body = '{"instances": [{"age": 40}]}'
    result = _run("predict", "m", "--json", body, "--request-id", "req-1", "--stack", STACK)
    assert result.exit_code == 0, result.output
    (request,) = [r for r in _Api.seen if r["method"] == "POST"]
    assert request["path"] == "/prod/models/m/predict" and request["body"] == body
    headers = request["headers"]
    authorization = headers["Authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=" + ACCESS_KEY + "/")
    assert f"/{REGION}/execute-api/aws4_request" in authorization
    signed = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
    assert {"host", "x-amz-date", "x-amz-security-token", "x-request-id", "content-type"} <= set(signed)
    assert headers["X-Amz-Date"].endswith("Z") and len(headers["X-Amz-Date"]) == 16
    assert headers["X-Amz-Security-Token"] == SESSION_TOKEN
    assert headers["X-Request-Id"] == "req-1"


def test_the_signature_is_the_one_botocore_computes_for_the_request(stack: dict[str, str]) -> None:
    """The signature covers the body: the same request with another body would not verify."""
    from conveyor.cli.target import Target

    target = Target.from_stack(STACK)
    url = f"{target.api_url}/models/m/predict"
    one = target.signed_headers("POST", url, '{"instances": [1]}', {"Content-Type": "application/json"})
    other = target.signed_headers("POST", url, '{"instances": [2]}', {"Content-Type": "application/json"})
    assert one["Authorization"].split("Signature=")[1] != other["Authorization"].split("Signature=")[1]


def test_an_unknown_stack_fails_with_its_name_and_region(aws: str) -> None:
    result = _run("models", "--stack", "Conveyor-nowhere")
    assert result.exit_code == 1
    assert "Conveyor-nowhere" in result.output and REGION in result.output


def test_without_a_region_the_cli_says_so(aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    result = _run("status", "--stack", STACK)
    assert result.exit_code == 1 and "AWS_REGION" in result.output


def test_the_local_cloud_stays_the_default(aws: str, tmp_path: Any) -> None:
    result = _run("models", "--state", str(tmp_path / "missing.json"))
    assert result.exit_code == 1 and "conveyor up" in result.output


def test_alarms_reads_the_stacks_cloudwatch(stack: dict[str, str]) -> None:
    result = _run("alarms", "--stack", STACK, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"alarms": []}
