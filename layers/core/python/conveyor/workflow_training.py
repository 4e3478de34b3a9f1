"""The training part of the workflow contract (re-exported by :mod:`conveyor.workflow`): where a retrain
runs ("Choose compute": ``$.compute``) and what Train (or "Read training result") leaves at ``$.training``."""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict


class TrainingResult(TypedDict):
    """``$.training`` (Train): the candidate, staged under ``staging/{model}/{execution}/``."""

    model: str
    candidate_key: str
    sha256: str
    holdout_key: str
    spec_key: str
    profile_key: str
    spec_hash: str
    contract: NotRequired[dict[str, Any]]  # the serving contract (conveyor.contract.ServingContract.to_dict)
    metrics: dict[str, Any]
    parity: dict[str, Any]
    split: str  # the split strategy used (temporal, grouped, random)
    n_train: int
    n_holdout: int
    estimator: str
    approval: str  # auto | manual
    params: dict[str, Any]
    # The data objects trained on (the lineage) are a manifest in S3, never a list in the state
    # (it grows with every drop): ``data_key`` under the execution's staging prefix.
    data_key: str
    data_objects: int  # how many objects the manifest lists
    rows: int  # rows trained and held out (after training.window)
    data: NotRequired[list[dict[str, Any]]]  # executions started before the manifest: the list itself
    libraries: dict[str, str]
    size_bytes: int
    seconds: dict[str, float]


class TrainingPlan(TypedDict):
    """``$.compute`` ("Choose compute"): where the retrain runs, and the pointers a container reads and writes."""

    model: str
    compute: str  # lambda | fargate | sagemaker (conveyor.compute.Compute)
    requested: str  # the spec's training.compute (auto, or one of the three)
    reason: str
    rows: int
    size_bytes: int
    data_objects: int
    estimated_mb: float
    estimated_seconds: float
    input_key: str  # artifact bucket: the Train stage's input, for the container
    result_key: str  # artifact bucket: where the container writes its TrainingResult
    cpu: str  # the Fargate task's size for this run (conveyor.compute.fargate_size), as ECS takes it
    memory_mib: str
    job_name: str  # the SageMaker training job's name (unique per execution and round)
