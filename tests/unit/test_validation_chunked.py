"""The gate on a file read in chunks gives the same report as on the file read whole: every case
of the malformed-file corpus, with chunks of a few dozen rows."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from conveyor.validation import part_bytes, validate_and_split
from conveyor.validation.chunked import validate_file
from tests.unit.test_validation_corpus import CASES, ROWS, Case, _spec, bad_rows, base, csv

SMALL_BLOCK = 2048  # bytes of CSV: about 20 rows of the corpus per chunk
SMALL_BATCH = 23  # rows of Parquet per batch


def _document(report: Any) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(json.dumps(report.to_dict()))
    return document


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_chunked_report_equals_whole_file_report(case: Case, tmp_path: Path) -> None:
    data = case.build()
    context = case.context(data) if case.context is not None else None
    spec = _spec(case.spec)
    whole, _ = validate_and_split(data, case.filename, spec, context=context)
    path = tmp_path / case.filename
    path.write_bytes(data)
    chunked, _ = validate_file(
        path, case.filename, spec, context=context, block_size=SMALL_BLOCK, batch_rows=SMALL_BATCH
    )
    assert chunked.verdict == whole.verdict == case.verdict
    assert _document(chunked) == _document(whole)


LATE_FAULTS = [
    # a value late in the file that the first chunk's types cannot hold: the column is read again, wider
    Case("word late in an integer column", lambda: _late("age", 280, "forty"), "rejected", "type", "age"),
    Case("fraction late in an integer column", lambda: _late("edlevel", 250, 2.5), "rejected", "allowed", "edlevel"),
    Case("sentinel late", lambda: _late("age", 290, -1), "rejected", "sentinel", "age"),
    Case("unknown code late", lambda: _late("edlevel", 299, 7), "rejected", "allowed", "edlevel"),
    Case("null target late", lambda: _late("docvis", 270, None), "rejected", "target", "docvis"),
]


def _late(column: str, row: int, value: Any) -> bytes:
    frame = base()
    frame[column] = frame[column].astype(object)
    frame.loc[row, column] = value
    return csv(frame)


@pytest.mark.parametrize("case", LATE_FAULTS, ids=[c.name for c in LATE_FAULTS])
def test_a_late_fault_gives_the_same_report(case: Case, tmp_path: Path) -> None:
    data = case.build()
    spec = _spec(case.spec)
    whole, _ = validate_and_split(data, case.filename, spec)
    path = tmp_path / case.filename
    path.write_bytes(data)
    chunked, _ = validate_file(path, case.filename, spec, block_size=SMALL_BLOCK)
    assert whole.verdict == case.verdict
    assert case.check in {c.name for c in whole.failures()}
    assert _document(chunked) == _document(whole)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_the_split_is_written_chunk_by_chunk_with_the_same_rows(suffix: str, tmp_path: Path) -> None:
    faulty = [0, 7, 30, 151, 298]
    data = bad_rows(faulty)()
    if suffix == ".parquet":
        data = _parquet(pd.read_csv(io.BytesIO(data)))
    spec = _spec({"validation": {"max_bad_row_share": 0.02}})
    whole, whole_split = validate_and_split(data, f"drop{suffix}", spec)
    path = tmp_path / f"drop{suffix}"
    path.write_bytes(data)
    chunked, split = validate_file(
        path, f"drop{suffix}", spec, parts_dir=tmp_path / "parts", block_size=SMALL_BLOCK, batch_rows=SMALL_BATCH
    )
    assert whole_split is not None and split is not None
    assert _document(chunked) == _document(whole)
    assert (split.accepted_rows, split.quarantined_rows) == (ROWS - len(faulty), len(faulty))
    read = pd.read_parquet if suffix == ".parquet" else pd.read_csv
    for written, part in ((split.accepted, whole_split.accepted), (split.quarantined, whole_split.quarantined)):
        expected = read(io.BytesIO(part_bytes(part, f"drop{suffix}")))
        pd.testing.assert_frame_equal(read(written), expected, check_dtype=False)


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def test_leakage_on_a_reservoir_still_finds_a_copy_of_the_target(tmp_path: Path, monkeypatch: Any) -> None:
    """Past the sample size, leakage is measured on a uniform reservoir of the rows: a feature that
    copies the target is found all the same."""
    from functools import partial

    import conveyor.validation.frame as frame_module
    from conveyor.validation.leakage import LeakageSample

    monkeypatch.setattr(frame_module, "LeakageSample", partial(LeakageSample, limit=120))
    spec_overrides = next(c for c in CASES if c.name == "leakage: copy of the target").spec
    data = csv(base().assign(docvis_copy=lambda f: f["docvis"]))
    path = tmp_path / "drop.csv"
    path.write_bytes(data)
    report, _ = validate_file(path, "drop.csv", _spec(spec_overrides), block_size=SMALL_BLOCK)
    leaks = [c for c in report.failures() if c.name == "leakage"]
    assert [c.column for c in leaks] == ["docvis_copy"]
    assert leaks[0].value == pytest.approx(1.0)


def test_an_oversized_file_is_refused_before_a_row_is_read(tmp_path: Path) -> None:
    path = tmp_path / "drop.csv"
    path.write_bytes(csv(base()))
    report, _ = validate_file(path, "drop.csv", _spec({"validation": {"max_file_mb": 0.001}}))
    assert [c.name for c in report.failures()] == ["file_size"]
    assert report.rows == 0
