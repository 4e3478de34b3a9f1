"""Operating a stack through the CLI on the local cloud: ``conveyor smoke`` (what the deploy workflow
runs against dev) and an erasure request (``impact --erase``), each on a model of its own."""

from __future__ import annotations

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
from conveyor.registry import Registry
from tests.conftest import DATASET, DEMO_ROW, DEMO_SPEC
from tests.e2e.conftest import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local-cloud")]
CONVEYOR = [sys.executable, "-m", "conveyor.cli.main"]


def _state(cloud: Target, tmp_path: Path) -> Path:
    state = tmp_path / "local.json"
    state.write_text(
        json.dumps(
            {"endpoint": cloud.endpoint, "api_url": cloud.api_url, "region": cloud.region, "outputs": cloud.outputs}
        )
    )
    return state


def _versions(cloud: Target, bucket_output: str, prefix: str) -> list[dict[str, Any]]:
    listed = cloud.s3.list_object_versions(Bucket=cloud.output(bucket_output), Prefix=prefix)
    return [*listed.get("Versions", []), *listed.get("DeleteMarkers", [])]


def test_smoke_drops_waits_predicts_and_cleans_up(cloud: Target, tmp_path: Path) -> None:
    done = subprocess.run(
        [*CONVEYOR, "smoke", "--state", str(_state(cloud, tmp_path)), "--json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["ok"] and result["failed"] is None
    assert [s["step"] for s in result["steps"]] == ["spec", "drop", "predict", "cleanup"]
    model = result["model"]
    assert model.startswith("smoke-")
    predicted = next(s for s in result["steps"] if s["step"] == "predict")
    assert predicted["model_version"] == 1 and len(predicted["predictions"]) == 3
    cleanup = next(s for s in result["steps"] if s["step"] == "cleanup")
    assert cleanup["registry_items"] >= 3 and cleanup["object_versions"]["DataBucketName"] >= 1
    # Cleaned away: nothing serves it, nothing of it is left in the registry or the data and artifact buckets.
    assert Registry(cloud.registry_table()).routing(model) is None
    assert model not in cloud.model_names()
    assert not _versions(cloud, "DataBucketName", f"{model}/")
    assert not _versions(cloud, "ArtifactBucketName", f"{model}/")

    def gone() -> bool:  # once the endpoint's routing cache (seconds) expires
        answer = requests.post(f"{cloud.api_url}/models/{model}/predict", json={"instances": [DEMO_ROW]}, timeout=30)
        return answer.status_code == 404

    wait_until(gone, timeout=120, interval=1.0, what="the smoke model no longer served")


def _captured_routing_keys(cloud: Target, model: str) -> list[str]:
    bucket = cloud.output("CaptureBucketName")
    keys = []
    for entry in cloud.s3.list_objects_v2(Bucket=bucket, Prefix=f"{model}/capture/").get("Contents", []):
        body = cloud.s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read()
        keys += [json.loads(line).get("routing_key") for line in body.splitlines() if line.strip()]
    return keys


def test_an_erasure_deletes_every_copy_and_the_capture_records_of_its_entities(cloud: Target, tmp_path: Path) -> None:
    model = "erasure-visits"
    spec = yaml.safe_load(DEMO_SPEC.read_text())
    spec["name"] = model
    artifacts, data = cloud.output("ArtifactBucketName"), cloud.output("DataBucketName")
    cloud.s3.put_object(Bucket=artifacts, Key=f"{model}/spec.yaml", Body=yaml.safe_dump(spec).encode())
    frame = pd.read_csv(DATASET)
    frame = frame[frame["year"].isin([1984, 1985])]
    path = tmp_path / "erasure_1984_1985.csv"
    frame.to_csv(path, index=False)
    state = _state(cloud, tmp_path)
    dropped = subprocess.run(
        [*CONVEYOR, "drop", str(path), "--model", model, "--state", str(state), "--json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert dropped.returncode == 0, dropped.stderr[-3000:]
    drop = json.loads(dropped.stdout)
    erased_entity, other_entity = str(int(frame["id"].iloc[0])), "not-in-the-data"
    for entity in (erased_entity, other_entity):
        answer = requests.post(
            f"{cloud.api_url}/models/{model}/predict",
            json={"instances": [DEMO_ROW]},
            headers={"X-Entity-Key": entity, "X-Request-Id": f"erasure-{entity}"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
    wait_until(
        lambda: {erased_entity, other_entity} <= set(_captured_routing_keys(cloud, model)),
        timeout=60,
        what="both requests captured",
    )
    uri = f"s3://{data}/{drop['key']}"
    erased = subprocess.run(
        [*CONVEYOR, "impact", uri, "--erase", "--reason", "erasure request 9", "--state", str(state), "--json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert erased.returncode == 0, erased.stderr[-3000:]
    document = json.loads(erased.stdout)
    (obj,) = document["objects"]
    erasure = document["erasure"]
    assert erasure["reason"] == "erasure request 9" and erasure["capture"]["records_removed"] == 1
    accepted = f"s3://{data}/{obj['key']}"
    assert erasure["object_versions"][accepted] >= 2  # the object and its validation report
    # Every version of the accepted object, its report and the drop it came from is gone.
    assert not [v for v in _versions(cloud, "DataBucketName", obj["key"]) if v["Key"].startswith(obj["key"])]
    assert not [v for v in _versions(cloud, "DataBucketName", drop["key"]) if v["Key"] == drop["key"]]
    # The capture records of its entity are gone; another entity's stay.
    routing_keys = _captured_routing_keys(cloud, model)
    assert erased_entity not in routing_keys and other_entity in routing_keys
    # Recorded, and never trained on again.
    (recorded,) = cloud.registry_table().query(f"MODEL#{model}", "ERASURE#")
    assert recorded["uri"] == uri and recorded["object_versions"] == erasure["object_versions"]
    (dataset,) = Registry(cloud.registry_table()).datasets(model, include_excluded=True)
    assert dataset["excluded"] is True and dataset["excluded_reason"].startswith("erased")
