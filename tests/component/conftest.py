"""Helpers of the component tests: the predict function's environment and the registry table.
(The second demo model, ``other_model``, and ``demo_spec_data`` are in tests/conftest.py.)"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import DEMO_ROW, demo_spec_data

ROW: dict[str, Any] = DEMO_ROW
__all__ = ["ROW", "create_registry_table", "demo_spec_data", "predict_environment"]


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
