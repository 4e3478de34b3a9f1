"""Declared sentinels are missing values: in the model's inputs, in the profile, in training."""

from __future__ import annotations

import numpy as np
import pandas as pd

from conveyor.profile import build_profile
from conveyor.spec import parse_spec
from conveyor.tabular import feature_frame, missing_sentinels
from conveyor.training import build_candidate

SPEC = {
    "name": "m",
    "task": "classification",
    "target": {"column": "y"},
    "features": {
        "x": {"type": "number", "nullable": True, "range": [0, 10], "sentinels": [-1]},
        "plan": {"type": "category", "nullable": True, "sentinels": ["unknown"]},
        "flag": {"type": "boolean", "nullable": True, "sentinels": ["?"]},
    },
    "estimator": {"type": "logistic_regression"},
    "split": {"strategy": "random", "seed": 3},
}


def _frames(rows: int = 400) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The same data with sentinels, and with nulls where the sentinels are."""
    rng = np.random.default_rng(5)
    x = rng.uniform(0, 10, rows)
    plan = rng.choice(["basic", "pro"], rows).astype(object)
    flag = rng.choice(["yes", "no"], rows).astype(object)
    y = (x + rng.normal(0, 2, rows) > 5).astype(int)
    coded = pd.DataFrame({"x": x, "plan": plan, "flag": flag, "y": y})
    coded.loc[::7, "x"] = -1
    coded.loc[::11, "plan"] = "unknown"
    coded.loc[::13, "flag"] = "?"
    nulls = coded.copy()
    nulls.loc[::7, "x"] = np.nan
    nulls.loc[::11, "plan"] = None
    nulls.loc[::13, "flag"] = None
    return coded, nulls


def test_the_model_inputs_and_the_profile_see_sentinels_as_nulls() -> None:
    spec = parse_spec(SPEC)
    coded, nulls = _frames()
    pd.testing.assert_frame_equal(feature_frame(coded, spec), feature_frame(nulls, spec))
    profile = build_profile(coded, spec).to_dict()
    assert profile["features"]["x"]["nulls"] == len(coded[::7])
    assert profile["features"]["plan"]["nulls"] == len(coded[::11])
    assert "unknown" not in profile["features"]["plan"]["frequencies"]
    assert profile["features"]["flag"]["nulls"] == len(coded[::13])
    assert build_profile(coded, spec).to_dict()["features"] == build_profile(nulls, spec).to_dict()["features"]


def test_training_on_sentinels_is_training_on_nulls() -> None:
    spec = parse_spec(SPEC)
    coded, nulls = _frames()
    with_codes, with_nulls = build_candidate(coded, spec), build_candidate(nulls, spec)
    assert with_codes.sha256 == with_nulls.sha256  # the same ONNX model, byte for byte
    assert with_codes.profile["features"] == with_nulls.profile["features"]
    holdout = with_codes.result.holdout_df  # what the gates evaluate on
    assert not (holdout["x"] == -1).any() and holdout["x"].isna().any()
    assert not (holdout["plan"] == "unknown").any()
    assert len(missing_sentinels(coded, spec)) == len(coded)
