"""The validate stage on the in-memory adapters: a drop with a few bad rows is split into its original,
the accepted part and the quarantined part; a repeat of the same upload is still recognised, and
impact still finds the data by the key it was dropped at."""

from __future__ import annotations

import hashlib
import io

import pandas as pd
import yaml

from conveyor import layout
from conveyor.adapters.memory import MemoryEvents, MemoryMetrics, MemoryNotifier, MemoryObjectStore, MemoryTable
from conveyor.config import Settings
from conveyor.stages.context import PipelineContext, StageEvent
from conveyor.stages.validate import validate_drop
from tests.unit.test_validation_corpus import ROWS, SPEC, bad_rows

MODEL = "doctor-visits"
DATA = "data-bucket"
ARTIFACTS = "artifact-bucket"


def _ctx(tolerance: float) -> tuple[PipelineContext, MemoryObjectStore]:
    store = MemoryObjectStore()
    settings = Settings(
        data_bucket=DATA, artifact_bucket=ARTIFACTS, capture_bucket="", registry_table="t", alerts_topic_arn=""
    )
    ctx = PipelineContext(settings, store, MemoryTable(), MemoryNotifier(), MemoryMetrics(), MemoryEvents())
    spec = yaml.safe_load(SPEC.read_text())
    spec["validation"] = {"max_bad_row_share": tolerance}
    store.put(ARTIFACTS, layout.spec_key(MODEL), yaml.safe_dump(spec).encode())
    return ctx, store


def _drop(ctx: PipelineContext, store: MemoryObjectStore, data: bytes, name: str = "drop.csv") -> dict:
    key = f"{MODEL}/incoming/{name}"
    ref = store.put(DATA, key, data)
    detail = {"bucket": {"name": DATA}, "object": {"key": key, "version-id": ref.version_id, "size": len(data)}}
    return validate_drop(StageEvent(state={"detail": detail}, execution_id="e1"), ctx)


def test_a_split_drop_stores_three_parts_and_records_the_accepted_one() -> None:
    ctx, store = _ctx(0.02)
    data = bad_rows([0, 7, 30])()
    result = _drop(ctx, store, data)
    assert result["verdict"] == "accepted" and result["rows_quarantined"] == 3, result["summary"]
    digest = hashlib.sha256(data).hexdigest()
    dataset = result["dataset"]
    assert dataset["key"] == f"{MODEL}/accepted/{digest[:16]}/drop.csv" == result["data_key"]
    assert dataset["rows"] == ROWS - 3 and dataset["source_sha256"] == digest
    accepted = store.get(DATA, dataset["key"])
    assert dataset["sha256"] == hashlib.sha256(accepted).hexdigest() != digest
    assert len(pd.read_csv(io.BytesIO(accepted))) == ROWS - 3
    assert store.get(DATA, dataset["original"]["key"]) == data and dataset["original"]["rows"] == ROWS
    quarantined = dataset["quarantined"]
    assert quarantined["key"] == result["quarantine_key"] == f"{MODEL}/quarantine/{digest[:16]}/drop.csv"
    assert quarantined["rows"] == 3 and len(pd.read_csv(io.BytesIO(store.get(DATA, quarantined["key"])))) == 3
    assert b'"rows_quarantined": 3' in store.get(DATA, quarantined["key"] + ".report.json")
    assert b'"rows_quarantined": 3' in store.get(DATA, result["report_key"])
    # the same upload again is a repeat, though the record holds the accepted part's sha256
    again = _drop(ctx, store, data, "again.csv")
    assert again["verdict"] == "rejected" and "repeats data already accepted" in again["summary"]
    # impact by the key it was dropped at, or where the original is kept
    for key in (f"{MODEL}/incoming/drop.csv", dataset["original"]["key"], dataset["key"]):
        (found,), _ = ctx.registry.impact(MODEL, DATA, key)
        assert found["sha256"] == dataset["sha256"]


def test_without_a_tolerance_the_drop_is_quarantined_whole() -> None:
    ctx, store = _ctx(0.0)
    data = bad_rows([0])()
    result = _drop(ctx, store, data)
    assert result["verdict"] == "rejected" and "dataset" not in result
    assert result["data_key"].startswith(f"{MODEL}/quarantine/") and store.get(DATA, result["data_key"]) == data
