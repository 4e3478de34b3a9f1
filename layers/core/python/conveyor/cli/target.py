"""Where the CLI sends its calls: the running local cloud, found through its state file."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    endpoint: str
    api_url: str
    region: str
    outputs: dict[str, str]
    schedules_url: str = ""  # the local clock's hook (conveyor.localcloud.schedules)
    board_url: str = ""  # the local board (conveyor board), on its own port

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

    def output(self, name: str) -> str:
        for key, value in self.outputs.items():
            if key == name or key.startswith(name):
                return value
        raise TargetError(f"the stack has no output {name}")

    def _connection(self) -> dict[str, Any]:
        return {
            "endpoint_url": self.endpoint,
            "region_name": self.region,
            "aws_access_key_id": "conveyor-local",
            "aws_secret_access_key": "conveyor-local",
        }

    def client(self, service: str) -> Any:
        import boto3  # here, not at import: commands start without it (see tests/benchmarks/test_cli_bench.py)

        return boto3.client(service, **self._connection())

    def resource(self, service: str = "dynamodb") -> Any:
        import boto3

        return boto3.resource(service, **self._connection())

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
