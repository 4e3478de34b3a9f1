"""Training compute on the local cloud, through the one definition: three models with ``training.compute``
forced to lambda, fargate and sagemaker each train through their branch ("Train", "Train on Fargate"
with ecs:runTask.sync, "Train on SageMaker" with sagemaker:createTrainingJob.sync, both run in-process by
conveyor.localcloud.compute_tasks) and serve the version they trained."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest
import requests
import yaml

from conveyor.cli.target import Target
from conveyor.workflow import State
from tests.conftest import DATASET, DEMO_ROW, DEMO_SPEC
from tests.e2e.conftest import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local-cloud")]
BRANCHES: dict[str, tuple[list[str], str | None]] = {
    "lambda": ([State.TRAIN], None),  # a Lambda task names its function: LambdaFunction* events
    "fargate": ([State.TRAIN_ON_FARGATE, State.READ_TRAINING_RESULT], "ecs"),
    "sagemaker": ([State.TRAIN_ON_SAGEMAKER, State.READ_TRAINING_RESULT], "sagemaker"),
}


def _finished(cloud: Target, key: str) -> dict[str, Any] | None:
    for execution in cloud.sfn.list_executions(stateMachineArn=cloud.output("StateMachineArn"))["executions"]:
        described = cloud.sfn.describe_execution(executionArn=execution["executionArn"])
        dropped = (json.loads(described["input"]).get("detail") or {}).get("object") or {}
        if dropped.get("key") == key and described["status"] != "RUNNING":
            return dict(described)
    return None


@pytest.fixture(scope="module")
def runs(cloud: Target) -> dict[str, dict[str, Any]]:
    """One model per compute, each with the 1984-1985 rows dropped; the finished executions."""
    frame = pd.read_csv(DATASET)
    body = frame[frame["year"].isin([1984, 1985])].to_csv(index=False).encode()
    keys = {}
    for compute in BRANCHES:
        model = f"compute-{compute}"
        spec = yaml.safe_load(DEMO_SPEC.read_text())
        spec["name"] = model
        spec["training"] = {"compute": compute}
        cloud.s3.put_object(
            Bucket=cloud.output("ArtifactBucketName"), Key=f"{model}/spec.yaml", Body=yaml.safe_dump(spec)
        )
        keys[compute] = f"{model}/incoming/visits.csv"
        cloud.s3.put_object(Bucket=cloud.output("DataBucketName"), Key=keys[compute], Body=body)
    found: dict[str, dict[str, Any]] = {}

    def all_finished() -> bool:
        for compute, key in keys.items():
            if compute not in found and (execution := _finished(cloud, key)) is not None:
                found[compute] = execution
        return len(found) == len(keys)

    wait_until(all_finished, timeout=600, interval=1.0, what="the three training runs")
    return found


@pytest.mark.parametrize("compute", list(BRANCHES))
def test_each_compute_trains_through_its_branch_and_serves(
    cloud: Target, runs: dict[str, dict[str, Any]], compute: str
) -> None:
    execution = runs[compute]
    assert execution["status"] == "SUCCEEDED", execution
    events = cloud.sfn.get_execution_history(executionArn=execution["executionArn"], maxResults=1000)["events"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in events if e["type"].endswith("StateEntered")]
    states, resource_type = BRANCHES[compute]
    start = entered.index(State.CHOOSE_COMPUTE)
    assert entered[start : start + 2 + len(states) + 1] == [
        State.CHOOSE_COMPUTE,
        State.TRAINING_COMPUTE,
        *states,
        State.EVALUATE,
    ]
    others = {s for other, (names, _) in BRANCHES.items() if other != compute for s in names} - set(states)
    assert not others & set(entered)
    succeeded = {e["taskSucceededEventDetails"]["resourceType"] for e in events if e["type"] == "TaskSucceeded"}
    assert succeeded & {"ecs", "sagemaker"} == ({resource_type} if resource_type else set())
    output = json.loads(execution["output"])
    assert output["compute"]["compute"] == compute and output["compute"]["requested"] == compute
    assert output["training"]["rows"] == output["compute"]["rows"] > 0
    if compute == "fargate":
        assert output["compute_run"]["LastStatus"] == "STOPPED"
        assert (output["compute"]["cpu"], output["compute"]["memory_mib"]) == ("2048", "16384")
    if compute == "sagemaker":
        assert output["compute_run"]["TrainingJobStatus"] == "Completed"
        assert output["compute_run"]["TrainingJobName"] == output["compute"]["job_name"]
    assert output["registration"]["version"] == 1
    model = f"compute-{compute}"

    def serves() -> bool:
        response = requests.post(f"{cloud.api_url}/models/{model}/predict", json={"instances": [DEMO_ROW]}, timeout=30)
        return response.status_code == 200 and response.json()["model_version"] == 1

    wait_until(serves, timeout=60, what=f"{model} serving version 1")
