"""Where the CLI sends its calls: the running local cloud (found through its state file, the default)
or a deployed stack (``--stack NAME``: its CloudFormation outputs, the standard credential chain and
region, and SigV4-signed requests to its IAM-authorized API)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import requests

from conveyor.errors import ConveyorError

if TYPE_CHECKING:
    from conveyor.ports import EventPublisher, ExecutionStarter, Table, TaskCallbacks


class TargetError(ConveyorError):
    pass


def default_state_path() -> Path:
    env = os.environ.get("CONVEYOR_STATE")
    if env:
        return Path(env)
    from conveyor.localcloud.template import repo_root

    try:
        return repo_root() / ".conveyor" / "local.json"
    except ConveyorError:
        return Path.cwd() / ".conveyor" / "local.json"


def default_data_dir() -> Path:
    """Where `conveyor up` keeps the local cloud's state: $CONVEYOR_DATA_DIR, else .conveyor/data/ in the checkout."""
    env = os.environ.get("CONVEYOR_DATA_DIR")
    if env:
        return Path(env)
    from conveyor.localcloud.template import repo_root

    try:
        return repo_root() / ".conveyor" / "data"
    except ConveyorError:
        return Path.cwd() / ".conveyor" / "data"


@dataclass
class Target:
    """A stack's resources and how to reach them.

    ``endpoint`` is the local cloud's AWS endpoint; it is empty for a deployed stack (``stack`` names
    it), whose clients come from a boto3 session: the standard credential chain and region, and
    ``AWS_ENDPOINT_URL`` when set (how the tests put a moto server in AWS's place).
    """

    endpoint: str
    api_url: str
    region: str
    outputs: dict[str, str]
    schedules_url: str = ""  # the local clock's hook (conveyor.localcloud.schedules)
    board_url: str = ""  # the local board (conveyor board), on its own port
    stack: str | None = None

    @classmethod
    def load(cls, state: Path | None = None) -> Target:
        path = state or default_state_path()
        if not path.exists():
            raise TargetError(f"no local cloud is running ({path} not found): start one with `conveyor up`")
        info = json.loads(path.read_text())
        return cls(
            endpoint=info["endpoint"],
            api_url=info["api_url"],
            region=info["region"],
            outputs=info["outputs"],
            schedules_url=info.get("schedules_url", ""),
            board_url=info.get("board_url", ""),
        )

    @classmethod
    def from_stack(cls, name: str) -> Target:
        """The deployed stack ``name``, found by its CloudFormation outputs (``describe_stacks``)."""
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        session = boto3.session.Session()
        if not session.region_name:
            raise TargetError(f"no AWS region to find stack {name} in: set AWS_REGION (or a profile's region)")
        try:
            found = session.client("cloudformation").describe_stacks(StackName=name)["Stacks"]
        except ClientError as error:
            raise TargetError(f"cannot read stack {name} in {session.region_name}: {_aws_message(error)}") from None
        except BotoCoreError as error:
            raise TargetError(f"cannot read stack {name} in {session.region_name}: {error}") from None
        if not found:
            raise TargetError(f"no stack named {name} in {session.region_name}")
        outputs = {o["OutputKey"]: o["OutputValue"] for o in found[0].get("Outputs", [])}
        target = cls(endpoint="", api_url="", region=session.region_name, outputs=outputs, stack=name)
        target.api_url = target.output("ApiUrl").rstrip("/")
        target._session = session
        return target

    @property
    def where(self) -> str:
        """How messages name the target."""
        return f"stack {self.stack} ({self.region})" if self.stack else f"the local cloud ({self.endpoint})"

    def output(self, name: str) -> str:
        for key, value in self.outputs.items():
            if key == name or key.startswith(name):
                return value
        raise TargetError(f"the stack has no output {name}")

    def _connection(self) -> dict[str, Any]:
        if self.stack:
            return {"region_name": self.region}
        return {
            "endpoint_url": self.endpoint,
            "region_name": self.region,
            "aws_access_key_id": "conveyor-local",
            "aws_secret_access_key": "conveyor-local",
        }

    @cached_property
    def _session(self) -> Any:
        import boto3  # here, not at import: commands start without it (see tests/benchmarks/test_cli_bench.py)

        return boto3.session.Session()

    def client(self, service: str) -> Any:
        return self._session.client(service, **self._connection())

    def resource(self, service: str = "dynamodb") -> Any:
        return self._session.resource(service, **self._connection())

    # The HTTP API: plain requests to the local cloud, SigV4-signed ones to a deployed stack.
    def request(
        self,
        method: str,
        path: str,
        *,
        data: str | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30,
    ) -> requests.Response:
        """``method`` ``api_url + path``; signed for the IAM-authorized API of a deployed stack."""
        import requests

        url = f"{self.api_url}{path}"
        sent = dict(headers or {})
        if self.stack:
            sent = self.signed_headers(method, url, data, sent)
        return requests.request(method, url, data=data, headers=sent, timeout=timeout)

    def signed_headers(self, method: str, url: str, data: str | None, headers: dict[str, str]) -> dict[str, str]:
        """``headers`` plus the SigV4 signature of the request (service ``execute-api``): Authorization,
        X-Amz-Date, and X-Amz-Security-Token with temporary credentials."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        credentials = self._session.get_credentials()
        if credentials is None:
            raise TargetError("no AWS credentials to sign the request with (the standard credential chain found none)")
        request = AWSRequest(method=method, url=url, data=data or "", headers=headers)
        SigV4Auth(credentials.get_frozen_credentials(), "execute-api", self.region).add_auth(request)
        return dict(request.headers.items())

    # The adapters of the ports, on the local cloud's resources (boto3 is imported by the first of them).
    def registry_table(self) -> Table:
        """The registry table (versions, routing, deployments, datasets) behind the ``Table`` port."""
        resource = self.resource()
        from conveyor.adapters.aws import DynamoTable

        return DynamoTable(self.output("RegistryTableName"), resource=resource)

    def execution_starter(self) -> ExecutionStarter:
        """Starts executions of the pipeline's state machine."""
        client = self.sfn
        from conveyor.adapters.aws import StepFunctionsStarter

        return StepFunctionsStarter(self.output("StateMachineArn"), client=client)

    def task_callbacks(self) -> TaskCallbacks:
        """Answers the pipeline's callback tasks (approvals)."""
        client = self.sfn
        from conveyor.adapters.aws import StepFunctionsCallbacks

        return StepFunctionsCallbacks(client=client)

    def event_publisher(self) -> EventPublisher:
        """Puts registry events on the default event bus."""
        client = self.client("events")
        from conveyor.adapters.aws import EventBridgePublisher

        return EventBridgePublisher(client=client)

    def model_names(self) -> list[str]:
        """Every model with an item in the registry table, sorted (a paginated scan of the keys)."""
        from conveyor.registry import model_pk

        found: set[str] = set()
        prefix = model_pk("")
        arguments: dict[str, Any] = {"TableName": self.output("RegistryTableName"), "ProjectionExpression": "pk"}
        while True:
            page = self.dynamodb.scan(**arguments)
            keys = (item["pk"]["S"] for item in page.get("Items", []))
            found.update(key.split("#", 1)[1] for key in keys if key.startswith(prefix))
            if "LastEvaluatedKey" not in page:
                return sorted(found)
            arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    @cached_property
    def s3(self) -> Any:
        return self.client("s3")

    @cached_property
    def sfn(self) -> Any:
        return self.client("stepfunctions")

    @cached_property
    def dynamodb(self) -> Any:
        return self.client("dynamodb")


def _aws_message(error: Any) -> str:
    detail = error.response.get("Error", {})
    return f"{detail.get('Code', 'error')}: {detail.get('Message', '')}".rstrip(": ")
