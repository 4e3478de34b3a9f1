"""Where the CLI sends its calls: the running local cloud, found through its state file."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from conveyor.errors import ConveyorError


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


@dataclass
class Target:
    endpoint: str
    api_url: str
    region: str
    outputs: dict[str, str]

    @classmethod
    def load(cls, state: Path | None = None) -> Target:
        path = state or default_state_path()
        if not path.exists():
            raise TargetError(f"no local cloud is running ({path} not found): start one with `conveyor up`")
        info = json.loads(path.read_text())
        return cls(endpoint=info["endpoint"], api_url=info["api_url"], region=info["region"], outputs=info["outputs"])

    def output(self, name: str) -> str:
        for key, value in self.outputs.items():
            if key == name or key.startswith(name):
                return value
        raise TargetError(f"the stack has no output {name}")

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id="conveyor-local",
            aws_secret_access_key="conveyor-local",  # noqa: S106 - the local cloud's fixed fake credentials
        )

    @cached_property
    def s3(self) -> Any:
        return self.client("s3")

    @cached_property
    def sfn(self) -> Any:
        return self.client("stepfunctions")

    @cached_property
    def dynamodb(self) -> Any:
        return self.client("dynamodb")
