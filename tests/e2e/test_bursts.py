"""Bursts of drops on the local cloud, through public faces (S3, the Step Functions API, the CLI, the
registry table through the same Registry the CLI uses): one retrain per burst, and a promotion that
cannot race (compare-and-set on the champion).

Each test has a model of its own, so the order of tests changes nothing.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from conveyor.adapters.aws import DynamoTable
from conveyor.cli import follow as following
from conveyor.cli.common import ExitCode
from conveyor.cli.target import Target
from conveyor.registry import ModelVersion, Registry
from tests.conftest import DATASET, DEMO_SPEC

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local-cloud")]
PARTS = 20
DEADLINE = 600  # seconds: generous, for a loaded machine


def _spec(model: str, **retrain: Any) -> bytes:
    spec = yaml.safe_load(DEMO_SPEC.read_text())
    spec["name"] = model
    # Loose gates: what is tested is how runs coalesce and promote, not the gates.
    spec["gates"] = {"primary_metric": "roc_auc", "max_degradation": 1.0, "min_agreement": 0.0, "max_flip_rate": 1.0}
    spec["retrain"] = {"on_drift": True, "min_new_rows": 1, "schedule": None, "batch_window_seconds": 1, **retrain}
    return yaml.safe_dump(spec).encode()


def _rows(years: list[int], n: int, seed: int = 0) -> pd.DataFrame:
    frame = pd.read_csv(DATASET)
    return frame[frame["year"].isin(years)].sample(n, random_state=seed).reset_index(drop=True)


def _csv(frame: pd.DataFrame) -> bytes:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue().encode()


def _wait(what: str, check: Callable[[], Any], timeout: float = DEADLINE) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    pytest.fail(f"{what}: not within {timeout} s")


def _executions(cloud: Target, prefix: str) -> dict[str, dict[str, Any]]:
    """The executions of drops under ``prefix``, by dropped key (described)."""
    found: dict[str, dict[str, Any]] = {}
    pages = cloud.sfn.get_paginator("list_executions").paginate(stateMachineArn=cloud.output("StateMachineArn"))
    for page in pages:
        for execution in page["executions"]:
            described = cloud.sfn.describe_execution(executionArn=execution["executionArn"])
            key = ((json.loads(described["input"]).get("detail") or {}).get("object") or {}).get("key", "")
            if key.startswith(prefix):
                found[key] = described
    return found


def _states_entered(cloud: Target, arn: str) -> list[str]:
    events = cloud.sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    return [e["stateEnteredEventDetails"]["name"] for e in events if e["type"].endswith("StateEntered")]


def _put(cloud: Target, key: str, body: bytes) -> None:
    cloud.s3.put_object(Bucket=cloud.output("DataBucketName"), Key=key, Body=body)


def _table(cloud: Target) -> DynamoTable:
    import boto3

    resource = boto3.resource(
        "dynamodb",
        endpoint_url=cloud.endpoint,
        region_name=cloud.region,
        aws_access_key_id="conveyor-local",
        aws_secret_access_key="conveyor-local",
    )
    return DynamoTable(cloud.output("RegistryTableName"), resource=resource)


def _registry(cloud: Target) -> Registry:
    return Registry(_table(cloud))


def _first_version(cloud: Target, model: str, spec: bytes) -> None:
    cloud.s3.put_object(Bucket=cloud.output("ArtifactBucketName"), Key=f"{model}/spec.yaml", Body=spec)
    key = f"{model}/incoming/first.csv"
    _put(cloud, key, _csv(_rows([1984, 1985], 2500)))
    done = _wait("v1's execution", lambda: [e for e in _executions(cloud, key).values() if e["status"] != "RUNNING"])
    assert done[0]["status"] == "SUCCEEDED", done[0]


def test_a_burst_of_part_files_trains_once_and_serves_one_new_version(cloud: Target) -> None:
    model = "burst-visits"
    _first_version(cloud, model, _spec(model, wait_for="_SUCCESS"))
    registry = _registry(cloud)
    assert registry.champion(model).version == 1  # type: ignore[union-attr]
    folder = f"{model}/incoming/export-1"
    parts = _rows([1986, 1987], PARTS * 60, seed=1)
    bodies = {f"{folder}/part-{i:05d}.csv": _csv(parts.iloc[i * 60 : (i + 1) * 60]) for i in range(PARTS)}
    # What a Spark export writes beside its parts: ignored by the dispatcher (no execution, no quarantine).
    junk = {
        f"{folder}/.part-00000.csv.crc": b"crc",
        f"{folder}/_temporary/0/part-00000.csv": bodies[f"{folder}/part-00000.csv"],
        f"{folder}/_committed_123": b"{}",
    }
    with ThreadPoolExecutor(max_workers=8) as pool:  # dropped at once
        list(pool.map(lambda item: _put(cloud, *item), [*bodies.items(), *junk.items()]))

    def all_claimed() -> dict[str, dict[str, Any]] | None:
        executions = _executions(cloud, folder)
        folded = [e for e in executions.values() if e["status"] == "SUCCEEDED"]
        return executions if len(executions) == PARTS and len(folded) == PARTS - 1 else None

    executions = _wait("19 drops folded into one run", all_claimed)
    assert set(executions) == set(bodies)  # the junk started nothing
    (owner,) = [e for e in executions.values() if e["status"] == "RUNNING"]
    assert "Train" not in _states_entered(cloud, owner["executionArn"])  # waits for the export's marker
    _put(cloud, f"{folder}/_SUCCESS", b"")
    ended = _wait(
        "the owner's run",
        lambda: (d := cloud.sfn.describe_execution(executionArn=owner["executionArn"]))["status"] != "RUNNING" and d,
    )
    assert ended["status"] == "SUCCEEDED", ended
    # 20 validation reports, each drop validated on its own.
    outputs = [
        json.loads(cloud.sfn.describe_execution(executionArn=e["executionArn"])["output"]) for e in executions.values()
    ]
    reports = {o["validation"]["report_key"] for o in outputs}
    assert len(reports) == PARTS
    for report in reports:
        cloud.s3.head_object(Bucket=cloud.output("DataBucketName"), Key=report)
    # Every folded drop names the run that trains on it; `conveyor drop` would exit 5.
    for output, execution in zip(outputs, executions.values(), strict=True):
        if execution["executionArn"] != owner["executionArn"]:
            assert output["claim"]["outcome"] == "folded" and output["claim"]["owner"] == owner["executionArn"]
            outcome = following.follow(cloud.sfn, execution["executionArn"], timeout=30)
            assert outcome.final_state == "Folded into run" and outcome.exit_code == ExitCode.RECORDED
    # One training (at most two), one new serving version compared with the champion it replaced.
    versions = {v.version: v for v in registry.versions(model)}
    trained = [v for v in versions.values() if v.version > 1]
    assert 1 <= len(trained) <= 2, [(v.version, v.status) for v in trained]
    (serving,) = [v for v in trained if v.status == "production"]
    assert registry.champion(model).version == serving.version  # type: ignore[union-attr]
    assert serving.lineage["parent_champion"] == 1 and versions[1].status == "archived"
    assert {d["key"] for d in serving.lineage["data"]} >= {o["validation"]["dataset"]["key"] for o in outputs}
    assert not [v.version for v in versions.values() if v.status == "approved"]  # none left approved, not serving
    quarantined = cloud.s3.list_objects_v2(Bucket=cloud.output("DataBucketName"), Prefix=f"{model}/quarantine/")
    assert quarantined.get("KeyCount", 0) == 0


def _approve(state: Path, model: str, version: int) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "conveyor.cli.main", "approve", model, str(version), "--state", str(state)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr


def _awaiting(cloud: Target, model: str, version: int, evaluations: int) -> Callable[[], bool]:
    registry = _registry(cloud)

    def check() -> bool:
        from conveyor.deployment import Deployments

        record = Deployments(_table(cloud)).get(model, version)
        try:
            lineage = registry.get(model, version).lineage
        except Exception:
            return False
        return bool(
            record
            and record.get("state") == "awaiting_approval"
            and record.get("token")
            and len(lineage.get("evaluations", [])) == evaluations
        )

    return check


def test_a_candidate_is_never_promoted_over_a_champion_it_was_not_compared_with(cloud: Target, tmp_path: Path) -> None:
    model = "race-visits"
    state = tmp_path / "local.json"
    state.write_text(
        json.dumps(
            {"endpoint": cloud.endpoint, "api_url": cloud.api_url, "region": cloud.region, "outputs": cloud.outputs}
        )
    )
    spec = yaml.safe_load(_spec(model))
    spec["deployment"] = {"strategy": "all_at_once", "approval": "manual", "approval_timeout_seconds": 900}
    cloud.s3.put_object(
        Bucket=cloud.output("ArtifactBucketName"), Key=f"{model}/spec.yaml", Body=yaml.safe_dump(spec).encode()
    )
    registry = _registry(cloud)
    _put(cloud, f"{model}/incoming/first.csv", _csv(_rows([1984, 1985], 2500)))
    _wait("v1 awaiting approval", _awaiting(cloud, model, 1, 1))
    _approve(state, model, 1)
    _wait("v1 serving", lambda: (c := registry.champion(model)) is not None and c.version == 1)
    key = f"{model}/incoming/second.csv"
    _put(cloud, key, _csv(_rows([1986], 2000, seed=2)))
    _wait("v2 awaiting approval, evaluated against v1", _awaiting(cloud, model, 2, 1))
    assert registry.get(model, 2).lineage["parent_champion"] == 1
    # Meanwhile another version becomes champion (here: v1's artifact registered again, promoted).
    v1 = registry.get(model, 1)
    other = registry.register(
        ModelVersion(model, 0, "approved", v1.artifact_key, v1.sha256, metrics=v1.metrics, lineage=v1.lineage)
    )
    registry.promote(model, other.version, expected_champion=1)
    _approve(state, model, 2)  # approved for a comparison with v1: its promotion's compare-and-set fails
    _wait("v2 evaluated again against the new champion", _awaiting(cloud, model, 2, 2))
    again = registry.get(model, 2)
    assert [e["champion"] for e in again.lineage["evaluations"]] == [1, other.version]
    assert again.lineage["parent_champion"] == other.version and again.status == "candidate"
    assert registry.champion(model).version == other.version  # type: ignore[union-attr]
    evidence = json.loads(
        cloud.s3.get_object(Bucket=cloud.output("ArtifactBucketName"), Key=f"{model}/versions/2/evidence.json")[
            "Body"
        ].read()
    )
    assert evidence["lineage"]["parent_champion"] == other.version
    _approve(state, model, 2)  # now approved for a comparison with the champion it replaces
    (execution,) = _executions(cloud, key).values()
    ended = _wait(
        "v2's run",
        lambda: (
            (d := cloud.sfn.describe_execution(executionArn=execution["executionArn"]))["status"] != "RUNNING" and d
        ),
    )
    assert ended["status"] == "SUCCEEDED" and json.loads(ended["output"])["finish"]["ending"] == "serving", ended
    final = registry.get(model, 2)
    assert final.status == "production" and registry.champion(model).version == 2  # type: ignore[union-attr]
    promoted = [h for h in final.history if h["status"] == "production"]
    assert promoted and f"was v{other.version}" in promoted[-1]["reason"]
    assert [v.version for v in registry.versions(model) if v.status == "approved"] == []
