"""Every name and number of the Conveyor CDK app, in one place."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration
from aws_cdk import aws_logs as logs

from conveyor import layout

REPO_ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS_DIR = REPO_ROOT / "functions"
CORE_LAYER_DIR = REPO_ROOT / "layers" / "core"
INFERENCE_LAYER_DIR = REPO_ROOT / "layers" / "inference"
TRAINING_DOCKERFILE = "layers/training/Dockerfile"  # relative to REPO_ROOT, the image build context

# aws-cdk feature flags the app relies on (set by build_app, so every synth path agrees).
FEATURE_FLAGS: dict[str, object] = {
    # Server access logs delivered through a bucket policy, not the legacy LogDeliveryWrite ACL.
    "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": True,
    # Merge IAM statements: smaller policies, fewer repeated wildcard entries.
    "@aws-cdk/aws-iam:minimizePolicies": True,
}
SERVICE_NAME = "conveyor"
METRICS_NAMESPACE = "Conveyor"
LOG_LEVEL = "INFO"

# The local cloud maps each Lambda function to its handler folder by this tag.
FUNCTION_TAG = "conveyor:function"

# S3 layout: a drop under {model}/incoming/ starts the pipeline; a label file under
# {model}/labels/ goes to the label ingest (the same rule and queue: the dispatcher routes by key).
INCOMING_KEY_WILDCARD = f"*/{layout.INCOMING}/*"
LABELS_KEY_WILDCARD = f"*/{layout.LABELS}/*"
LABELS_QUARANTINE_KEY_WILDCARD = f"*/{layout.QUARANTINE}/{layout.LABELS}/*"
# Capture bucket: what the monitor and the label ingest write beside the captured requests (never those).
MONITOR_REPORTS_KEY_WILDCARD = f"*/{layout.MONITOR}/*"
LABELS_JOINED_KEY_WILDCARDS = (f"*/{layout.LABELS_JOINED}/*", f"*/{layout.LABELS_REPORTS}/*")
# An object under {model}/batch/ is scored (the same rule and queue; the dispatcher routes by key).
BATCH_KEY_WILDCARD = f"*/{layout.BATCH}/*"
SCORED_KEY_WILDCARD = f"*/{layout.SCORED}/*"
STAGING_KEY_WILDCARD = f"{layout.STAGING_PREFIX}*"  # staged files: one top-level prefix, expired by a lifecycle rule
CAPTURE_KEY_WILDCARD = f"*/{layout.CAPTURE}/*"

# Lambda runtime shared by every function (zip and image alike).
PYTHON_VERSION = "3.12"
HANDLER = "handler.lambda_handler"
LOG_RETENTION = logs.RetentionDays.ONE_MONTH

# The training image is built from the repo root; only what the Dockerfile copies is sent.
# Paths are relative to REPO_ROOT, with .dockerignore semantics.
TRAINING_IMAGE_EXCLUDE = [
    ".venv",
    ".git",
    ".ci",
    "cdk.out",
    "node_modules",
    "tests",
    "events",
    ".conveyor",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".hypothesis",
    "build",
    "cdk.json",
    "pyproject.toml",
    "Makefile",
    "README.md",
    ".gitignore",
    "infra",
    "layers/inference",
    "layers/core/python/conveyor/localcloud",
    "layers/core/python/conveyor/cli",
    "**/*.egg-info",
    "**/__pycache__",
    "**/*.pyc",
]

# The core layer ships the domain package only: not the local cloud, not the CLI.
CORE_LAYER_EXCLUDE = [
    "python/conveyor/localcloud",
    "python/conveyor/cli",
    "python/*.egg-info",
    "**/__pycache__",
    "*.pyc",
]

# pip target platform of the inference layer: Lambda python3.12 runs on Amazon Linux 2023
# (glibc 2.34), so manylinux_2_28 wheels (recent numpy publishes only those) are loadable.
LAYER_PIP_PLATFORMS = ["manylinux2014_x86_64", "manylinux_2_28_x86_64"]
# Removed from the dependency layer after pip: nothing on a function's path loads them (the
# onnxruntime Python binding links its runtime statically, so libonnxruntime.so is never mapped;
# tests/infra/test_bundling.py scores a model with a pruned copy). 33 MB + about 10 MB, and the
# layer fits the 120 MB serving budget. `*.libs/` folders are never touched (numpy links them).
LAYER_PRUNE = [
    "onnxruntime/capi/libonnxruntime.so.*",
    "onnxruntime/transformers",
    "onnxruntime/quantization",
    "onnxruntime/tools",
    "numpy/*/tests",
    "numpy/tests",
]


class Fn:
    """Function names: one per folder in functions/, also the value of FUNCTION_TAG."""

    DISPATCH = "dispatch"
    VALIDATE = "validate"
    TRAIN = "train"
    EVALUATE = "evaluate"
    DRIFT = "drift"
    REGISTER = "register"
    DEPLOY = "deploy"  # promotion: all traffic to the version
    PLAN = "plan"  # the deployment plan, from the version's spec
    APPROVAL = "approval"  # manual approval: keeps the task token, tells the reviewers
    TRIAL = "trial"  # starts a phase: the version as shadow or challenger
    BAKE = "bake"  # judges a phase on its capture records
    ROLLBACK = "rollback"  # ends a failed trial
    CLAIM = "claim"  # one retrain per burst: owns the model's next training, or folds into it
    SETTLE = "settle"  # "Start retrain": trains once the burst settled (and wait_for's marker is there)
    TRAIN_PLAN = "train_plan"  # "Choose compute": where the retrain runs (conveyor.compute), its input staged
    TRAIN_RESULT = "train_result"  # "Read training result": a training container's result into the state
    FINISH = "finish"  # the end of a run: releases the retrain lease or queues the follow-up round
    PREDICT = "predict"
    ALARM_ACTION = "alarm_action"  # a per-model alarm changed state: the spec's on_alarm action
    MONITOR = "monitor"  # the live monitor: the schedule's tick, or one model now
    LABELS = "labels"  # joins a label file with the capture
    BOARD_WIDGET = "board_widget"  # the dashboard's custom widget: registry view, approve/reject
    BATCH_PLAN = "batch_plan"  # batch scoring: which version, and the chunks (an items manifest)
    BATCH_SCORE = "batch_score"  # scores one chunk (an item of the Distributed Map)


ZIP_FUNCTIONS = (
    Fn.DISPATCH,
    Fn.REGISTER,
    Fn.DEPLOY,
    Fn.APPROVAL,
    Fn.TRIAL,
    Fn.BAKE,
    Fn.ROLLBACK,
    Fn.FINISH,
    Fn.TRAIN_RESULT,
    Fn.PREDICT,
    Fn.ALARM_ACTION,
    Fn.BOARD_WIDGET,
)
# plan, claim and settle parse the spec (pydantic, yaml): the zip functions' layers ship neither. The
# monitor runs the drift code (pandas, scikit-learn), labels read Parquet.
IMAGE_FUNCTIONS = (
    Fn.VALIDATE,
    Fn.DRIFT,
    Fn.TRAIN,
    Fn.EVALUATE,
    Fn.PLAN,
    Fn.CLAIM,
    Fn.SETTLE,
    Fn.TRAIN_PLAN,
    Fn.MONITOR,
    Fn.LABELS,
    Fn.BATCH_PLAN,
    Fn.BATCH_SCORE,
)

# (memory MB, timeout) per function.
FUNCTION_SIZING: dict[str, tuple[int, Duration]] = {
    Fn.DISPATCH: (512, Duration.seconds(30)),
    Fn.VALIDATE: (2048, Duration.minutes(5)),
    Fn.TRAIN: (3008, Duration.minutes(15)),
    Fn.EVALUATE: (2048, Duration.minutes(5)),
    Fn.DRIFT: (2048, Duration.minutes(5)),
    Fn.REGISTER: (512, Duration.minutes(1)),
    Fn.DEPLOY: (512, Duration.minutes(1)),
    Fn.PLAN: (1024, Duration.minutes(1)),
    Fn.APPROVAL: (512, Duration.seconds(30)),
    Fn.TRIAL: (512, Duration.seconds(30)),
    Fn.BAKE: (1024, Duration.minutes(1)),
    Fn.ROLLBACK: (512, Duration.seconds(30)),
    Fn.CLAIM: (512, Duration.seconds(30)),
    Fn.SETTLE: (512, Duration.seconds(30)),
    Fn.FINISH: (512, Duration.seconds(30)),
    Fn.TRAIN_PLAN: (1024, Duration.minutes(1)),
    Fn.TRAIN_RESULT: (512, Duration.seconds(30)),
    # Below API Gateway's 29 s integration timeout: a slow answer is the function's timeout, not a 504.
    Fn.PREDICT: (1024, Duration.seconds(20)),
    Fn.ALARM_ACTION: (512, Duration.seconds(60)),
    # 1,000,000 capture records in a window: 531 MB peak and 20 s on 2 cores (tests/benchmarks/test_monitor_bench.py).
    Fn.MONITOR: (2048, Duration.minutes(15)),
    Fn.LABELS: (2048, Duration.minutes(5)),
    Fn.BOARD_WIDGET: (512, Duration.seconds(30)),
    Fn.BATCH_PLAN: (1024, Duration.minutes(5)),
    Fn.BATCH_SCORE: (3008, Duration.minutes(15)),
}
TRAIN_EPHEMERAL_STORAGE_MB = 2048
# Training on Fargate / SageMaker (infra/constructs/training_compute.py): the task's and the job's disk,
# and where SageMaker writes its (empty) model output in the artifact bucket (under staging/: expired).
TRAINING_TASK_STORAGE_GIB = 100
SAGEMAKER_VOLUME_GIB = 100
SAGEMAKER_OUTPUT_PREFIX = f"{layout.STAGING_PREFIX}sagemaker"
# Validate streams a drop to /tmp and reads it in chunks: its disk bounds the drop (max_file_mb).
VALIDATE_EPHEMERAL_STORAGE_MB = 10240
# Drift streams the accepted drop to /tmp too (conveyor.drift.sample): the same disk.
DRIFT_EPHEMERAL_STORAGE_MB = VALIDATE_EPHEMERAL_STORAGE_MB
# Batch scoring: chunks scored at once by the Distributed Map, and the whole job's time limit.
BATCH_MAX_CONCURRENCY = 100
BATCH_TIMEOUT = Duration.hours(24)
# Where the Map's ResultWriter writes each job's results (artifact bucket; the job's plan is beside
# it under {model}/staging/batch-{id}/).
BATCH_RESULTS_PREFIX = layout.BATCH_RESULTS_PREFIX

# Ingest: the dispatcher consumes the queue in batches and reports per-message failures.
DISPATCH_BATCH_SIZE = 10
# AWS recommends a visibility timeout of at least six times the consumer's timeout.
INGEST_VISIBILITY_TIMEOUT = Duration.seconds(6 * 30)
INGEST_MAX_RECEIVE_COUNT = 5
QUEUE_RETENTION = Duration.days(14)

# Training takes minutes; a deployment may wait up to 7 days for approval and bake up to 7 days
# (bounds checked by the spec: conveyor.spec.MAX_APPROVAL_TIMEOUT_SECONDS, MAX_TOTAL_BAKE_SECONDS).
PIPELINE_TIMEOUT = Duration.days(15)
# A deployment whose model already has another version on trial retries its first phase:
# 60 s, then x1.5 each time, 10 times (about 1.9 hours), before it gives up.
DEPLOYMENT_BUSY_RETRY_INTERVAL = Duration.seconds(60)
DEPLOYMENT_BUSY_RETRY_ATTEMPTS = 10

# Live monitor: one static schedule; each model's monitor runs when its monitoring.schedule is due.
MONITOR_TICK = Duration.minutes(5)

# Serving.
API_STAGE = "v1"
API_THROTTLE_RATE = 100  # requests per second, steady state
API_THROTTLE_BURST = 200
ROUTING_CACHE_SECONDS = "5"
MAX_BATCH_ROWS = "1000"


# Monitoring (infra/constructs/monitoring.py): alarm state changes queue up for the alarm-action function.
ALARM_ACTION_BATCH_SIZE = 10
ALARM_VISIBILITY_TIMEOUT = Duration.seconds(6 * 60)
ALARM_MAX_RECEIVE_COUNT = 5
ALARM_STATE_CHANGE = "CloudWatch Alarm State Change"
# System alarms: one period, breached by any occurrence unless a threshold says otherwise.
SYSTEM_ALARM_PERIOD = Duration.minutes(5)
PREDICT_DURATION_P99_MS = 1000
PREDICT_MAX_CONCURRENCY = 800  # of the default 1,000 per account and region
API_LATENCY_P99_MS = 2000
# CDK context key: a chat webhook subscribed to the alerts topic (`cdk deploy -c alert_webhook_url=https://...`);
# alert e-mails are a stage setting (infra/stages.py, `-c alert_emails=a@x,b@y`).
CONTEXT_ALERT_WEBHOOK = "alert_webhook_url"


# Output ids the local cloud and the CLI read.
class Output:
    DATA_BUCKET = "DataBucketName"
    ARTIFACT_BUCKET = "ArtifactBucketName"
    CAPTURE_BUCKET = "CaptureBucketName"
    REGISTRY_TABLE = "RegistryTableName"
    ALERTS_TOPIC = "AlertsTopicArn"
    STATE_MACHINE = "StateMachineArn"
    BATCH_STATE_MACHINE = "BatchStateMachineArn"
    INGEST_QUEUE = "IngestQueueUrl"
    API_URL = "ApiUrl"
    STACK_NAME = "StackName"
    ALARM_QUEUE = "AlarmQueueUrl"
    MONITOR_FUNCTION = "MonitorFunctionName"
    DASHBOARD = "DashboardName"
    APPROVER_ROLE = "ApproverRoleArn"
    OPERATOR_ROLE = "OperatorRoleArn"


# Capture (docs/capture.md): Firehose partitions records by their "model" field into the same
# layout the local batch writer uses; failed records land under the error prefix.
CAPTURE_PREFIX = f"!{{partitionKeyFromQuery:model}}/{layout.CAPTURE}/!{{timestamp:yyyy/MM/dd/HH}}/"
CAPTURE_ERROR_PREFIX = "capture-errors/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd/HH}/"
CAPTURE_PARTITION_QUERY = ".model"
CAPTURE_BUFFER_INTERVAL = Duration.seconds(60)  # the least with dynamic partitioning: captures land 1-2 min late
PREDICT_ALIAS = "live"  # the API calls this alias of predict (SnapStart and provisioned concurrency need one)
CAPTURE_BUFFER_MIB = 64  # dynamic partitioning needs a buffer of at least 64 MiB
CAPTURE_FILE_EXTENSION = layout.CAPTURE_EXTENSION
