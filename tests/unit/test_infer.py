from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from conveyor.cli.data_commands import init, validate
from conveyor.errors import DataError
from conveyor.infer import infer_spec, parse_condition, spec_yaml
from conveyor.spec import load_spec
from conveyor.validation import validate_bytes


def _findings(findings: list[dict], kind: str) -> dict[str, str]:
    return {f["column"]: f["reason"] for f in findings if f["kind"] == kind}


def test_init_on_the_real_dataset(full_df: pd.DataFrame) -> None:
    spec, findings = infer_spec(full_df, "doctor-visits", "docvis", positive_when="gt:0")
    assert set(_findings(findings, "identifier")) == {"Unnamed: 0", "id"}
    assert spec["identifiers"] == ["Unnamed: 0", "id"]
    encodings = _findings(findings, "duplicated_encoding")
    assert set(encodings) == {"edlevel1", "edlevel2", "edlevel3", "edlevel4"}
    assert encodings["edlevel3"] == "duplicated encoding: one-hot of edlevel == 3"
    assert spec["time_column"] == "year"
    assert spec["task"] == "classification" and spec["target"]["positive_when"] == {"op": "gt", "value": 0}
    features = spec["features"]
    assert "docvis" not in features and not {"id", "Unnamed: 0", "year", "edlevel1"} & set(features)
    assert features["edlevel"] == {"type": "category", "allowed": ["1", "2", "3", "4"]}
    assert features["female"] == {"type": "boolean"}
    assert features["age"]["type"] == "integer"
    low, high = features["age"]["range"]
    assert 20 <= low <= 25 and 64 <= high <= 70
    assert features["hhninc"]["type"] == "number" and features["hhninc"]["range"][0] == 0

    text = spec_yaml(spec, findings, source="german.csv")
    assert "#   edlevel1: duplicated encoding: one-hot of edlevel == 1" in text
    assert "#   Unnamed: 0: identifier: an unnamed index column" in text
    loaded = load_spec(text)
    assert list(loaded.features) == list(features)
    # what init writes accepts the data it was inferred from
    report = validate_bytes(full_df.head(3000).to_csv(index=False).encode(), "sample.csv", loaded)
    assert report.verdict == "accepted", report.summary


def test_init_excludes_copies_leaks_constants_and_free_text() -> None:
    rng = np.random.default_rng(1)
    n = 400
    y = rng.integers(0, 2, n)
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "x": rng.normal(size=n),
            "x_again": None,
            "label_copy": y * 10,
            "country": rng.choice(["de", "fr", "it"], n),
            "comment": [f"free text {i % 200}" for i in range(n)],
            "flag": np.ones(n, dtype=int),
            "signup_date": pd.date_range("2024-01-01", periods=n, freq="h").strftime("%Y-%m-%d %H:%M"),
            "y": y,
        }
    )
    frame["x_again"] = frame["x"]
    spec, findings = infer_spec(frame, "churn", "y")
    assert spec["task"] == "classification"
    assert "customer_id" in _findings(findings, "identifier")
    assert _findings(findings, "duplicated_encoding") == {"x_again": "an exact copy of x"}
    assert "label_copy" in _findings(findings, "leakage")
    assert "flag" in _findings(findings, "constant")
    assert "comment" in _findings(findings, "free_text")
    assert spec["time_column"] == "signup_date"
    assert set(spec["features"]) == {"x", "country"}
    assert spec["features"]["country"]["allowed"] == ["de", "fr", "it"]


def test_infer_errors_and_conditions() -> None:
    with pytest.raises(DataError, match="'nope' is not in the sample"):
        infer_spec(pd.DataFrame({"a": [1]}), "m", "nope")
    assert parse_condition("ge:2.5") == {"op": "ge", "value": 2.5}
    with pytest.raises(DataError, match="op:number"):
        parse_condition("bigger:1")


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command()(validate)
    app.command()(init)
    return app


