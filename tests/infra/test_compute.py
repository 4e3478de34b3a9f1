"""Training compute in the one definition: "Choose compute" -> "Training compute?" -> the Train Lambda,
an ECS Fargate task (ecs:runTask.sync) or a SageMaker training job (createTrainingJob.sync), all three
converging on Evaluate with the result at $.training; the task's network, roles and image."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor.compute import CAPACITY, ECS_INPUT_ENV, FARGATE_CPU, INPUT_HYPERPARAMETER
from conveyor.workflow import State
from infra.asl import render_definition
from tests.infra.conftest import Synth


def resolve(reference: dict[str, Any]) -> str:
    if "Ref" in reference:
        return f"ref:{reference['Ref']}"
    logical_id, attribute = reference["Fn::GetAtt"]
    return f"getatt:{logical_id}.{attribute}"


@pytest.fixture(scope="module")
def states(synth: Synth) -> dict[str, Any]:
    asl = render_definition(synth.json, synth.logical_id(synth.stack.state_machine), resolve)
    found: dict[str, Any] = asl["States"]
    return found


def test_the_burst_goes_to_choose_compute_and_the_choice_has_three_branches(states: dict[str, Any]) -> None:
    settled = states[State.BURST_SETTLED]
    assert settled["Choices"][0]["Next"] == State.CHOOSE_COMPUTE
    assert states[State.CHOOSE_COMPUTE]["Next"] == State.TRAINING_COMPUTE
    assert states[State.CHOOSE_COMPUTE]["ResultPath"] == "$.compute"
    choice = states[State.TRAINING_COMPUTE]
    assert choice["Type"] == "Choice" and choice["Default"] == State.TRAIN
    assert {(c["Variable"], c["StringEquals"], c["Next"]) for c in choice["Choices"]} == {
        ("$.compute.compute", "fargate", State.TRAIN_ON_FARGATE),
        ("$.compute.compute", "sagemaker", State.TRAIN_ON_SAGEMAKER),
    }


def test_every_branch_converges_on_evaluate_with_the_result_at_training(states: dict[str, Any]) -> None:
    assert states[State.TRAIN]["Next"] == State.EVALUATE and states[State.TRAIN]["ResultPath"] == "$.training"
    for branch in (State.TRAIN_ON_FARGATE, State.TRAIN_ON_SAGEMAKER):
        assert states[branch]["Next"] == State.READ_TRAINING_RESULT
        assert states[branch]["ResultPath"] == "$.compute_run"  # a few fields (ResultSelector), not the description
        assert states[branch]["Catch"][0]["ErrorEquals"] == ["States.ALL"]
    read = states[State.READ_TRAINING_RESULT]
    assert read["Next"] == State.EVALUATE and read["ResultPath"] == "$.training"


def test_fargate_runs_the_task_to_its_end_with_the_input_pointer(synth: Synth, states: dict[str, Any]) -> None:
    task = states[State.TRAIN_ON_FARGATE]
    assert task["Resource"] == "arn:ref:AWS::Partition:states:::ecs:runTask.sync"
    parameters = task["Parameters"]
    assert parameters["LaunchType"] == "FARGATE"
    network = parameters["NetworkConfiguration"]["AwsvpcConfiguration"]
    assert network["AssignPublicIp"] == "ENABLED" and len(network["Subnets"]) == 2
    assert parameters["Overrides"]["Cpu.$"] == "$.compute.cpu"  # the run's size ("Choose compute")
    assert parameters["Overrides"]["Memory.$"] == "$.compute.memory_mib"
    override = parameters["Overrides"]["ContainerOverrides"][0]
    assert override["Environment"] == [{"Name": ECS_INPUT_ENV, "Value.$": "$.compute.input_key"}]
    (definition,) = synth.resources("AWS::ECS::TaskDefinition").values()
    props = definition["Properties"]
    assert props["Cpu"] == str(FARGATE_CPU) and props["Memory"] == str(CAPACITY["fargate"].memory_mb)
    assert props["ContainerDefinitions"][0]["Name"] == override["Name"]
    synth.template.resource_count_is("AWS::EC2::NatGateway", 0)  # public subnets, no NAT
    synth.template.resource_count_is("AWS::EC2::FlowLog", 1)
    (cluster,) = synth.resources("AWS::ECS::Cluster").values()
    assert {"Name": "containerInsights", "Value": "enabled"} in cluster["Properties"]["ClusterSettings"]


def test_sagemaker_runs_the_job_to_its_end_with_the_input_pointer(states: dict[str, Any]) -> None:
    job = states[State.TRAIN_ON_SAGEMAKER]
    assert job["Resource"] == "arn:ref:AWS::Partition:states:::sagemaker:createTrainingJob.sync"
    parameters = job["Parameters"]
    assert parameters["HyperParameters"] == {f"{INPUT_HYPERPARAMETER}.$": "$.compute.input_key"}
    assert parameters["TrainingJobName.$"] == "$.compute.job_name"
    assert parameters["ResourceConfig"]["InstanceType"] == "ml.r5.16xlarge"
    assert parameters["StoppingCondition"]["MaxRuntimeInSeconds"] == CAPACITY["sagemaker"].seconds
    assert parameters["Environment"]["ARTIFACT_BUCKET"].startswith("ref:RegistryArtifactBucket")
    image = parameters["AlgorithmSpecification"]["TrainingImage"]
    assert "container-assets" in image  # the one training image (the Lambda functions' asset)


def test_the_training_roles_are_their_own(synth: Synth) -> None:
    roles = synth.resources("AWS::IAM::Role")
    sagemaker = [
        r
        for r in roles.values()
        if r["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"].get("Service")
        == "sagemaker.amazonaws.com"
    ]
    assert len(sagemaker) == 1 and "ManagedPolicyArns" not in sagemaker[0]["Properties"]  # no SageMakerFullAccess
