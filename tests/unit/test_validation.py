from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

import numpy as np
import pandas as pd

from conveyor.spec import ModelSpec
from conveyor.validation import Check, ValidationReport, validate_bytes, validate_frame


def _failed(report: ValidationReport, name: str) -> list[Check]:
    return [c for c in report.checks if c.name == name and not c.passed]


def test_real_sample_is_accepted_without_warnings(sample_df: pd.DataFrame, spec: ModelSpec) -> None:
    data = sample_df.to_csv(index=False).encode()
    report = validate_bytes(data, "incoming/1984.csv", spec)
    assert report.verdict == "accepted", report.summary
    assert report.rows == 2000
    assert report.summary == "accepted incoming/1984.csv: 2000 rows, 18 columns"
    assert (report.errors, report.warnings) == (0, 0)
    assert report.sha256 == hashlib.sha256(data).hexdigest()
    document = report.to_dict()
    assert {"verdict", "checks", "rows", "columns", "summary", "sha256", "errors", "warnings"} <= set(document)
    json.dumps(document)


def test_columns_not_in_the_spec_warn(sample_df: pd.DataFrame, make_spec: Callable[..., ModelSpec]) -> None:
    report = validate_frame(sample_df, make_spec(ignored=[]), source="x.csv")
    assert report.verdict == "accepted"
    (extra,) = _failed(report, "unexpected_columns")
    assert extra.severity == "warn"
    assert extra.details["columns"] == ["hospvis", "edlevel1", "edlevel2", "edlevel3", "edlevel4"]
    assert report.warnings == 1
    assert report.summary.startswith("accepted x.csv with 1 warning: 2000 rows, 18 columns (columns not in the spec")


def test_deprecated_columns_warn_and_are_ignored(sample_df: pd.DataFrame, make_spec: Callable[..., ModelSpec]) -> None:
    spec = make_spec(ignored=["edlevel1", "edlevel2", "edlevel3", "edlevel4"], deprecated=["hospvis"])
    report = validate_frame(sample_df, spec, source="x.csv")
    assert report.verdict == "accepted"
    (check,) = _failed(report, "deprecated_columns")
    assert check.severity == "warn" and check.column == "hospvis"
    assert not _failed(report, "unexpected_columns")


def test_missing_columns_are_named_one_check_each(sample_df: pd.DataFrame, spec: ModelSpec) -> None:
    report = validate_frame(sample_df.drop(columns=["age", "docvis"]), spec, source="x.csv")
    assert report.verdict == "rejected"
    missing = _failed(report, "required_column")
    assert [(c.column, c.message) for c in missing] == [
        ("age", "age missing (required feature column)"),
        ("docvis", "docvis missing (required target column)"),
    ]
    assert report.errors == 2
    assert report.summary.startswith("rejected x.csv: 2 errors (age missing")
    assert "docvis missing" in report.summary


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
    assert check.column == "age" and check.details["count"] == 2 and check.details["examples"] == [1, 6]
    assert check.details["max_share"] == 0.0
    assert report.verdict == "rejected"
    features = dict(spec_dict["features"])
    features["age"] = {"type": "number", "nullable": True}
    assert validate_frame(frame, make_spec(features=features), source="x.csv").verdict == "accepted"
    features["age"] = {"type": "number", "nullable": True, "max_null_share": 0.0005}
    capped = validate_frame(frame, make_spec(features=features), source="x.csv")
    assert _failed(capped, "not_null")[0].message == "age: 2 null value(s) (0.1%) above max_null_share 0.0005"


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
    cases = [
        (b"", "a.csv", "empty_file"),
        (b"\xff\xfe\x00", "b.csv", "encoding"),
        (b"garbage", "c.parquet", "readable"),
    ]
    for data, name, check in cases:
        report = validate_bytes(data, name, spec)
        assert report.verdict == "rejected"
        assert report.checks[0].name == check and not report.checks[0].passed
        json.dumps(report.to_dict())
    header_only = validate_bytes(b"age,docvis\n", "d.csv", spec)
    assert header_only.verdict == "rejected"
    assert _failed(header_only, "not_empty")
