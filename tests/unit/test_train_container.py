"""The training image's entry point (functions/train/container.py): the Dockerfile runs it, and it tells
a Lambda, an ECS task and a SageMaker job apart (the image itself cannot be built here: no Docker)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from conveyor.compute import ECS_INPUT_ENV, INPUT_HYPERPARAMETER
from functions.train import container

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "layers" / "training" / "Dockerfile"


class Calls:
    def __init__(self, fail: bool = False) -> None:
        self.trained: list[str] = []
        self.lambdas: list[list[str]] = []
        self.fail = fail

    def train(self, key: str) -> None:
        self.trained.append(key)
        if self.fail:
            raise RuntimeError("no data")

    def run_lambda(self, argv: Sequence[str]) -> None:
        self.lambdas.append(list(argv))


def test_the_dockerfile_entry_point_is_the_dispatch_module() -> None:
    text = DOCKERFILE.read_text()
    entry = json.loads(re.search(r"^ENTRYPOINT (.+)$", text, re.MULTILINE).group(1))  # type: ignore[union-attr]
    assert entry[-2:] == ["-m", container.__name__]
    module = ROOT / Path(*container.__name__.split(".")).with_suffix(".py")
    assert module.is_file() and "COPY functions ${LAMBDA_TASK_ROOT}/functions" in text
    assert re.search(r'^CMD \["functions\.train\.handler\.lambda_handler"\]$', text, re.MULTILINE)
    assert text.startswith("#") and "FROM public.ecr.aws/lambda/python:3.12" in text


def test_a_lambda_goes_to_the_runtime_with_its_handler() -> None:
    calls = Calls()
    handler = ["functions.validate.handler.lambda_handler"]
    assert container.main(handler, {}, train=calls.train, run_lambda=calls.run_lambda) == 0
    assert calls.lambdas == [handler] and calls.trained == []


def test_an_ecs_task_trains_from_its_override(tmp_path: Path) -> None:
    calls = Calls()
    environ = {ECS_INPUT_ENV: "staging/m/run/training-input.json"}
    code = container.main(
        ["functions.train.handler.lambda_handler"], environ, train=calls.train, run_lambda=calls.run_lambda
    )
    assert code == 0 and calls.trained == ["staging/m/run/training-input.json"] and calls.lambdas == []
    failing = Calls(fail=True)
    assert container.main([], environ, train=failing.train, run_lambda=failing.run_lambda) == 1


def test_a_sagemaker_job_trains_from_its_hyperparameter_and_reports_a_failure(tmp_path: Path) -> None:
    config = tmp_path / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps({INPUT_HYPERPARAMETER: "staging/m/r/training-input.json"}))
    calls = Calls()
    assert container.main(["train"], {}, train=calls.train, run_lambda=calls.run_lambda, sagemaker_root=tmp_path) == 0
    assert calls.trained == ["staging/m/r/training-input.json"]
    failing = Calls(fail=True)
    code = container.main(["train"], {}, train=failing.train, run_lambda=failing.run_lambda, sagemaker_root=tmp_path)
    assert code == 1
    assert (tmp_path / "output" / "failure").read_text() == "RuntimeError: no data"


@pytest.mark.parametrize(
    ("argv", "environ", "mode"),
    [
        (["train"], {ECS_INPUT_ENV: "k"}, "sagemaker"),  # SageMaker's argument wins
        ([], {ECS_INPUT_ENV: "k"}, "ecs"),
        ([], {ECS_INPUT_ENV: ""}, "lambda"),
        (["functions.train.handler.lambda_handler"], {}, "lambda"),
    ],
)
def test_the_mode(argv: list[str], environ: dict[str, str], mode: str) -> None:
    assert container.mode_of(argv, environ) == mode


def test_the_local_cloud_runs_the_task_with_its_overrides_and_describes_it_as_aws_does() -> None:
    from conveyor.localcloud.compute_tasks import ContainerFailed, run_ecs_task

    seen: list[tuple[list[str], str | None]] = []

    def main(argv: list[str], environ: dict[str, str], **_: object) -> int:
        seen.append((argv, environ.get(ECS_INPUT_ENV)))
        return 0 if environ[ECS_INPUT_ENV] == "good" else 1

    parameters = {
        "Cluster": "arn:aws:ecs:us-east-1:1:cluster/c",
        "TaskDefinition": "family",
        "LaunchType": "FARGATE",
        "Overrides": {
            "ContainerOverrides": [{"Name": "train", "Environment": [{"Name": ECS_INPUT_ENV, "Value": "good"}]}]
        },
    }
    task = run_ecs_task(parameters, "us-east-1", "1", main=main)
    assert seen == [([], "good")]
    assert task["LastStatus"] == "STOPPED" and task["StopCode"] == "EssentialContainerExited"
    assert task["TaskArn"].startswith("arn:aws:ecs:us-east-1:1:task/c/") and task["Containers"][0]["ExitCode"] == 0
    parameters["Overrides"]["ContainerOverrides"][0]["Environment"][0]["Value"] = "bad"  # type: ignore[index]
    with pytest.raises(ContainerFailed) as failed:
        run_ecs_task(parameters, "us-east-1", "1", main=main)
    assert failed.value.description["Containers"][0]["ExitCode"] == 1


def test_the_local_cloud_runs_the_job_with_its_hyperparameters_and_describes_it_as_aws_does() -> None:
    from conveyor.localcloud.compute_tasks import ContainerFailed, run_training_job

    def main(argv: list[str], environ: dict[str, str], *, sagemaker_root: Path) -> int:
        return container.main(
            argv, environ, train=Calls(fail=environ.get("FAIL") == "1").train, sagemaker_root=sagemaker_root
        )

    parameters = {"TrainingJobName": "train-m-1", "HyperParameters": {INPUT_HYPERPARAMETER: "k"}, "Environment": {}}
    job = run_training_job(parameters, "us-east-1", "1", main=main)
    assert job["TrainingJobStatus"] == "Completed" and job["TrainingJobName"] == "train-m-1"
    assert job["TrainingJobArn"] == "arn:aws:sagemaker:us-east-1:1:training-job/train-m-1"
    parameters["Environment"] = {"FAIL": "1"}
    with pytest.raises(ContainerFailed) as failed:
        run_training_job(parameters, "us-east-1", "1", main=main)
    assert failed.value.description["TrainingJobStatus"] == "Failed"
    assert failed.value.description["FailureReason"] == "RuntimeError: no data"
