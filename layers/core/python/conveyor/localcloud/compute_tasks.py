"""What moto's Step Functions cannot run of the training compute branches, done by the local cloud (the
definition stays the one deployed to AWS).

moto 5.2.5 fails ``ecs:runTask.sync`` on AWS-style parameters (and its ECS never runs a container) and
does not support ``sagemaker:createTrainingJob.sync``. ``install_compute_tasks`` gives both resources a
task state of its own: the training image's entry point (``functions/train/container.py``) runs
in-process, with what the container would get on AWS (the task's container overrides as its
environment; the job's hyperparameters in ``input/config/hyperparameters.json`` under a temporary
``/opt/ml``), and the state's result is what AWS's ``.sync`` returns: the stopped task as DescribeTasks
describes it, the finished job as DescribeTrainingJob does (the fields the definition reads, and a few
more). A container that exits non-zero fails the state with ``States.TaskFailed`` and that description
as the cause, as on AWS.
"""

from __future__ import annotations

import importlib
import json
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from conveyor.compute import SAGEMAKER_COMMAND

CONTAINER_MODULE = "functions.train.container"


class ContainerFailed(Exception):
    """The training container exited non-zero; ``description`` is what AWS would describe."""

    def __init__(self, description: dict[str, Any]) -> None:
        super().__init__(json.dumps(description, default=str))
        self.description = description


def _container_main() -> Main:
    main: Main = importlib.import_module(CONTAINER_MODULE).main
    return main


Main = Callable[..., int]  # functions.train.container.main: (argv, environ, *, sagemaker_root=...) -> exit code


def run_ecs_task(
    parameters: Mapping[str, Any], region: str, account: str, *, main: Main | None = None
) -> dict[str, Any]:
    """``ecs:runTask.sync``: the container runs to its end; the stopped task (DescribeTasks' ``tasks[0]``)."""
    cluster = str(parameters.get("Cluster", "default"))
    cluster_name = cluster.rsplit("/", 1)[-1]
    cluster_arn = cluster if cluster.startswith("arn:") else f"arn:aws:ecs:{region}:{account}:cluster/{cluster}"
    family = str(parameters["TaskDefinition"]).rsplit("/", 1)[-1]
    overrides = (parameters.get("Overrides") or {}).get("ContainerOverrides") or [{}]
    override = overrides[0]
    environment = {item["Name"]: str(item["Value"]) for item in override.get("Environment", [])}
    started = time.time()
    exit_code = (main or _container_main())(list(override.get("Command", [])), {**os.environ, **environment})
    task = {
        "TaskArn": f"arn:aws:ecs:{region}:{account}:task/{cluster_name}/{uuid.uuid4().hex}",
        "ClusterArn": cluster_arn,
        "TaskDefinitionArn": f"arn:aws:ecs:{region}:{account}:task-definition/{family.split(':')[0]}:1",
        "LaunchType": parameters.get("LaunchType", "FARGATE"),
        "Cpu": str((parameters.get("Overrides") or {}).get("Cpu", "")),
        "Memory": str((parameters.get("Overrides") or {}).get("Memory", "")),
        "PlatformVersion": parameters.get("PlatformVersion", "LATEST"),
        "StartedBy": "AWS Step Functions",
        "LastStatus": "STOPPED",
        "DesiredStatus": "STOPPED",
        "StopCode": "EssentialContainerExited",
        "StoppedReason": "Essential container in task exited",
        "Containers": [{"Name": override.get("Name", "train"), "LastStatus": "STOPPED", "ExitCode": exit_code}],
        "Overrides": parameters.get("Overrides", {}),
        "StartedAt": started,
        "StoppedAt": time.time(),
    }
    if exit_code != 0:
        raise ContainerFailed(task)
    return task


