"""conveyor.layout pins every documented S3 key (README, "S3 layout"); conveyor.workflow is light."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from conveyor import layout

SHA = "0123456789abcdef" * 4


def test_data_bucket_keys() -> None:
    assert layout.incoming_prefix("m") == "m/incoming/"
    assert layout.incoming_key("m", "visits 1986.csv") == "m/incoming/visits 1986.csv"
    accepted = layout.stored_data_key("m", accepted=True, sha256=SHA, filename="v.csv")
    assert accepted == "m/accepted/0123456789abcdef/v.csv"
    quarantined = layout.stored_data_key("m", accepted=False, sha256=SHA, filename="v.csv")
    assert quarantined == "m/quarantine/0123456789abcdef/v.csv"
    assert layout.validation_report_key(quarantined) == "m/quarantine/0123456789abcdef/v.csv.report.json"
    assert layout.drift_report_key(accepted) == "m/accepted/0123456789abcdef/v.csv.drift.json"
    assert layout.labels_prefix("m") == "m/labels/"
    assert layout.batch_prefix("m") == "m/batch/"


def test_artifact_bucket_keys() -> None:
    assert layout.spec_key("m") == "m/spec.yaml"
    assert layout.artifact_key("m", SHA) == f"m/models/sha256-{SHA}.onnx"
    assert layout.contract_key("m", SHA) == f"m/contracts/sha256-{SHA}.json"
    companions = {
        layout.EVIDENCE: "evidence.json",
        layout.REPORT: "report.html",
        layout.SPEC_FILE: "spec.yaml",
        layout.PROFILE: "profile.json",
        layout.CONTRACT: "contract.json",
    }
    for name, file in companions.items():
        assert layout.version_key("m", 7, name) == f"m/versions/7/{file}"
    staged = {layout.CANDIDATE: "candidate.onnx", layout.HOLDOUT: "holdout.parquet", layout.GATES: "gates.json"}
    for name, file in staged.items():
        assert layout.staging_key("m", "exec-1", name) == f"staging/m/exec-1/{file}"
    candidate = layout.staging_key("m", "exec-1", layout.CANDIDATE)
    assert layout.beside(candidate, layout.GATES) == "staging/m/exec-1/gates.json"


def test_capture_keys_by_utc_hour() -> None:
    # 1795000000 is 2026-11-18 11:06:40 UTC
    assert layout.capture_prefix("doctor-visits", 1795000000.0) == "doctor-visits/capture/2026/11/18/11/"
    key = layout.capture_key("doctor-visits", 1795000000.0)
    assert re.fullmatch(r"doctor-visits/capture/2026/11/18/11/[0-9a-f-]{36}\.jsonl", key)
    assert key != layout.capture_key("doctor-visits", 1795000000.0)  # one file per batch


@pytest.mark.parametrize(
    ("key", "model"),
    [
        ("m/incoming/v.csv", "m"),
        ("m/incoming/sub/dir/file.csv", "m"),
        ("m/incoming/", None),
        ("m/accepted/0123/v.csv", None),
        ("/incoming/v.csv", None),
        ("v.csv", None),
    ],
)
def test_model_of_an_incoming_key(key: str, model: str | None) -> None:
    assert layout.model_of_incoming(key) == model


def test_model_of_any_key() -> None:
    assert layout.model_of("m/versions/3/evidence.json") == "m"
    assert layout.model_of(layout.incoming_key("doctor-visits", "a.csv")) == "doctor-visits"


def test_workflow_and_layout_import_nothing_heavy() -> None:
    """The CDK app and the predict path import them: no pandas, scikit-learn, numpy, boto3, pydantic."""
    code = (
        "import sys, conveyor.workflow, conveyor.layout; "
        "heavy = {'pandas', 'sklearn', 'numpy', 'boto3', 'botocore', 'pydantic', 'yaml', 'pyarrow'}; "
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
