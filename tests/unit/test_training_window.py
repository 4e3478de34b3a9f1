"""``training.window`` bounds what a retrain reads; Train hands the data it read over as a manifest
in S3, never as a list in the state."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest
import yaml

from conveyor import layout
from conveyor.errors import SpecError
from conveyor.spec import TrainingWindow, parse_spec
from conveyor.stages.context import StageEvent
from conveyor.stages.train import train_candidate
from conveyor.window import window_datasets
from tests.conftest import DATASET as DEMO_DATA
from tests.unit.test_evidence_bundle import ARTIFACTS, MODEL, _drop, _spec
from tests.unit.test_validate_stage import _ctx

DAY = 86400.0


def _datasets() -> list[dict[str, Any]]:
    return [{"key": f"d{i}", "rows": 100 * (i + 1), "accepted_at": i * DAY} for i in range(5)]


@pytest.mark.parametrize(
    ("window", "keys"),
    [
        (None, ["d0", "d1", "d2", "d3", "d4"]),
        ({"objects": 2}, ["d3", "d4"]),
        ({"days": 2.5}, ["d2", "d3", "d4"]),  # now is day 4.5: accepted since day 2
        ({"rows": 500}, ["d4"]),
        ({"rows": 501}, ["d3", "d4"]),
        ({"rows": 10**9}, ["d0", "d1", "d2", "d3", "d4"]),
    ],
)
def test_the_window_keeps_the_newest_objects(window: dict[str, Any] | None, keys: list[str]) -> None:
    bound = None if window is None else TrainingWindow(**window)
    assert [d["key"] for d in window_datasets(_datasets(), bound, now=4.5 * DAY)] == keys


@pytest.mark.parametrize("window", [{}, {"rows": 10, "days": 1}, {"objects": 0}])
def test_a_window_names_exactly_one_bound(window: dict[str, Any]) -> None:
    spec = _spec()
    spec["training"] = {"window": window}
    with pytest.raises(SpecError, match="window"):
        parse_spec(spec)


def test_train_reads_the_window_and_stages_its_data_as_a_manifest() -> None:
    ctx, store = _ctx(0.0)
    spec = _spec()
    spec["training"] = {"window": {"rows": 1500}}
    store.put(ARTIFACTS, layout.spec_key(MODEL), yaml.safe_dump(spec).encode())
    frame = pd.read_csv(DEMO_DATA).head(3000)
    for i in range(3):
        _drop(ctx, frame.iloc[i * 1000 : (i + 1) * 1000], f"part{i}", at=float(i))
    result = train_candidate(StageEvent(state={"validation": {"model": MODEL}}, execution_id="arn:exec:w"), ctx)
    assert "data" not in result and result["rows"] == 1500 and result["data_objects"] == 2
    assert result["data_key"] == layout.staging_key(MODEL, "w", layout.DATA_MANIFEST)
    manifest = json.loads(store.get(ARTIFACTS, result["data_key"]))
    assert [d["key"] for d in manifest] == [f"{MODEL}/accepted/part1.csv", f"{MODEL}/accepted/part2.csv"]
    assert result["n_train"] + result["n_holdout"] == 1500