def run_training_job(
    parameters: Mapping[str, Any], region: str, account: str, *, main: Main | None = None
) -> dict[str, Any]:
    """``sagemaker:createTrainingJob.sync``: the job runs to its end; DescribeTrainingJob of the finished job."""
    name = str(parameters["TrainingJobName"])
    hyperparameters = {key: str(value) for key, value in (parameters.get("HyperParameters") or {}).items()}
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="conveyor-sagemaker-") as root:
        config = Path(root) / "input" / "config"
        config.mkdir(parents=True)
        (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
        environ = {**os.environ, **(parameters.get("Environment") or {})}
        exit_code = (main or _container_main())([SAGEMAKER_COMMAND], environ, sagemaker_root=Path(root))
        failure = Path(root) / "output" / "failure"
        reason = failure.read_text() if failure.exists() else f"AlgorithmError: exit code {exit_code}"
    output = str((parameters.get("OutputDataConfig") or {}).get("S3OutputPath", "")).rstrip("/")
    job = {
        "TrainingJobName": name,
        "TrainingJobArn": f"arn:aws:sagemaker:{region}:{account}:training-job/{name.lower()}",
        "TrainingJobStatus": "Completed" if exit_code == 0 else "Failed",
        "SecondaryStatus": "Completed" if exit_code == 0 else "Failed",
        "HyperParameters": hyperparameters,
        "AlgorithmSpecification": parameters.get("AlgorithmSpecification", {}),
        "RoleArn": parameters.get("RoleArn", ""),
        "ResourceConfig": parameters.get("ResourceConfig", {}),
        "StoppingCondition": parameters.get("StoppingCondition", {}),
        "OutputDataConfig": parameters.get("OutputDataConfig", {}),
        "ModelArtifacts": {"S3ModelArtifacts": f"{output}/{name}/output/model.tar.gz"},
        "TrainingStartTime": started,
        "TrainingEndTime": time.time(),
    }
    if exit_code != 0:
        job["FailureReason"] = reason
        raise ContainerFailed(job)
    return job


RUNNERS: dict[str, Callable[..., dict[str, Any]]] = {
    "ecs": run_ecs_task,
    "sagemaker": run_training_job,
}


def install_compute_tasks() -> None:
    """Run ``ecs:runTask(.sync)`` and ``sagemaker:createTrainingJob(.sync)`` states in-process (see the module
    docstring); every other service keeps moto's own task state."""
    from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_factory
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (
        StateTaskService,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    class LocalComputeTask(StateTaskService):
        def _validate_service_integration_is_supported(self) -> None:
            if self.resource.api_action.lower() not in {"runtask", "createtrainingjob"}:
                raise ValueError(
                    f"the local cloud runs ecs:runTask and sagemaker:createTrainingJob only, not {self.resource.resource_arn}"
                )

        def _eval_service_task(
            self, env: Any, resource_runtime_part: Any, normalised_parameters: dict[str, Any], state_credentials: Any
        ) -> None:
            run = RUNNERS[self.resource.service_name]
            try:
                env.stack.append(
                    run(normalised_parameters, resource_runtime_part.region, resource_runtime_part.account)
                )
            except ContainerFailed as failed:
                error = StatesErrorNameType.StatesTaskFailed.to_name()
                raise FailureEventException(
                    failure_event=FailureEvent(
                        env=env,
                        error_name=StatesErrorName(typ=StatesErrorNameType.StatesTaskFailed),
                        event_type=HistoryEventType.TaskFailed,
                        event_details=EventDetails(  # type: ignore[typeddict-item]  # total=True in moto, one key set
                            taskFailedEventDetails=TaskFailedEventDetails(
                                error=error,
                                cause=str(failed),
                                resource=self._get_sfn_resource(),
                                resourceType=self._get_sfn_resource_type(),
                            )
                        ),
                    )
                ) from None

    moto_factory = state_task_factory.state_task_service_for
    if getattr(moto_factory, "conveyor_compute", False):
        return

    def state_task_service_for(service_name: str) -> Any:
        if service_name in RUNNERS:
            return LocalComputeTask()
        return moto_factory(service_name)

    state_task_service_for.conveyor_compute = True  # type: ignore[attr-defined]
    state_task_factory.state_task_service_for = state_task_service_for
