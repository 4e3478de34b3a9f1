"""Fixtures shared by every test folder."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DATASET = ROOT / "events" / "data" / "german_health_1984_1988.csv"
DEMO_SPEC = ROOT / "events" / "specs" / "doctor-visits.yaml"
# One request row of the demo spec's features, every value inside the spec's ranges.
DEMO_ROW = {
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


@pytest.fixture(scope="session", autouse=True)
def _own_data_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A `conveyor up` a test starts without --data-dir keeps its state here, never in the user's .conveyor/data."""
    os.environ["CONVEYOR_DATA_DIR"] = str(tmp_path_factory.mktemp("conveyor-data"))


@dataclass
class TrainedModel:
    spec: Any
    result: Any
    onnx: bytes


@pytest.fixture(scope="session")
def trained_model() -> TrainedModel:
    """The demo spec trained on 1984-1985 (the same code the train Lambda runs)."""
    import pandas as pd

    from conveyor.onnx_export import export_onnx
    from conveyor.spec import load_spec, spec_hash
    from conveyor.training import train_model

    spec = load_spec(DEMO_SPEC.read_bytes())
    frame = pd.read_csv(DATASET)
    frame = frame[frame["year"] <= 1985].reset_index(drop=True)
    result = train_model(frame, spec)
    onnx = export_onnx(result.pipeline, spec, classes=result.classes, spec_hash=spec_hash(spec))
    return TrainedModel(spec=spec, result=result, onnx=onnx)


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
