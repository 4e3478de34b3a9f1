"""Batch scoring's domain: chunk planning (CSV byte ranges at line ends, Parquet row groups), the
version that scores a batch, and scoring with bad rows (an error column, never a failed chunk)."""

from __future__ import annotations

import io
import itertools
import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

from conveyor import layout
from conveyor.adapters.memory import MemoryObjectStore
from conveyor.batch import Scorer, plan_chunks, score_frame, score_item, start_batch
from conveyor.batch.plan import BatchError
from conveyor.batch.score import capture_lines, read_item
from conveyor.tabular import feature_frame, onnx_inputs
from tests.conftest import DATASET, TrainedModel

MODEL = "doctor-visits"
DATA, ARTIFACTS, CAPTURE = "data-bucket", "artifact-bucket", "capture-bucket"


def _rows(n: int = 500) -> pd.DataFrame:
    return pd.read_csv(DATASET).head(n).reset_index(drop=True)


def _job(store: MemoryObjectStore, key: str, data: bytes, champion: int | None = 2) -> Any:
    ref = store.put(DATA, key, data)
    return start_batch(
        store,
        bucket=DATA,
        key=key,
        version_id=ref.version_id,
        champion=champion,
        artifact_bucket=ARTIFACTS,
        capture_bucket=CAPTURE,
    )


def test_csv_chunks_are_line_ranges_that_cover_every_row_once() -> None:
    store = MemoryObjectStore()
    frame = _rows()
    data = frame.to_csv(index=False).encode()
    job = _job(store, f"{MODEL}/batch/night.csv", data)
    items = plan_chunks(store, job, chunk_bytes=4096)
    assert len(items) > 5
    assert items[0]["start"] == data.index(b"\n") + 1 and items[-1]["end"] == len(data)
    assert all(a["end"] == b["start"] for a, b in itertools.pairwise(items))
    assert [i["first_row"] for i in items] == list(np.cumsum([1] + [i["rows"] for i in items[:-1]]))
    parts = [read_item(store, item) for item in items]
    assert [len(p) for p in parts] == [i["rows"] for i in items]
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), frame, check_dtype=False)


def test_parquet_chunks_are_row_groups() -> None:
    store = MemoryObjectStore()
    frame = _rows()
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False, row_group_size=120)
    job = _job(store, f"{MODEL}/batch/night.parquet", buffer.getvalue())
    items = plan_chunks(store, job)
    assert [(i["row_group"], i["first_row"], i["rows"]) for i in items] == [
        (0, 1, 120),
        (1, 121, 120),
        (2, 241, 120),
        (3, 361, 120),
        (4, 481, 20),
    ]
    pd.testing.assert_frame_equal(read_item(store, items[3]), frame.iloc[360:480].reset_index(drop=True))


def test_the_version_comes_from_the_key_then_the_tags_then_the_champion() -> None:
    store = MemoryObjectStore()
    assert _job(store, f"{MODEL}/batch/v3/a.csv", b"x\n1\n").model_version == 3
    store.object_tags[(DATA, f"{MODEL}/batch/b.csv")] = {"conveyor-version": "v4"}
    assert _job(store, f"{MODEL}/batch/b.csv", b"x\n1\n").model_version == 4
    assert _job(store, f"{MODEL}/batch/c.csv", b"x\n1\n").model_version == 2
    with pytest.raises(BatchError, match="no serving version"):
        _job(store, f"{MODEL}/batch/d.csv", b"x\n1\n", champion=None)
    with pytest.raises(BatchError, match=r"\.csv or \.parquet"):
        _job(store, f"{MODEL}/batch/e.json", b"{}")
    assert layout.scored_part_key(f"{MODEL}/batch/v3/night.csv", 7) == f"{MODEL}/scored/v3/night/part-00007.csv"


