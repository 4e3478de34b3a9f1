from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pandas as pd
from conveyor.spec import ModelSpec
from conveyor.validation import Check, ValidationReport, validate_bytes, validate_frame


def _failed(report: ValidationReport, name: str) -> list[Check]:
    return [c for c in report.checks if c.name == name and not c.passed]


def test_real_sample_is_accepted_with_extra_columns_listed(sample_df: pd.DataFrame, spec: ModelSpec) -> None:
    data = sample_df.to_csv(index=False).encode()
    report = validate_bytes(data, "incoming/1984.csv", spec)
    assert report.verdict == "accepted", report.summary
    assert report.rows == 2000
    assert report.summary.startswith("accepted incoming/1984.csv: 2000 rows")
    (extra,) = _failed(report, "unexpected_columns")
    assert extra.severity == "info"
    assert extra.details["columns"] == ["hospvis", "edlevel1", "edlevel2", "edlevel3", "edlevel4"]
    json.dumps(report.to_dict())


def test_missing_columns_are_named(sample_df: pd.DataFrame, spec: ModelSpec) -> None:
    report = validate_frame(sample_df.drop(columns=["age", "docvis"]), spec, source="x.csv")
    assert report.verdict == "rejected"
    (check,) = _failed(report, "required_columns")
    assert check.message == "missing required column(s): age, docvis"
    assert "age, docvis" in report.summary


def test_non_numeric_values_give_row_examples(sample_df: pd.DataFrame, spec: ModelSpec) -> None:
    frame = sample_df.reset_index(drop=True)
    frame["hhninc"] = frame["hhninc"].astype(object)
    for row in (2, 4, 6, 8, 10, 12, 14):
        frame.loc[row, "hhninc"] = f"n/a{row}"
    report = validate_frame(frame, spec, source="x.csv")
    assert report.verdict == "rejected"
    (check,) = _failed(report, "type")
    assert check.column == "hhninc" and check.details["count"] == 7
    assert [e["row"] for e in check.details["examples"]] == [3, 5, 7, 9, 11]
    assert check.details["examples"][0]["value"] == "n/a2"
    assert "7 value(s) are not number" in check.message


def test_csv_bytes_with_bad_values_are_rejected_not_raised(sample_df: pd.DataFrame, spec: ModelSpec) -> None:
    text = sample_df.head(10).to_csv(index=False)
    lines = text.splitlines()
    header = lines[0].split(",")
    cells = lines[1].split(",")
    cells[header.index('"female"') if '"female"' in header else header.index("female")] = "maybe"
    lines[1] = ",".join(cells)
    report = validate_bytes("\n".join(lines).encode(), "f.csv", spec)
    assert report.verdict == "rejected"
    assert _failed(report, "type")[0].column == "female"


def test_nulls_in_non_nullable_feature(
    sample_df: pd.DataFrame, spec_dict: dict, make_spec: Callable[..., ModelSpec]
) -> None:
    frame = sample_df.reset_index(drop=True)
    frame.loc[[0, 5], "age"] = np.nan
    strict = make_spec()
    report = validate_frame(frame, strict, source="x.csv")
    (check,) = _failed(report, "not_null")
    assert check.column == "age" and check.details == {"count": 2, "examples": [1, 6]}
    assert report.verdict == "rejected"
    features = dict(spec_dict["features"])
    features["age"] = {"type": "number", "nullable": True}
    assert validate_frame(frame, make_spec(features=features), source="x.csv").verdict == "accepted"


def test_single_class_target_is_rejected(sample_df: pd.DataFrame, spec: ModelSpec) -> None:
    frame = sample_df.assign(docvis=3)
    report = validate_frame(frame, spec, source="x.csv")
    (check,) = _failed(report, "target")
    assert "single class" in check.message
    assert report.verdict == "rejected"


def test_non_numeric_target_with_positive_when(sample_df: pd.DataFrame, spec: ModelSpec) -> None:
    report = validate_frame(sample_df.assign(docvis="many"), spec, source="x.csv")
    assert _failed(report, "target")[0].column == "docvis"


def test_unreadable_and_empty_files_give_rejected_reports(spec: ModelSpec) -> None:
    for data, name in [(b"", "a.csv"), (b"\xff\xfe\x00", "b.csv"), (b"garbage", "c.parquet")]:
        report = validate_bytes(data, name, spec)
        assert report.verdict == "rejected"
        assert report.checks[0].name == "readable" and not report.checks[0].passed
        json.dumps(report.to_dict())
    header_only = validate_bytes(b"age,docvis\n", "d.csv", spec)
    assert header_only.verdict == "rejected"
    assert _failed(header_only, "not_empty")
