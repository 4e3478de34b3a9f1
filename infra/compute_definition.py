"""Where a retrain runs, in the one definition: "Choose compute" -> "Training compute?" -> the Train
Lambda, or "Train on Fargate" (ecs:runTask.sync) / "Train on SageMaker" (sagemaker:createTrainingJob.sync)
-> "Read training result". Every branch leaves the same TrainingResult at ``$.training`` for Evaluate.

The containers receive a pointer (``$.compute.input_key``: the staged Train input), never data; what the
.sync integrations return is cut down to a few fields at ``$.compute_run`` (ResultSelector), so the state
stays small. A container that fails fails its state (a SageMaker job's Failed status, an ECS task's
non-zero exit), and "Read training result" fails on a missing or failed result either way.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from conveyor.compute import (
    CAPACITY,
    ECS_INPUT_ENV,
    FARGATE,
    INPUT_HYPERPARAMETER,
    SAGEMAKER,
    SAGEMAKER_INSTANCE,
)
from conveyor.workflow import Key, State, path
from infra import constants as c
from infra.constants import Fn
from infra.constructs.training_compute import TrainingCompute
from infra.states import States

INPUT_KEY = path(Key.COMPUTE, "input_key")


def build_compute(
    states: States,
    compute: TrainingCompute,
    *,
    train: sfn.IChainable,
    read_result: sfn.IChainable,
    failed: sfn.IChainable,
) -> sfn.IChainable:
    """ "Choose compute" and the three branches; ``train`` (the Lambda) and ``read_result`` go on to Evaluate."""
    scope = states.scope
    choose = states.task(State.CHOOSE_COMPUTE, Fn.TRAIN_PLAN, Key.COMPUTE, on_error=failed)
    fargate = _fargate(scope, compute)
    sagemaker = _sagemaker(scope, compute)
    for task in (fargate, sagemaker):
        states.catch(task, failed)
        task.next(read_result)
    choice = (
        sfn.Choice(scope, State.TRAINING_COMPUTE)
        .when(sfn.Condition.string_equals(path(Key.COMPUTE, "compute"), FARGATE), fargate)
        .when(sfn.Condition.string_equals(path(Key.COMPUTE, "compute"), SAGEMAKER), sagemaker)
        .otherwise(train)
    )
    return choose.next(choice)


def _fargate(scope: Construct, compute: TrainingCompute) -> tasks.EcsRunTask:
    return tasks.EcsRunTask(
        scope,
        State.TRAIN_ON_FARGATE,
        integration_pattern=sfn.IntegrationPattern.RUN_JOB,  # ecs:runTask.sync: waits for the task to stop
        cluster=compute.cluster,
        task_definition=compute.task_definition,
        launch_target=tasks.EcsFargateLaunchTarget(platform_version=ecs.FargatePlatformVersion.LATEST),
        assign_public_ip=True,  # public subnets, no NAT (infra/constructs/training_compute.py)
        # The run's size: the smallest Fargate size that holds its estimate ("Choose compute").
        cpu=sfn.JsonPath.string_at(path(Key.COMPUTE, "cpu")),
        memory_mib=sfn.JsonPath.string_at(path(Key.COMPUTE, "memory_mib")),
        subnets=compute.subnets,
        security_groups=[compute.security_group],
        container_overrides=[
            tasks.ContainerOverride(
                container_definition=compute.container,
                environment=[
                    tasks.TaskEnvironmentVariable(name=ECS_INPUT_ENV, value=sfn.JsonPath.string_at(INPUT_KEY))
                ],
            )
        ],
        result_selector={"TaskArn.$": "$.TaskArn", "LastStatus.$": "$.LastStatus", "StopCode.$": "$.StopCode"},
        result_path=path(Key.COMPUTE_RUN),
    )


def _sagemaker(scope: Construct, compute: TrainingCompute) -> tasks.SageMakerCreateTrainingJob:
    capacity = CAPACITY[SAGEMAKER]
    assert capacity.seconds is not None
    return tasks.SageMakerCreateTrainingJob(
        scope,
        State.TRAIN_ON_SAGEMAKER,
        integration_pattern=sfn.IntegrationPattern.RUN_JOB,  # createTrainingJob.sync: waits for the job
        training_job_name=sfn.JsonPath.string_at(path(Key.COMPUTE, "job_name")),
        algorithm_specification=tasks.AlgorithmSpecification(
            training_image=tasks.DockerImage.from_ecr_repository(compute.image.repository, compute.image.image_tag),
            training_input_mode=tasks.InputMode.FILE,
        ),
        hyperparameters={INPUT_HYPERPARAMETER: sfn.JsonPath.string_at(INPUT_KEY)},
        environment=compute.environment,
        output_data_config=tasks.OutputDataConfig(
            s3_output_location=tasks.S3Location.from_bucket(compute.artifact_bucket, c.SAGEMAKER_OUTPUT_PREFIX)
        ),
        resource_config=tasks.ResourceConfig(
            instance_count=1,
            instance_type=ec2.InstanceType(SAGEMAKER_INSTANCE),
            volume_size=cdk.Size.gibibytes(c.SAGEMAKER_VOLUME_GIB),
        ),
        stopping_condition=tasks.StoppingCondition(max_runtime=cdk.Duration.seconds(capacity.seconds)),
        role=compute.sagemaker_role,
        result_selector={
            "TrainingJobName.$": "$.TrainingJobName",
            "TrainingJobStatus.$": "$.TrainingJobStatus",
            "TrainingJobArn.$": "$.TrainingJobArn",
        },
        result_path=path(Key.COMPUTE_RUN),
    )
