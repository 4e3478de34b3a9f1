"""The workflow contract: what the state machine "pipeline" passes between its states, and the names
of its states and errors (the definition: ``infra/pipeline_definition.py``, ``infra/deployment_definition.py``).

Every Lambda task receives ``{"state": <the whole state>, "execution_id": ..., "task_token"?: ...}``
(:class:`StageInput`) and its result is stored under its own key of the state (:class:`Key`:
``$.validation``, ``$.training``, ...), so later stages see earlier results. The state is
:class:`PipelineState`; each stage's result is one TypedDict below (``ValidationResult``,
``DriftResult``, ...), and each stage's input names the keys it reads (``TrainInput``, ...).

Only the standard library here: the CDK app, the CLI and the predict-free stages import it.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict, get_args

from conveyor.workflow_deployment import (  # noqa: F401  (re-exported: the contract is read from conveyor.workflow)
    Approval,
    ApprovalRequest,
    BakeResult,
    BakeVerdict,
    BakeWindow,
    DeploymentPlan,
    Phase,
    PromotionResult,
    RollbackResult,
)
from conveyor.workflow_training import TrainingPlan, TrainingResult


class State:
    """State names of the state machine; `conveyor drop` prints them as the execution moves."""

    RUN_KIND = "Run kind?"
    RESUME_AT = "Resume at?"  # `conveyor retry`: jump to the state an interrupted execution had reached
    CANNOT_RESUME = "Cannot resume"
    PREPARE_RETRAIN = "Prepare retrain"
    VALIDATE = "Validate"
    DATA_ACCEPTED = "Data accepted?"
    ALERT_DATA_REJECTED = "Alert data rejected"
    DATA_REJECTED = "Data rejected"
    CHECK_DRIFT = "Check drift"
    DRIFT_DETECTED = "Drift detected?"
    ALERT_DRIFT = "Alert drift"
    RETRAIN = "Retrain?"
    RECORDED = "Recorded"
    # One retrain per burst (conveyor.bursts): the drop claims the model's retrain, or is folded into
    # the run that holds it; the owner waits for the burst to settle, trains, and finishes the lease.
    CLAIM_RETRAIN = "Claim retrain"
    RETRAIN_CLAIMED = "Retrain claimed?"
    FOLDED = "Folded into run"
    WAIT_FOR_BURST = "Wait for the burst"
    START_RETRAIN = "Start retrain"
    BURST_SETTLED = "Burst settled?"
    FINISH_RUN = "Finish run"
    RETRAIN_AGAIN = "Retrain again?"
    PREPARE_FOLLOW_UP = "Prepare follow-up"
    RUN_OUTCOME = "Run outcome?"
    SUPERSEDED = "Superseded"
    # Where the retrain runs (conveyor.compute): the Train Lambda, an ECS Fargate task or a SageMaker
    # training job, all three the one training image; the containers' result is read back from S3.
    CHOOSE_COMPUTE = "Choose compute"
    TRAINING_COMPUTE = "Training compute?"
    TRAIN = "Train"
    TRAIN_ON_FARGATE = "Train on Fargate"
    TRAIN_ON_SAGEMAKER = "Train on SageMaker"
    READ_TRAINING_RESULT = "Read training result"
    EVALUATE = "Evaluate"
    REGISTER = "Register"
    GATES_PASSED = "Gates passed?"
    NOTIFY_CANDIDATE_REJECTED = "Notify candidate rejected"
    CANDIDATE_REJECTED = "Candidate rejected"
    ALERT_PIPELINE_FAILED = "Alert pipeline failed"
    PIPELINE_FAILED = "Pipeline failed"
    # The deployment.
    PLAN_DEPLOYMENT = "Plan deployment"
    CHAMPION_UNCHANGED = "Champion unchanged?"  # else: evaluate again against the new champion
    APPROVAL_NEEDED = "Approval needed?"
    AWAIT_APPROVAL = "Await approval"  # waits for `conveyor approve` / `reject` (a task token)
    NOTIFY_REJECTED_BY_REVIEWER = "Notify rejected by reviewer"
    REJECTED_BY_REVIEWER = "Rejected by reviewer"
    NOTIFY_APPROVAL_EXPIRED = "Notify approval expired"
    APPROVAL_EXPIRED = "Approval expired"
    NEXT_PHASE = "Next phase?"
    START_PHASE = "Start phase"
    BAKE = "Bake"
    CHECK_BAKE = "Check bake"
    BAKE_VERDICT = "Bake verdict?"
    EXTEND_BAKE = "Extend bake"
    ALERT_DEPLOYMENT_INTERRUPTED = "Alert deployment interrupted"
    DEPLOYMENT_INTERRUPTED = "Deployment interrupted"
    ROLL_BACK = "Roll back"
    ALERT_ROLLED_BACK = "Alert rolled back"
    ROLLED_BACK = "Rolled back"
    DEPLOY = "Deploy"
    PROMOTED = "Promoted?"  # the promotion's compare-and-set: else evaluate again
    NOTIFY_DEPLOYED = "Notify deployed"
    SERVING = "Serving"


class Error:
    """Error names: what a Fail state ends an execution with, what Catch and Retry match."""

    DATA_REJECTED = "DataRejected"  # the drop failed validation (Fail "Data rejected")
    PIPELINE_FAILED = "PipelineFailed"  # a stage failed (Fail "Pipeline failed")
    ROLLED_BACK = "RolledBack"  # a bake failed: the champion keeps serving (Fail "Rolled back")
    DEPLOYMENT_INTERRUPTED = "DeploymentInterrupted"  # someone changed the routing during a bake
    # The local cloud stopped while the execution ran (status ABORTED on restart; `conveyor retry` resumes it).
    INTERRUPTED = "Interrupted"
    # A reviewer's rejection (`conveyor reject`) fails the approval task with this error.
    REJECTED = "Rejected"
    # Raised by "Start phase" (the exception's class name) while another version is on trial: retried.
    DEPLOYMENT_IN_PROGRESS = "DeploymentInProgress"
    ALL = "States.ALL"
    TIMEOUT = "States.Timeout"


class Key:
    """Keys of the execution state: the execution input's, and where each stage's result is stored."""

    DETAIL = "detail"  # a drop: the EventBridge "Object Created" event's detail
    RETRAIN = "retrain"  # a retrain request (`conveyor impact --retrain`)
    RESUME = "resume"  # an interrupted execution resumed at a state (`conveyor retry`): ResumeRequest
    VALIDATION = "validation"
    DRIFT = "drift"
    COMPUTE = "compute"  # "Choose compute": TrainingPlan
    COMPUTE_RUN = "compute_run"  # what the ECS task's / SageMaker job's .sync returned (its description)
    TRAINING = "training"
    EVALUATION = "evaluation"
    REGISTRATION = "registration"
    DEPLOYMENT = "deployment"
    APPROVAL = "approval"
    BAKE = "bake"
    ROLLBACK = "rollback"
    PROMOTION = "promotion"
    ERROR = "error"  # what a Catch caught: {"Error", "Cause"}
    CLAIM = "claim"  # the retrain lease ("Claim retrain", then "Start retrain")
    FINISH = "finish"  # how the run ended ("Finish run")


def path(*keys: str) -> str:
    """The JSONPath of a value of the state: ``path("validation", "verdict")`` -> ``$.validation.verdict``."""
    return ".".join(("$", *keys))


# --- values the Choice states branch on -------------------------------------------------------

ValidationVerdict = Literal["accepted", "rejected"]
ACCEPTED: ValidationVerdict = "accepted"
REJECTED: ValidationVerdict = "rejected"

DriftVerdict = Literal["drift", "no_drift", "no_reference", "not_checked"]
DRIFT: DriftVerdict = "drift"
NOT_CHECKED: DriftVerdict = "not_checked"  # a retrain request skips the drift check

ClaimOutcome = Literal["owner", "folded"]
OWNER: ClaimOutcome = "owner"
FOLDED: ClaimOutcome = "folded"

# How a run that got past "Retrain?" ended ("Finish run" decides; "Run outcome?" branches on it).
Ending = Literal[
    "serving",
    "candidate_rejected",
    "superseded",
    "rolled_back",
    "interrupted",
    "rejected_by_reviewer",
    "approval_expired",
    "failed",
]
ENDINGS: tuple[Ending, ...] = get_args(Ending)

# Registration statuses that go on to the deployment (approved: auto approval; candidate: manual).
DEPLOYABLE_STATUSES = ("approved", "candidate")
MANUAL_APPROVAL = "manual"

EXTEND: BakeVerdict = "extend"
BREACH: BakeVerdict = "breach"
INSUFFICIENT: BakeVerdict = "insufficient"
INTERRUPTED: BakeVerdict = "interrupted"
ROLL_BACK_VERDICTS: tuple[BakeVerdict, ...] = (BREACH, INSUFFICIENT)


# States an interrupted execution can be resumed at ("Run kind?" -> "Resume at?" -> the state), with
# the state's input as the execution reached it. Never Validate: a drop validated twice is a repeat.
RESUMABLE_STATES = (
    State.CHECK_DRIFT,
    State.DRIFT_DETECTED,
    State.ALERT_DRIFT,
    State.RETRAIN,
    State.CHOOSE_COMPUTE,  # also where "Training compute?" and "Train on SageMaker" resume (RESUME_EARLIER)
    State.TRAIN,
    State.TRAIN_ON_FARGATE,
    State.READ_TRAINING_RESULT,
    State.EVALUATE,
    State.REGISTER,
    State.GATES_PASSED,
    State.PLAN_DEPLOYMENT,
    State.APPROVAL_NEEDED,
    State.AWAIT_APPROVAL,
    State.NEXT_PHASE,
    State.START_PHASE,
    State.BAKE,
    State.CHECK_BAKE,
    State.BAKE_VERDICT,
    State.EXTEND_BAKE,
    State.DEPLOY,
    State.NOTIFY_DEPLOYED,
    State.ROLL_BACK,
    State.ALERT_ROLLED_BACK,
    State.NOTIFY_CANDIDATE_REJECTED,
    # one retrain per burst and the promotion's compare-and-set: a resumed run keeps the lease of the
    # run it resumes ($.claim.owner names it)
    State.CLAIM_RETRAIN,
    State.WAIT_FOR_BURST,
    State.START_RETRAIN,
    State.BURST_SETTLED,
    State.FINISH_RUN,
    State.RETRAIN_AGAIN,
    State.RUN_OUTCOME,
    State.CHAMPION_UNCHANGED,
    State.PROMOTED,
)

# States resumed at an earlier one: a SageMaker training job's name is used once, so a job that was
# interrupted is started again from "Choose compute", which names a new one.
RESUME_EARLIER = {
    State.TRAINING_COMPUTE: State.CHOOSE_COMPUTE,
    State.TRAIN_ON_SAGEMAKER: State.CHOOSE_COMPUTE,
}


# --- the execution input ------------------------------------------------------------------------

ObjectDetail = TypedDict(
    "ObjectDetail",
    {
        "key": str,
        "size": int | None,
        "etag": str | None,
        "version-id": NotRequired[str],
        "sequencer": NotRequired[str],
    },
)


class BucketDetail(TypedDict):
    name: str


class ObjectCreatedDetail(TypedDict):
    bucket: BucketDetail
    object: ObjectDetail
    reason: NotRequired[str]


# A drop: the EventBridge "Object Created" event of an object under {model}/incoming/ (on AWS it
# carries more fields: id, time, region, ...).
ObjectCreated = TypedDict(
    "ObjectCreated",
    {"source": str, "detail-type": str, "detail": ObjectCreatedDetail},
)


class RetrainRequest(TypedDict):
    """``{"retrain": ...}``: retrain without some data (a deletion request), skipping validation and drift."""

    model: str
    reason: str
    excluded: list[str]  # sha256 of the excluded data objects


class ResumeRequest(TypedDict):
    """``{"resume": ...}`` beside the state an interrupted execution had reached: start at ``state``."""

    state: str  # one of RESUMABLE_STATES
    execution: str  # the interrupted execution's name


class ExecutionError(TypedDict):
    """What a Catch stores at ``$.error``."""

    Error: str
    Cause: NotRequired[str]


# --- stage results ------------------------------------------------------------------------------


class DatasetRecord(TypedDict):
    """An accepted data object (also its registry item)."""

    bucket: str
    key: str
    version_id: str | None
    etag: str | None
    sha256: str
    size: int
    rows: int | None
    source_key: str
    source_version_id: str | None
    accepted_at: float
    # a drop split by validation.max_bad_row_share: the record is its accepted part
    source_sha256: NotRequired[str]  # the upload's sha256 (a repeat of it is still recognised)
    original: NotRequired[DataPart]  # the upload as received
    quarantined: NotRequired[DataPart]  # the rows set aside, with their reasons


class DataPart(TypedDict):
    """One stored part of a split drop."""

    bucket: str
    key: str
    version_id: str | None
    etag: str | None
    sha256: str
    size: int
    rows: int


class ValidationResult(TypedDict):
    """``$.validation`` (Validate; a retrain request's "Prepare retrain" sets model and verdict only)."""

    verdict: ValidationVerdict
    model: str
    summary: NotRequired[str]
    checks: NotRequired[list[dict[str, Any]]]  # only when the drop could not be stored (not a model's key)
    report_key: NotRequired[str]
    data_key: NotRequired[str]
    dataset: NotRequired[DatasetRecord]  # accepted drops only
    new_content: NotRequired[bool]  # False: the same content was accepted before
    quarantine_key: NotRequired[str]  # a split drop: the rows set aside
    rows_quarantined: NotRequired[int]


class DriftResult(TypedDict):
    """``$.drift`` (Check drift; "Prepare retrain" sets verdict, retrain and summary)."""

    verdict: DriftVerdict
    retrain: bool
    summary: str
    model: NotRequired[str]
    reasons: NotRequired[list[str]]
    drifted_features: NotRequired[list[str]]
    champion_version: NotRequired[int | None]
    report_key: NotRequired[str]  # beside the drop: {data_key}.drift.json
    new_rows: NotRequired[int]
    alert: NotRequired[bool]  # "Alert drift": the first drifted drop of a burst only (conveyor.bursts)


class ClaimResult(TypedDict):
    """``$.claim`` ("Claim retrain", then "Start retrain"; "Prepare follow-up" sets the next round's)."""

    outcome: ClaimOutcome
    owner: str  # the execution that trains (this one when outcome is owner)
    state: str  # the lease's state when the drop joined: queued | running
    round: int
    wait_seconds: int  # "Wait for the burst" waits this long before "Start retrain" checks again
    ready: bool  # "Start retrain": the burst settled, the lease is running, Train may read
    summary: NotRequired[str]
    folded_count: NotRequired[int]


class FinishResult(TypedDict):
    """``$.finish`` ("Finish run"): the lease released (or the follow-up round queued), the ending."""

    ending: Ending
    pending: bool  # train once more: drops joined while this round ran
    summary: str
    next: NotRequired[dict[str, Any]]  # the follow-up round's state ("Prepare follow-up")


class EvaluationResult(TypedDict):
    """``$.evaluation`` (Evaluate): conveyor.evaluation.Evaluation with every gate."""

    metric: str
    higher_is_better: bool
    rows: int
    candidate: dict[str, Any]
    champion: dict[str, Any] | None
    gates: list[dict[str, Any]]
    passed: bool
    reason: str
    champion_error: str | None
    extra: dict[str, Any]
    details_key: str  # the gates' full measurements, beside the candidate
    champion_version: int | None


class RegistrationResult(TypedDict):
    """``$.registration`` (Register)."""

    model: str
    version: int
    status: str  # approved | candidate | rejected
    artifact_key: str
    sha256: str
    summary: str


class PipelineState(TypedDict, total=False):
    """The execution state: the execution input's keys, then each stage's result under its key."""

    source: str
    detail: ObjectCreatedDetail
    retrain: RetrainRequest
    resume: ResumeRequest
    validation: ValidationResult
    drift: DriftResult
    compute: TrainingPlan
    compute_run: dict[str, Any]
    training: TrainingResult
    evaluation: EvaluationResult
    registration: RegistrationResult
    deployment: DeploymentPlan
    approval: Approval
    bake: BakeResult
    rollback: RollbackResult
    promotion: PromotionResult
    error: ExecutionError
    claim: ClaimResult
    finish: FinishResult


class StageInput(TypedDict):
    """The payload of every Lambda task of the state machine."""

    state: PipelineState
    execution_id: str
    task_token: NotRequired[str]  # "Await approval" only (.waitForTaskToken)


# --- what each stage reads of the state (its input) -----------------------------------------------


class ValidateInput(TypedDict):
    detail: ObjectCreatedDetail


class DriftInput(TypedDict):
    validation: ValidationResult


class TrainInput(TypedDict):
    validation: ValidationResult
    claim: NotRequired[ClaimResult]


class ClaimInput(TypedDict):
    validation: ValidationResult
    drift: DriftResult
    detail: NotRequired[ObjectCreatedDetail]
    retrain: NotRequired[RetrainRequest]
    claim: NotRequired[ClaimResult]  # "Start retrain": the claim it checks


class EvaluateInput(TypedDict):
    training: TrainingResult


class RegisterInput(TypedDict):
    training: TrainingResult
    evaluation: EvaluationResult
    validation: NotRequired[ValidationResult]
    drift: NotRequired[DriftResult]
    retrain: NotRequired[RetrainRequest]
    claim: NotRequired[ClaimResult]


class PlanInput(TypedDict):
    registration: RegistrationResult
    evaluation: NotRequired[EvaluationResult]  # champion_version: the compare-and-set's expected champion


class ApprovalInput(TypedDict):
    deployment: DeploymentPlan
    registration: NotRequired[RegistrationResult]


class StartPhaseInput(TypedDict):
    deployment: DeploymentPlan


class CheckBakeInput(TypedDict):
    deployment: DeploymentPlan
    bake: NotRequired[BakeResult]  # the previous check of this deployment


class RollbackInput(TypedDict):
    deployment: DeploymentPlan
    bake: NotRequired[BakeResult]
    error: NotRequired[ExecutionError]  # set when a stage failed (not a bake verdict)


class DeployInput(TypedDict):
    registration: RegistrationResult
    evaluation: NotRequired[EvaluationResult]
    deployment: NotRequired[DeploymentPlan]  # absent when the plan was never made
