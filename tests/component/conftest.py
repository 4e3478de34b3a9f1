"""Helpers of the component tests: the predict function's environment, the registry table and moto servers.
(The second demo model, ``other_model``, and ``demo_spec_data`` are in tests/conftest.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests

from tests.conftest import DEMO_ROW, demo_spec_data

ROW: dict[str, Any] = DEMO_ROW
__all__ = ["ROW", "create_registry_table", "demo_spec_data", "moto_server", "predict_environment"]


def predict_environment(monkeypatch: pytest.MonkeyPatch, model_dir: Any, **extra: str) -> None:
    """The predict function's environment (as the stack sets it) against in-process moto."""
    env = {
        "DATA_BUCKET": "data",
        "ARTIFACT_BUCKET": "artifacts",
        "CAPTURE_BUCKET": "capture",
        "REGISTRY_TABLE": "registry",
        "ROUTING_CACHE_SECONDS": "0",
        "MAX_BATCH_ROWS": "50",
        "CONVEYOR_MODEL_DIR": str(model_dir),
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "k",
        "AWS_SECRET_ACCESS_KEY": "s",
        **extra,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("CAPTURE_DELIVERY", raising=False)
    monkeypatch.delenv("CONVEYOR_LEAN_AWS", raising=False)


def create_registry_table(dynamodb: Any, name: str = "registry") -> None:
    """The registry table as infra/constructs/registry.py declares it (keys pk/sk)."""
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )


@contextmanager
def moto_server() -> Iterator[tuple[str, int]]:
    """A moto server on a free port, yielding its endpoint and port, with empty backends.

    Every moto server started in this process shares the process's moto backends, so a test would
    otherwise meet the tables, functions and alarms an earlier test left on another server in the
    same pytest-xdist worker (``CreateTable``: "Table already exists: registry"). The backends are
    reset when the server starts and again when it stops."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
    try:
        yield endpoint, port
    finally:
        requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
        server.stop()