def test_a_bad_row_gets_an_error_and_the_others_are_scored(trained_model: TrainedModel) -> None:
    scorer = Scorer.of(trained_model.onnx, trained_model.spec, 5)
    frame = _rows(50)
    frame["age"] = frame["age"].astype(object)
    frame.loc[3, "age"] = "forty"
    frame.loc[7, "edlevel"] = 9  # not an allowed category
    frame.loc[9, "female"] = None  # a null in a non-nullable feature
    scored = score_frame(frame, scorer, first_row=101, batch_id="b1", now=1_800_000_000.0)
    table = scored.table
    assert list(table.columns[:5]) == ["request_id", "model_version", "prediction", "probabilities", "error"]
    assert scored.rows == 50 and scored.errors == 3
    bad = table["error"].notna().to_numpy()
    assert np.flatnonzero(bad).tolist() == [3, 7, 9]
    assert "age: not number" in table["error"][3] and "edlevel" in table["error"][7] and "female" in table["error"][9]
    assert table.loc[bad, "prediction"].isna().all() and table.loc[~bad, "prediction"].notna().all()
    assert table["request_id"].tolist()[:2] == ["b1-101", "b1-102"] and (table["model_version"] == 5).all()
    good = frame.drop(index=[3, 7, 9])
    expected = trained_model.result.pipeline.predict_proba(feature_frame(good, trained_model.spec))
    probabilities = np.array([list(json.loads(p).values()) for p in table.loc[~bad, "probabilities"]])
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    direct = scorer.model.predict(onnx_inputs(feature_frame(good, trained_model.spec), trained_model.spec))
    assert table.loc[~bad, "prediction"].tolist() == direct.labels.tolist()
    # every row is captured, like online traffic: role batch, its request_id, 400 for a bad row
    records = [json.loads(line) for line in capture_lines(scored.records).decode().splitlines()]
    assert [r["request_id"] for r in records] == table["request_id"].tolist()
    assert {r["role"] for r in records} == {"batch"} and records[3]["status"] == 400 and records[0]["status"] == 200
    assert records[0]["predictions"] == [table["prediction"][0]] and records[3]["predictions"] == []
    assert (
        records[0]["probabilities"] == [json.loads(table["probabilities"][0])] and records[3]["probabilities"] is None
    )
    assert records[0]["inputs"][0]["age"] == frame["age"][0] and records[0]["inputs"][0]["id"] == "***"
    assert set(records[0]) == {
        "model",
        "model_version",
        "role",
        "served",
        "request_id",
        "batch_id",
        "timestamp",
        "latency_ms",
        "status",
        "error_code",
        "inputs",
        "predictions",
        "probabilities",
        "warnings",
    }
    assert records[0]["timestamp"] == 1_800_000_000.0 and records[0]["batch_id"] == "b1"


def test_score_item_writes_the_part_in_the_input_format_and_the_capture(trained_model: TrainedModel) -> None:
    store = MemoryObjectStore()
    frame = _rows(300)
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False, row_group_size=100)
    job = _job(store, f"{MODEL}/batch/v5/night.parquet", buffer.getvalue())
    items = plan_chunks(store, job)
    scorer = Scorer.of(trained_model.onnx, trained_model.spec, 5)
    result = score_item(store, items[1], scorer, now=1_800_000_000.0)
    assert result["key"] == f"{MODEL}/scored/v5/night/part-00001.parquet" and result["rows"] == 100
    part = pd.read_parquet(io.BytesIO(store.get(DATA, result["key"])))
    assert part["row"].tolist() == list(range(101, 201)) and part["error"].isna().all()
    (capture_key,) = store.keys(CAPTURE, f"{MODEL}/capture/")
    lines = store.get(CAPTURE, capture_key).decode().splitlines()
    assert len(lines) == 100 and json.loads(lines[0])["request_id"] == part["request_id"][0]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_conveyor_score_writes_the_scored_file_offline(trained_model: TrainedModel, tmp_path: Any, suffix: str) -> None:
    import yaml
    from typer.testing import CliRunner

    from conveyor.cli.app import app

    (tmp_path / "model.onnx").write_bytes(trained_model.onnx)
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(json.loads(trained_model.spec.model_dump_json())))
    frame = _rows(300)
    frame["age"] = frame["age"].astype(object)
    frame.loc[250, "age"] = "forty"
    data = tmp_path / f"night{suffix}"
    if suffix == ".csv":
        frame.to_csv(data, index=False)
    else:
        frame.astype({"age": str}).to_parquet(data, index=False, row_group_size=100)
    arguments = ["score", str(data), "--model", str(tmp_path), "--version", "7", "--chunk-mb", "0.002", "--json"]
    result = CliRunner().invoke(app, arguments)
    assert (result.exit_code == 1 and result.exception is None) or isinstance(result.exception, SystemExit), (
        result.output,
        result.exception,
    )  # one row could not be scored
    document = json.loads(result.stdout)
    assert document["rows"] == 300 and document["errors"] == 1 and document["chunks"] > 1
    scored = pd.read_csv(document["out"]) if suffix == ".csv" else pd.read_parquet(document["out"])
    assert len(scored) == 300 and scored["row"].tolist() == list(range(1, 301))
    assert scored["error"].notna().sum() == 1 and scored["error"][250].startswith("age: not number")
    assert (scored["model_version"] == 7).all() and scored["prediction"].notna().sum() == 299
