"""A corpus of malformed and adversarial drops, built here from a sample of the real data.

Each case: how to build the bytes, the file name, spec overrides, an optional arrival
context, the expected verdict, and the check (name, column) that must say why: a column-level
case needs a check whose ``column`` is that column and whose message names it. Cases with a
``measure`` also pin the check's measured value and threshold.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from conveyor.spec import ModelSpec, parse_spec
from conveyor.validation import ValidationContext, ValidationReport, validate_bytes

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "events" / "data" / "german_health_1984_1988.csv"
SPEC = ROOT / "events" / "specs" / "doctor-visits.yaml"
ROWS = 300


@cache
def _base() -> pd.DataFrame:
    return pd.read_csv(DATA).sample(n=ROWS, random_state=11).reset_index(drop=True)


def base() -> pd.DataFrame:
    """300 real rows (a copy)."""
    return _base().copy()


def csv(frame: pd.DataFrame, **options: Any) -> bytes:
    return frame.to_csv(index=False, **options).encode()


def parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def with_values(column: str, rows: list[int], value: Any) -> Callable[[], bytes]:
    def build() -> bytes:
        frame = base()
        frame[column] = frame[column].astype(object)
        for row in rows:
            frame.loc[row, column] = value
        return csv(frame)

    return build


def zipped() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("data.csv", csv(base()))
    return buffer.getvalue()


def truncated_last_line() -> bytes:
    data = csv(base())
    last_start = data.rstrip(b"\n").rfind(b"\n") + 1
    return data[: last_start + 12]  # a few fields of the last row, no final newline


def ragged_row() -> bytes:
    lines = csv(base()).decode().splitlines()
    lines[5] = lines[5].rsplit(",", 2)[0]  # data row 5 loses two fields
    return ("\n".join(lines) + "\n").encode()


def corrupt_parquet() -> bytes:
    data = bytearray(parquet(base()))
    data[-80:-8] = b"\xff" * 72  # magic bytes intact, footer metadata garbage
    return bytes(data)


def truncated_parquet() -> bytes:
    data = parquet(base())
    return data[: len(data) * 3 // 5]  # an interrupted upload: header and some pages, no footer


def parquet_wrong_types() -> bytes:
    frame = base()
    frame["age"] = frame["age"].map(lambda v: f"{v} years")
    return parquet(frame)


def latin1() -> bytes:
    frame = base().assign(ort="München")
    return frame.to_csv(index=False).encode("latin-1")


def leak_copy() -> bytes:
    return csv(base().assign(docvis_copy=lambda f: f["docvis"]))


def leak_rule() -> bytes:
    return csv(base().assign(visited=lambda f: (f["docvis"] > 0).astype(int)))


def identifier_feature() -> bytes:
    return csv(base().assign(line=np.arange(1, ROWS + 1)))  # a fresh row number


def one_class() -> bytes:
    return csv(base().assign(docvis=0))


def imbalance() -> bytes:
    frame = base().assign(docvis=0)
    frame.loc[[3, 150], "docvis"] = 2
    return csv(frame)


def duplicates() -> bytes:
    frame = base()
    return csv(pd.concat([frame, frame.head(60)], ignore_index=True))


def old_codes() -> bytes:
    frame = base()
    frame["edlevel"] = frame["edlevel"].replace({4: 9})  # 9 is the old code of 4
    return csv(frame)


def duplicate_header() -> bytes:
    data = csv(base())
    return data.replace(b'"hospvis"', b'"age"', 1).replace(b"hospvis", b"age", 1)


def second_category_column() -> bytes:
    frame = base().assign(region=lambda f: np.where(f.index % 2 == 0, "north", "south"))
    frame.loc[[12, 40, 41], "region"] = "west"
    return csv(frame)


def bad_rows(rows: list[int]) -> Callable[[], bytes]:
    """Rows with row-level faults: every third a word in age, the others an undeclared -1 or an unknown code."""

    def build() -> bytes:
        frame = base()
        frame["age"] = frame["age"].astype(object)
        for i, row in enumerate(rows):
            if i % 3 == 0:
                frame.loc[row, "age"] = "forty"
            elif i % 3 == 1:
                frame.loc[row, "age"] = -1
            else:
                frame.loc[row, "edlevel"] = 7
        return csv(frame)

    return build


def yes_no() -> bytes:
    frame = base()
    frame["female"] = frame["female"].map({1: "yes", 0: "no"})
    return csv(frame)


def mixed_booleans() -> bytes:
    frame = base()
    frame["female"] = frame["female"].map({1: "Y", 0: "n"})
    frame["married"] = frame["married"].map({1: "True", 0: "false"})
    return csv(frame)


def mapped(feature_overrides: dict[str, Any]) -> dict[str, Any]:
    spec = yaml.safe_load(SPEC.read_text())
    spec["features"].update(feature_overrides)
    return {"features": spec["features"]}


@dataclass
class Case:
    name: str
    build: Callable[[], bytes]
    verdict: str
    check: str
    column: str | None = None
    filename: str = "drop.csv"
    spec: dict[str, Any] = field(default_factory=dict)
    context: Callable[[bytes], ValidationContext] | None = None
    flagged: bool = True  # False: the named check must pass (the file is fine in that respect)
    measure: tuple[float | None, float | None] | None = None  # (value, threshold) of the explaining check


CASES = [
    Case("empty file", lambda: b"", "rejected", "empty_file"),
    Case("whitespace only", lambda: b"\n\n  \n", "rejected", "empty_file"),
    Case("header only", lambda: csv(base().head(0)), "rejected", "not_empty"),
    Case("semicolon-delimited", lambda: csv(base(), sep=";"), "rejected", "delimiter"),
    Case("tab-delimited", lambda: csv(base(), sep="\t"), "rejected", "delimiter"),
    Case("latin-1 bytes", latin1, "rejected", "encoding"),
    Case("gzip", lambda: gzip.compress(csv(base())), "rejected", "compressed"),
    Case("gzip named .csv.gz", lambda: gzip.compress(csv(base())), "rejected", "compressed", filename="d.csv.gz"),
    Case("zip", zipped, "rejected", "compressed"),
    Case("bzip2", lambda: bz2.compress(csv(base())), "rejected", "compressed"),
    Case("truncated last line", truncated_last_line, "rejected", "truncated"),
    Case("ragged row", ragged_row, "rejected", "ragged_rows", measure=(1, 0)),
    Case("unterminated quote", lambda: csv(base()) + b'"1,2,3\n', "rejected", "ragged_rows"),
    Case("duplicate header", duplicate_header, "rejected", "duplicate_columns", "age", measure=(1, 0)),
    Case("oversized", lambda: csv(base()), "rejected", "file_size", spec={"validation": {"max_file_mb": 0.001}}),
    Case("unsupported suffix", lambda: csv(base()), "rejected", "file_type", filename="drop.json"),
    Case("corrupt parquet", corrupt_parquet, "rejected", "readable", filename="drop.parquet"),
    Case("truncated parquet", truncated_parquet, "rejected", "readable", filename="drop.parquet", measure=(None, None)),
    Case("not parquet at all", lambda: csv(base()), "rejected", "readable", filename="drop.parquet"),
    Case("parquet wrong types", parquet_wrong_types, "rejected", "type", "age", filename="drop.parquet"),
    Case("parquet is fine", lambda: parquet(base()), "accepted", "not_empty", filename="drop.parquet", flagged=False),
    Case("missing target", lambda: csv(base().drop(columns=["docvis"])), "rejected", "required_column", "docvis"),
    Case("missing feature", lambda: csv(base().drop(columns=["hhninc"])), "rejected", "required_column", "hhninc"),
    Case("extra column", lambda: csv(base().assign(notes="x")), "accepted", "unexpected_columns", "notes"),
    Case("'forty' in age", with_values("age", [0, 7], "forty"), "rejected", "type", "age", measure=(2, 0)),
    Case("-1 sentinel in age", with_values("age", [4], -1), "rejected", "sentinel", "age", measure=(1, 0)),
    # 9999 is a declared sentinel of hhninc: a missing value, which the non-nullable feature refuses
    Case("9999 in non-nullable hhninc", with_values("hhninc", [9, 10], 9999), "rejected", "not_null", "hhninc"),
    Case(
        "99999 in hhninc without a range",
        with_values("hhninc", [9], 99999),
        "rejected",
        "sentinel",
        "hhninc",
        spec=mapped({"hhninc": {"type": "number"}}),
    ),
    Case(
        "age out of range (many)",
        with_values("age", list(range(0, 30)), 80),
        "rejected",
        "range",
        "age",
        measure=(30 / ROWS, 0.01),
    ),
    Case("age out of range (one row)", with_values("age", [17], 80), "accepted", "range", "age", measure=(1 / ROWS, 0)),
    Case(
        "hhninc out of range (one row)",
        with_values("hhninc", [21], 45.5),
        "accepted",
        "range",
        "hhninc",
        measure=(1 / ROWS, 0),
    ),
    Case("unseen category", with_values("edlevel", [2, 3], 7), "rejected", "allowed", "edlevel", measure=(2, 0)),
    Case(
        "declared sentinel code in a non-nullable category",
        with_values("edlevel", [5, 6], 0),
        "rejected",
        "not_null",
        "edlevel",
        spec=mapped({"edlevel": {"type": "category", "allowed": [1, 2, 3, 4], "sentinels": [0]}}),
        measure=(2 / ROWS, 0),
    ),
    Case(
        "declared sentinel code in a nullable category",
        with_values("edlevel", [5, 6], 0),
        "accepted",
        "declared_sentinels",
        spec=mapped({"edlevel": {"type": "category", "allowed": [1, 2, 3, 4], "sentinels": [0], "nullable": True}}),
        flagged=False,
    ),
    Case(
        "renamed category handled by mapping",
        old_codes,
        "accepted",
        "allowed",
        "edlevel",
        spec=mapped({"edlevel": {"type": "category", "allowed": [1, 2, 3, 4], "mapping": {9: 4}}}),
        flagged=False,
    ),
    Case(
        "category unseen in the reference",
        with_values("edlevel", [2], 4),
        "accepted",
        "unseen_categories",
        "edlevel",
        spec=mapped({"edlevel": {"type": "category"}}),
        context=lambda _: ValidationContext(reference_categories={"edlevel": ["1", "2", "3"]}),
        measure=(sum(base()["edlevel"] == 4) + 1, 0),
    ),
    Case(
        "category unseen in the reference, second column",
        second_category_column,
        "accepted",
        "unseen_categories",
        "region",
        spec=mapped({"edlevel": {"type": "category"}, "region": {"type": "category"}}),
        context=lambda _: ValidationContext(
            reference_categories={"edlevel": ["1", "2", "3", "4"], "region": ["north", "south"]}
        ),
        measure=(3, 0),
    ),
    Case(
        "nulls in a non-nullable feature",
        with_values("educ", [1, 2], None),
        "rejected",
        "not_null",
        "educ",
        measure=(2 / ROWS, 0.0),
    ),
    Case(
        "nullable feature above max_null_share",
        with_values("hhninc", list(range(0, ROWS, 30)), None),
        "rejected",
        "not_null",
        "hhninc",
        spec=mapped({"hhninc": {"type": "number", "range": [0, 40], "nullable": True, "max_null_share": 0.01}}),
        measure=(10 / ROWS, 0.01),
    ),
    Case(
        "deprecated column still sent",
        lambda: csv(base()),
        "accepted",
        "deprecated_columns",
        "hospvis",
        spec={"deprecated": ["hospvis"], "ignored": ["edlevel1", "edlevel2", "edlevel3", "edlevel4"]},
        measure=(1, 0),
    ),
    Case("boolean that is not", with_values("female", [8], "maybe"), "rejected", "type", "female"),
    Case("duplicate rows", duplicates, "accepted", "duplicates", measure=(60 / (ROWS + 60), 0.05)),
    Case("constant column", lambda: csv(base().assign(married=1)), "accepted", "constant", "married", measure=(1, 2)),
    Case("one-class target", one_class, "rejected", "target", "docvis", measure=(1, 2)),
    Case("target with nulls", with_values("docvis", [5], None), "rejected", "target", "docvis", measure=(1, 0)),
    Case("extreme imbalance", imbalance, "accepted", "class_balance", "docvis", measure=(2 / ROWS, 0.01)),
    Case(
        "leakage: copy of the target",
        leak_copy,
        "rejected",
        "leakage",
        "docvis_copy",
        spec=mapped({"docvis_copy": {"type": "number"}}),
        measure=(1.0, 0.98),
    ),
    Case(
        "leakage: docvis > 0 as a feature",
        leak_rule,
        "rejected",
        "leakage",
        "visited",
        spec=mapped({"visited": {"type": "boolean"}}),
    ),
    Case(
        "identifier as feature",
        identifier_feature,
        "rejected",
        "identifier_feature",
        "line",
        spec=mapped({"line": {"type": "integer"}}),
        measure=(1.0, 1.0),
    ),
    Case(
        "repeated arrival",
        lambda: csv(base()),
        "rejected",
        "repeated_arrival",
        context=lambda data: ValidationContext(accepted_hashes=frozenset({hashlib.sha256(data).hexdigest()})),
    ),
    Case(
        "row count far below usual",
        lambda: csv(base()),
        "accepted",
        "row_count",
        context=lambda _: ValidationContext(usual_rows=19609),
        measure=(ROWS, 0.2 * 19609),
    ),
    Case(
        "fewer rows than min_rows",
        lambda: csv(base()),
        "rejected",
        "min_rows",
        spec={"validation": {"min_rows": 500}},
        measure=(ROWS, 500),
    ),
    Case("BOM-prefixed UTF-8", lambda: b"\xef\xbb\xbf" + csv(base()), "accepted", "not_empty", flagged=False),
    Case("CRLF line endings", lambda: csv(base(), lineterminator="\r\n"), "accepted", "not_empty", flagged=False),
    Case("no final newline", lambda: csv(base()).rstrip(b"\n"), "accepted", "final_newline"),
    Case(
        "declared sentinels in a nullable feature",
        with_values("hhninc", [9, 10, 11], 9999),
        "accepted",
        "declared_sentinels",
        spec=mapped({"hhninc": {"type": "number", "range": [0, 40], "sentinels": [-1, 9999], "nullable": True}}),
        flagged=False,
    ),
    Case(
        "a few bad rows under max_bad_row_share",
        bad_rows([0, 7, 30]),
        "accepted",
        "quarantine",
        spec={"validation": {"max_bad_row_share": 0.02}},
        measure=(3, 0),
    ),
    Case(
        "bad rows over max_bad_row_share",
        bad_rows(list(range(0, 60, 6))),
        "rejected",
        "type",
        "age",
        spec={"validation": {"max_bad_row_share": 0.02}},
    ),
    Case("yes/no booleans", yes_no, "accepted", "type", "female", flagged=False),
    Case("Y/N and True/false booleans", mixed_booleans, "accepted", "type", "married", flagged=False),
    Case(
        "BOM and CRLF",
        lambda: b"\xef\xbb\xbf" + csv(base(), lineterminator="\r\n"),
        "accepted",
        "not_empty",
        flagged=False,
    ),
    Case("columns in another order", lambda: csv(base().iloc[:, ::-1]), "accepted", "target", flagged=False),
    Case(
        "random binary",
        lambda: bytes(np.random.default_rng(3).integers(0, 256, 4096, dtype=np.uint8)),
        "rejected",
        "encoding",
    ),
]


def _spec(overrides: dict[str, Any]) -> ModelSpec:
    data = yaml.safe_load(SPEC.read_text())
    for key, value in overrides.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) and key != "features" else value
    return parse_spec(data)


def _explaining(report: ValidationReport, case: Case) -> list[Any]:
    return [c for c in report.checks if c.name == case.check]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_corpus_case(case: Case) -> None:
    data = case.build()
    context = case.context(data) if case.context is not None else None
    report = validate_bytes(data, case.filename, _spec(case.spec), context=context)
    assert report.verdict == case.verdict, report.summary
    assert report.sha256 == hashlib.sha256(data).hexdigest()
    checks = _explaining(report, case)
    assert checks, f"no {case.check} check in {[c.name for c in report.checks]}"
    if case.verdict == "rejected":
        failed = [c for c in checks if not c.passed and c.severity == "error"]
        assert failed, report.summary
        assert case.check in {c.name for c in report.failures()}
    elif case.flagged:
        failed = [c for c in checks if not c.passed]
        assert failed and all(c.severity in ("warn", "info") for c in failed), report.summary
        assert report.warnings == len(report.failures("warn"))
    else:
        failed = checks
        assert all(c.passed for c in checks) and report.warnings == 0, report.summary
    if case.column is not None:
        naming = [c for c in failed if c.column == case.column and case.column in c.message]
        assert naming, [(c.column, c.message) for c in failed]
        failed = naming
    if case.measure is not None:
        value, threshold = case.measure
        assert any(c.value == pytest.approx(value) and c.threshold == pytest.approx(threshold) for c in failed), [
            (c.value, c.threshold) for c in failed
        ]
    assert "internal_error" not in {c.name for c in report.checks}
    document = json.loads(json.dumps(report.to_dict()))
    for check in document["checks"]:
        assert {"name", "severity", "passed", "message", "column", "value", "threshold", "details"} <= set(check)
    assert report.summary.startswith(case.verdict)


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 25
    assert len({c.name for c in CASES}) == len(CASES)
    assert {c.verdict for c in CASES} == {"accepted", "rejected"}
    assert sum(c.column is not None for c in CASES) >= 25  # cases that must name their column


# How each measured check compares its value with its threshold: "max" fails above the threshold,
# "min" fails below it, "reach" fails at or above it.
DIRECTION = {
    "quarantine": "max",
    "file_size": "max",
    "truncated": "min",
    "ragged_rows": "max",
    "duplicate_columns": "max",
    "not_empty": "min",
    "min_rows": "min",
    "row_count": "min",
    "unexpected_columns": "max",
    "deprecated_columns": "max",
    "type": "max",
    "not_null": "max",
    "sentinel": "max",
    "range": "max",
    "allowed": "max",
    "unseen_categories": "max",
    "constant": "min",
    "identifier_feature": "reach",
    "duplicates": "max",
    "target": "min",  # classes (distinct values) vs 2; null targets: their count vs 0 ("max")
    "class_balance": "min",
    "leakage": "reach",
}
UNMEASURED = {  # no numeric measure: value and threshold are None
    "repeated_arrival",
    "empty_file",
    "compressed",
    "file_type",
    "encoding",
    "delimiter",
    "readable",
    "final_newline",
    "declared_sentinels",
    "required_column",
}


def _crosses(direction: str, value: float, threshold: float) -> bool:
    if direction == "max":
        return value > threshold
    if direction == "min":
        return value < threshold
    return value >= threshold


def test_every_check_measures_what_decided_it() -> None:
    """Over the whole corpus: a check fails exactly when its value crosses its threshold."""
    seen: set[str] = set()
    for case in CASES:
        data = case.build()
        context = case.context(data) if case.context is not None else None
        report = validate_bytes(data, case.filename, _spec(case.spec), context=context)
        for check in report.checks:
            seen.add(check.name)
            where = f"{case.name}: {check.name} {check.column} {check.message}"
            if check.name in UNMEASURED:
                assert (check.value, check.threshold) == (None, None), where
                continue
            if check.name == "target" and check.value is None:  # an unusable target (wrong type)
                assert not check.passed and check.threshold is None, where
                continue
            if check.name == "leakage" and not check.details.get("strength", True):  # too few rows to score
                assert check.passed and check.value is None and "not measured" in check.message, where
                continue
            assert check.name in DIRECTION, where
            assert check.value is not None and check.threshold is not None, where
            direction = "max" if check.name == "target" and "nulls" in check.details else DIRECTION[check.name]
            assert _crosses(direction, check.value, check.threshold) == (not check.passed), where
    assert set(DIRECTION) <= seen, set(DIRECTION) - seen


def test_row_numbers_and_examples_name_the_rows() -> None:
    report = validate_bytes(with_values("age", [0, 7], "forty")(), "drop.csv", _spec({}))
    (check,) = report.failures()
    assert check.details["examples"] == [{"row": 1, "value": "forty"}, {"row": 8, "value": "forty"}]
    assert (
        report.summary == "rejected drop.csv: 1 error (age: 2 value(s) are not number (row 1: 'forty', row 8: 'forty'))"
    )


def test_ragged_rows_keep_the_file_row_numbers() -> None:
    frame = base()
    lines = csv(frame).decode().splitlines()
    lines[5] = lines[5].rsplit(",", 2)[0]
    lines[10] = lines[10].replace(f",{frame.loc[9, 'age']},", ",forty,", 1)  # data row 10
    report = validate_bytes(("\n".join(lines) + "\n").encode(), "drop.csv", _spec({}))
    ragged = next(c for c in report.failures() if c.name == "ragged_rows")
    assert ragged.details["examples"][0]["row"] == 5
    typed = next(c for c in report.failures() if c.name == "type")
    assert typed.details["examples"][0]["row"] == 10  # not shifted by the skipped row 5


def test_delimiter_message_names_the_separator() -> None:
    report = validate_bytes(csv(base(), sep=";"), "drop.csv", _spec({}))
    assert "looks like ';'-separated" in report.failures()[0].message


def test_compressed_message_names_the_compression() -> None:
    report = validate_bytes(zipped(), "drop.csv", _spec({}))
    assert "zip-compressed" in report.failures()[0].message


def test_context_from_profile_documents() -> None:
    short = ValidationContext.from_profile({"rows": 120, "features": {"edlevel": {"categories": {"1": 3, "2": 4}}}})
    assert short.usual_rows == 120 and short.reference_categories == {"edlevel": ["1", "2"]}
    lumped = {"rows": 9, "features": {"edlevel": {"kind": "categorical", "frequencies": {"1": 3, "__other__": 6}}}}
    assert ValidationContext.from_profile(lumped).reference_categories is None
