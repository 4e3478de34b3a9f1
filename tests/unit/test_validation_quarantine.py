"""validation.max_bad_row_share: rows with row-level faults set aside, the rest accepted."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from conveyor.cli.app import build_app
from conveyor.validation import REASON_COLUMN, ROW_COLUMN, part_bytes, validate_and_split, validate_bytes
from tests.unit.test_validation_corpus import ROWS, SPEC, _spec, bad_rows, base, csv

TOLERANT = {"validation": {"max_bad_row_share": 0.02}}


def test_a_few_bad_rows_are_set_aside_and_the_rest_accepted() -> None:
    data = bad_rows([0, 7, 30])()  # row 1: 'forty' in age; row 8: -1 in age; row 31: edlevel 7
    report, split = validate_and_split(data, "drop.csv", _spec(TOLERANT))
    assert report.accepted and split is not None, report.summary
    assert report.rows == ROWS and report.rows_quarantined == 3
    assert report.quarantined == {"allowed": 1, "sentinel": 1, "type": 1}
    assert "3 set aside in quarantine" in report.summary
    assert len(split.accepted) == ROWS - 3 and list(split.accepted.columns) == list(base().columns)
    rows = split.quarantined
    assert rows[ROW_COLUMN].tolist() == [1, 8, 31]
    reasons = rows[REASON_COLUMN].tolist()
    assert reasons[0].startswith("age: does not parse as its type") and "'forty'" in reasons[0]
    assert reasons[1].startswith("age: undeclared sentinel")
    assert reasons[2].startswith("edlevel: not an allowed value")
    # the row-level errors became warnings that say their rows were set aside
    flagged = {c.name: c for c in report.checks if not c.passed}
    assert flagged["type"].severity == "warn" and flagged["type"].details["quarantined"] == 1
    assert flagged["quarantine"].value == 3 and flagged["quarantine"].details["checks"] == report.quarantined
    document = json.loads(json.dumps(report.to_dict()))
    assert document["rows_quarantined"] == 3 and document["quarantined"]["type"] == 1
    assert all("fault_rows" not in c for c in document["checks"])
    # the accepted part, written as the pipeline writes it, passes the gate on its own
    again = validate_bytes(part_bytes(split.accepted, "drop.csv"), "drop.csv", _spec(TOLERANT))
    assert again.accepted and again.rows_quarantined == 0 and again.errors == 0, again.summary
    quarantined = pd.read_csv(io.BytesIO(part_bytes(rows, "drop.csv")))
    assert quarantined[ROW_COLUMN].tolist() == [1, 8, 31]


def test_above_the_tolerance_or_without_one_the_whole_file_is_rejected() -> None:
    many = bad_rows(list(range(0, 60, 6)))()  # 10 of 300 rows, above 2%
    report, split = validate_and_split(many, "drop.csv", _spec(TOLERANT))
    assert not report.accepted and split is None and report.rows_quarantined == 0
    few = bad_rows([0])()
    report, split = validate_and_split(few, "drop.csv", _spec({}))  # default 0: today's behaviour
    assert not report.accepted and split is None
    assert {c.name for c in report.failures()} == {"type"}


def test_file_level_faults_always_reject() -> None:
    frame = base()
    frame["age"] = frame["age"].astype(object)
    frame.loc[3, "age"] = "forty"
    data = csv(frame.drop(columns=["educ"]))  # a missing column is not a row-level fault
    report, split = validate_and_split(data, "drop.csv", _spec(TOLERANT))
    assert not report.accepted and split is None
    assert "required_column" in {c.name for c in report.failures()}


def test_parquet_parts_stay_parquet() -> None:
    frame = base()
    frame["edlevel"] = frame["edlevel"].astype(object)
    frame.loc[5, "edlevel"] = 7
    frame["edlevel"] = frame["edlevel"].astype(int)
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    report, split = validate_and_split(buffer.getvalue(), "drop.parquet", _spec(TOLERANT))
    assert report.accepted and split is not None and report.rows_quarantined == 1
    accepted = pd.read_parquet(io.BytesIO(part_bytes(split.accepted, "drop.parquet")))
    assert len(accepted) == ROWS - 1 and accepted["edlevel"].isin([1, 2, 3, 4]).all()


def test_validate_writes_the_parts_and_reports_counts(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.read_text() + "\nvalidation: {max_bad_row_share: 0.02}\n")
    data = tmp_path / "drop.csv"
    data.write_bytes(bad_rows([0, 7, 30])())
    accepted, quarantined = tmp_path / "accepted.csv", tmp_path / "quarantined.csv"
    app = build_app()
    arguments = ["validate", str(data), "--spec", str(spec), "--json"]
    result = CliRunner().invoke(
        app, [*arguments, "--accepted-out", str(accepted), "--quarantine-out", str(quarantined)]
    )
    assert result.exit_code == 1, result.output  # accepted, with rows set aside
    document = json.loads(result.stdout)
    assert document["verdict"] == "accepted" and document["rows_quarantined"] == 3
    assert document["quarantined"] == {"allowed": 1, "sentinel": 1, "type": 1}
    assert len(pd.read_csv(accepted)) == ROWS - 3
    assert pd.read_csv(quarantined)[ROW_COLUMN].tolist() == [1, 8, 31]


@pytest.mark.parametrize("declared", [True, False])
def test_an_undeclared_sentinel_names_the_spec_line_that_would_declare_it(declared: bool) -> None:
    frame = base()
    frame.loc[[3, 9], "educ"] = -1
    overrides: dict = {"features": dict(_spec({}).model_dump()["features"])}
    if declared:
        overrides["features"]["educ"] = {"type": "number", "range": [7, 18], "nullable": True, "sentinels": [-1]}
        report = validate_bytes(csv(frame), "drop.csv", _spec(overrides))
        assert report.accepted, report.summary
        nulls = next(c for c in report.checks if c.name == "not_null" and c.column == "educ")
        assert nulls.value == pytest.approx(2 / ROWS) and "2 of them declared sentinels" in nulls.message
        shown = next(c for c in report.checks if c.name == "declared_sentinels")
        assert shown.details["count"] == 2 and shown.details["values"] == ["-1"]
    else:
        report = validate_bytes(csv(frame), "drop.csv", _spec({}))
        sentinel = next(c for c in report.failures() if c.name == "sentinel")
        assert "declare it with `sentinels: [-1]` under features.educ" in sentinel.message
