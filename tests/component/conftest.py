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
