"""Fixtures of the serving component tests: a second model that answers differently from the
first, and the serving contract of a spec."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.conftest import DATASET, DEMO_SPEC, TrainedModel

# One row of the demo features; every value inside the spec's ranges.
ROW: dict[str, Any] = {
    "age": 40,
    "hhninc": 3.0,
    "educ": 12,
    "female": 1,
    "married": 1,
    "kids": 0,
    "outwork": 0,
    "self": 0,
    "edlevel": "1",
}


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