def test_cli_init_then_validate(tmp_path: Path, sample_df: pd.DataFrame, spec_path: Path) -> None:
    data = tmp_path / "sample.csv"
    sample_df.to_csv(data, index=False)
    out = tmp_path / "spec.yaml"
    runner = CliRunner()
    result = runner.invoke(
        _app(),
        ["init", "visits", "--from", str(data), "--target", "docvis", "--out", str(out), "--positive-when", "gt:0"],
    )
    assert result.exit_code == 0, result.output
    assert load_spec(out).name == "visits"

    accepted = runner.invoke(_app(), ["validate", str(data), "--spec", str(spec_path), "--json"])
    assert accepted.exit_code == 0, accepted.output
    document = json.loads(accepted.stdout)
    assert document["verdict"] == "accepted"
    for check in document["checks"]:  # every check: name, severity, measured value, threshold, message
        assert {"name", "severity", "passed", "value", "threshold", "message", "column", "details"} <= set(check)
        if check["column"] is not None:
            assert check["column"] in check["message"], check
    checks = {(c["name"], c["column"]): c for c in document["checks"]}
    assert (checks["not_empty", None]["value"], checks["not_empty", None]["threshold"]) == (2000, 1)
    assert (checks["range", "age"]["value"], checks["range", "age"]["threshold"]) == (0.0, 0.01)
    assert (checks["type", "hhninc"]["value"], checks["type", "hhninc"]["threshold"]) == (0, 0)
    assert (checks["allowed", "edlevel"]["value"], checks["allowed", "edlevel"]["threshold"]) == (0, 0)
    assert (checks["target", "docvis"]["value"], checks["target", "docvis"]["threshold"]) == (2, 2)
    leakage = checks["leakage", None]
    assert leakage["threshold"] == 0.98 and leakage["value"] == max(leakage["details"]["strength"].values())
    assert 0.5 <= leakage["value"] < 0.98

    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps({"rows": 100_000, "features": {"edlevel": {"categories": {"1": 5}}}}))
    warned = runner.invoke(_app(), ["validate", str(data), "--spec", str(spec_path), "--reference", str(profile)])
    assert warned.exit_code == 1, warned.output
    assert "row_count" in warned.stdout
    warned_json = runner.invoke(
        _app(), ["validate", str(data), "--spec", str(spec_path), "--reference", str(profile), "--json"]
    )
    assert warned_json.exit_code == 1, warned_json.output
    flagged = {c["name"]: c for c in json.loads(warned_json.stdout)["checks"] if not c["passed"]}
    assert flagged["row_count"]["severity"] == "warn"
    assert (flagged["row_count"]["value"], flagged["row_count"]["threshold"]) == (2000, 20_000)
    assert set(flagged) == {"row_count"}  # edlevel has allowed values: the reference's categories do not apply

    broken = tmp_path / "broken.csv"
    sample_df.drop(columns=["docvis"]).to_csv(broken, index=False)
    rejected = runner.invoke(_app(), ["validate", str(broken), "--spec", str(spec_path), "--json"])
    assert rejected.exit_code == 2
    document = json.loads(rejected.stdout)
    assert document["verdict"] == "rejected"
    (missing,) = [c for c in document["checks"] if not c["passed"]]
    assert (missing["name"], missing["column"], missing["severity"]) == ("required_column", "docvis", "error")
    assert missing["message"] == "docvis missing (required target column)"
    assert missing["value"] is None and missing["threshold"] is None  # nothing to measure

    bad_spec = tmp_path / "bad.yaml"
    bad_spec.write_text("name: x\n")
    assert runner.invoke(_app(), ["validate", str(data), "--spec", str(bad_spec)]).exit_code == 2


def test_init_flags_unique_per_row_columns_without_id_like_names() -> None:
    rng = np.random.default_rng(5)
    n = 300
    frame = pd.DataFrame(
        {
            "ticket": [f"T{code:06d}" for code in rng.choice(1_000_000, n, replace=False)],  # unique strings
            "seq": rng.permutation(np.arange(5000, 5000 + 3 * n, 3)),  # unique integers, shuffled, not a row number
            "x": rng.normal(size=n),
            "score": rng.integers(0, 500, n),  # integers with repeats: a feature
            "y": rng.integers(0, 2, n),
        }
    )
    assert frame["ticket"].is_unique and frame["seq"].is_unique and not frame["score"].is_unique
    spec, findings = infer_spec(frame, "tickets", "y")
    identifiers = _findings(findings, "identifier")
    assert identifiers == {
        "ticket": "identifier: a distinct value on every row",
        "seq": "identifier: a distinct integer on every row",
    }
    assert spec["identifiers"] == ["ticket", "seq"]
    assert set(spec["features"]) == {"x", "score"}
    assert not _findings(findings, "free_text")  # ticket is an identifier, not free text
    text = spec_yaml(spec, findings, source="tickets.csv")
    assert "#   ticket: identifier: a distinct value on every row" in text
    assert "#   seq: identifier: a distinct integer on every row" in text
    assert set(load_spec(text).features) == {"x", "score"}


def test_init_keeps_unique_measurements_and_small_samples() -> None:
    rng = np.random.default_rng(6)
    n = 300
    frame = pd.DataFrame({"weight": rng.normal(70, 10, n), "y": rng.integers(0, 2, n)})  # unique floats: a measure
    spec, findings = infer_spec(frame, "m", "y")
    assert not _findings(findings, "identifier") and "weight" in spec["features"]
    few = pd.DataFrame({"seq": np.arange(10) * 7, "x": rng.normal(size=10), "y": [0, 1] * 5})
    spec, findings = infer_spec(few, "m", "y")
    assert "seq" not in _findings(findings, "identifier")  # ten rows: too few to call it an identifier
