"""Fixtures of the serving component tests: a second model that answers differently from the
first, and the serving contract of a spec."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.conftest import DATASET, DEMO_ROW, DEMO_SPEC, TrainedModel

ROW: dict[str, Any] = DEMO_ROW


def demo_spec_data(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(DEMO_SPEC.read_text())
    data.update(changes)
    return data


@pytest.fixture(scope="session")
def other_model() -> TrainedModel:
    """The demo features under a logistic regression: same inputs, visibly different scores."""
    import pandas as pd

    from conveyor.onnx_export import export_onnx
    from conveyor.spec import parse_spec, spec_hash
    from conveyor.training import train_model

    spec = parse_spec(demo_spec_data(estimator={"type": "logistic_regression", "params": {"max_iter": 200}}))
    frame = pd.read_csv(DATASET)
    frame = frame[frame["year"] <= 1985].reset_index(drop=True)
    result = train_model(frame, spec)
    onnx = export_onnx(result.pipeline, spec, classes=result.classes, spec_hash=spec_hash(spec))
    return TrainedModel(spec=spec, result=result, onnx=onnx)


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
    monkeypatch.delenv("CAPTURE_STREAM", raising=False)


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
