"""Real-world drops on the local cloud, on a model of its own (``sentinel-visits``): a declared
sentinel is a missing value end to end, and a few bad rows are set aside in quarantine while the
rest trains (``validation.max_bad_row_share``). Public faces only: S3, Step Functions, HTTP and
the CLI."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests
import yaml

from conveyor.cli.target import Target
from tests.conftest import DATASET, DEMO_ROW, DEMO_SPEC
from tests.e2e.test_local_cloud import _wait_for_end

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local-cloud")]
MODEL = "sentinel-visits"
BAD_ROWS = {3: ("age", "forty"), 40: ("age", "forty"), 200: ("edlevel", 7), 900: ("age", -1)}
SENTINEL_ROWS = [10, 11, 12]


@pytest.fixture(scope="module")
def split_drop(cloud: Target, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The spec (hhninc nullable, its sentinels declared; up to 1% bad rows set aside) and one drop
    of 1984 with four bad rows and three declared sentinels, run through the pipeline."""
    spec = yaml.safe_load(DEMO_SPEC.read_text())
    spec["name"] = MODEL
    spec["features"]["hhninc"]["nullable"] = True  # sentinels: [-1, 9999] are missing values
    spec["validation"] = {**spec.get("validation", {}), "max_bad_row_share": 0.01}
    cloud.s3.put_object(
        Bucket=cloud.output("ArtifactBucketName"), Key=f"{MODEL}/spec.yaml", Body=yaml.safe_dump(spec).encode()
    )
    frame = pd.read_csv(DATASET)
    frame = frame[frame["year"] == 1984].reset_index(drop=True)
    frame["age"] = frame["age"].astype(object)
    for row, (column, value) in BAD_ROWS.items():
        frame.loc[row, column] = value
    frame.loc[SENTINEL_ROWS, "hhninc"] = 9999
    path = tmp_path_factory.mktemp("realdata") / "visits_1984.csv"
    frame.to_csv(path, index=False)
    key = f"{MODEL}/incoming/{path.name}"
    cloud.s3.put_object(Bucket=cloud.output("DataBucketName"), Key=key, Body=path.read_bytes())
    execution = _wait_for_end(cloud, key)
    assert execution["status"] == "SUCCEEDED", execution
    return {"rows": len(frame), "data": path.read_bytes(), "output": json.loads(execution["output"])}


def _get(cloud: Target, bucket: str, key: str) -> bytes:
    return cloud.s3.get_object(Bucket=cloud.output(bucket), Key=key)["Body"].read()


def test_a_drop_with_a_few_bad_rows_trains_on_the_good_rows(
    cloud: Target, split_drop: dict[str, Any], tmp_path: Path
) -> None:
    validation = split_drop["output"]["validation"]
    assert validation["verdict"] == "accepted" and validation["rows_quarantined"] == len(BAD_ROWS)
    # the rows set aside, with a reason each, and the report beside them
    quarantined = pd.read_csv(io.BytesIO(_get(cloud, "DataBucketName", validation["quarantine_key"])))
    assert sorted(quarantined["quarantine_row"]) == sorted(row + 1 for row in BAD_ROWS)
    assert quarantined["quarantine_reason"].str.len().gt(0).all()
    report = json.loads(_get(cloud, "DataBucketName", validation["quarantine_key"] + ".report.json"))
    assert report["rows_quarantined"] == len(BAD_ROWS)
    assert report["quarantined"] == {"allowed": 1, "sentinel": 1, "type": 2}
    assert report["parts"]["quarantined"]["key"] == validation["quarantine_key"]
    declared = next(c for c in report["checks"] if c["name"] == "declared_sentinels")
    assert declared["column"] == "hhninc" and declared["details"]["count"] == len(SENTINEL_ROWS)
    # the accepted part is what trained: the good rows only
    good = split_drop["rows"] - len(BAD_ROWS)
    accepted = pd.read_csv(io.BytesIO(_get(cloud, "DataBucketName", validation["data_key"])))
    assert len(accepted) == good and "quarantine_reason" not in accepted.columns
    version = split_drop["output"]["registration"]["version"]
    state = tmp_path / "local.json"
    state.write_text(
        json.dumps(
            {"endpoint": cloud.endpoint, "api_url": cloud.api_url, "region": cloud.region, "outputs": cloud.outputs}
        )
    )
    shown = subprocess.run(
        [sys.executable, "-m", "conveyor.cli.main", "lineage", MODEL, str(version), "--state", str(state), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    lineage = json.loads(shown.stdout)["lineage"]
    assert lineage["n_train"] + lineage["n_holdout"] == good
    (data,) = lineage["data"]
    assert data["key"] == validation["data_key"] and data["rows"] == good
    assert data["quarantined"]["key"] == validation["quarantine_key"]
    assert data["quarantined"]["rows"] == len(BAD_ROWS) and len(data["quarantined"]["sha256"]) == 64
    original = data["original"]
    assert original["rows"] == split_drop["rows"] and original["version_id"]
    assert _get(cloud, "DataBucketName", original["key"]) == split_drop["data"]  # kept as received
    assert original["sha256"] == hashlib.sha256(split_drop["data"]).hexdigest()
    assert len({data["sha256"], original["sha256"], data["quarantined"]["sha256"]}) == 3


def test_a_declared_sentinel_in_a_request_is_scored_as_a_null(cloud: Target, split_drop: dict[str, Any]) -> None:
    def predict(hhninc: Any) -> dict[str, Any]:
        response = requests.post(
            f"{cloud.api_url}/models/{MODEL}/predict",
            json={"instances": [{**DEMO_ROW, "hhninc": hhninc}]},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return response.json()

    with_sentinel, with_null = predict(9999), predict(None)
    assert with_sentinel["probabilities"] == with_null["probabilities"]
    (warning,) = with_sentinel["warnings"]
    assert warning["field"] == "hhninc" and "scored as missing" in warning["message"]
    assert not with_null.get("warnings")
