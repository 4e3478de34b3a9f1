"""What the serving benchmark's processes share: the model files, the request bodies, the
environment of the predict function, the seeding of a (moto) registry and artifact bucket,
and API Gateway proxy events.

Imported by the benchmark runner and by the helper scripts it starts in fresh processes, so it
imports only the standard library at module level (the cold-start script must not pay for
anything here before it starts its clock on the handler's import).
"""

from __future__ import annotations

import copy
import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
MODEL = "doctor-visits"
ARTIFACT_BUCKET = "artifacts"
REGISTRY_TABLE = "registry"
PREDICT_EVENT = ROOT / "events" / "apigw" / "predict.json"

# Files written by the runner into the benchmark directory (see write_models / write_bodies).
ONNX_FILE = "model.onnx"
JOBLIB_FILE = "model.joblib"
CONTRACT_FILE = "contract.json"  # the serving contract the register stage stores beside the version
BODIES_FILE = "bodies.json"
CAPTURE_BUCKET = "capture"


def function_environment(
    model_dir: Path, routing_cache_seconds: float = 3600.0, capture_bucket: str = ""
) -> dict[str, str]:
    """The predict function's environment (as the stack sets it), with a long routing cache.

    Without ``capture_bucket`` the handler gets no capture transport: capture records are still
    built (and masked) for every request, then dropped (``NullCapture``).
    """
    return {
        "DATA_BUCKET": "data",
        "ARTIFACT_BUCKET": ARTIFACT_BUCKET,
        "CAPTURE_BUCKET": capture_bucket,
        "REGISTRY_TABLE": REGISTRY_TABLE,
        "ALERTS_TOPIC_ARN": "",
        "ROUTING_CACHE_SECONDS": str(routing_cache_seconds),
        "MAX_BATCH_ROWS": "1000",
        "CONVEYOR_MODEL_DIR": str(model_dir),
        "POWERTOOLS_SERVICE_NAME": "conveyor",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
    }


def joblib_key(onnx_key: str) -> str:
    """Where the scikit-learn twin of an ONNX artifact is stored: beside it, ``.joblib``."""
    return onnx_key.removesuffix(".onnx") + ".joblib"


def seed_cloud(
    s3: Any,
    dynamodb: Any,
    onnx: bytes,
    joblib_bytes: bytes,
    *,
    contract: bytes | None = None,
    bucket: str = ARTIFACT_BUCKET,
    table: str = REGISTRY_TABLE,
    create: bool = True,
    capture_bucket: str = "",
) -> str:
    """Store both artifacts, register the model as approved and serve it, as the pipeline leaves it.

    With ``create`` the artifact bucket and the registry table are created first (a bare moto);
    without, they exist already (the local cloud created them from the template). Returns the
    ONNX artifact key. ``contract`` (JSON bytes) is stored content-addressed and named by the
    version, as the register stage does, when the registry knows contracts. ``s3`` is a boto3 S3
    client and ``dynamodb`` a boto3 DynamoDB resource (moto, in-process or over HTTP).
    """
    import dataclasses

    from conveyor.adapters.aws import DynamoTable
    from conveyor.layout import artifact_key
    from conveyor.registry import ModelVersion, Registry, sha256_hex

    if create:
        s3.create_bucket(Bucket=bucket)
        if capture_bucket:
            s3.create_bucket(Bucket=capture_bucket)
        dynamodb.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
    digest = sha256_hex(onnx)
    key = artifact_key(MODEL, digest)
    s3.put_object(Bucket=bucket, Key=key, Body=onnx)
    s3.put_object(Bucket=bucket, Key=joblib_key(key), Body=joblib_bytes)
    extra: dict[str, str] = {}
    if contract is not None and "contract_key" in {f.name for f in dataclasses.fields(ModelVersion)}:
        contract_sha = sha256_hex(contract)
        extra = {"contract_key": f"{MODEL}/contracts/sha256-{contract_sha}.json", "contract_sha256": contract_sha}
        s3.put_object(Bucket=bucket, Key=extra["contract_key"], Body=contract)
    registry = Registry(DynamoTable(table, resource=dynamodb))
    version = registry.register(
        ModelVersion(model=MODEL, version=0, status="approved", artifact_key=key, sha256=digest, **extra)
    ).version
    registry.promote(MODEL, version)
    return key


def seed_trial(s3: Any, dynamodb: Any, table: str = REGISTRY_TABLE) -> str:
    """A second model on trial: the benchmark's champion artifact (and contract) registered twice
    under ``{MODEL}-trial``, version 1 serving and version 2 its shadow. Returns its name."""
    from conveyor.adapters.aws import DynamoTable
    from conveyor.registry import ModelVersion, Registry

    registry = Registry(DynamoTable(table, resource=dynamodb))
    champion = registry.routing(MODEL)
    assert champion is not None and champion.champion is not None
    ref = champion.champion
    name = f"{MODEL}-trial"
    for _ in range(2):
        fields = {k: ref[k] for k in ("artifact_key", "sha256", "contract_key", "contract_sha256") if ref.get(k)}
        registry.register(ModelVersion(model=name, version=0, status="approved", **fields))
    registry.promote(name, 1)
    registry.set_shadow(name, 2)
    return name


def predict_event(body: str, request_id: str = "bench", model: str = MODEL) -> dict[str, Any]:
    """The API Gateway REST proxy event of ``POST /models/{model}/predict`` with ``body``."""
    event: dict[str, Any] = copy.deepcopy(json.loads(PREDICT_EVENT.read_text()))
    event["path"] = f"/models/{model}/predict"
    event["pathParameters"] = {"model": model}
    event["body"] = body
    event["headers"]["X-Request-Id"] = request_id
    event["multiValueHeaders"]["X-Request-Id"] = [request_id]
    return event


@dataclass
class Context:
    """The attributes of Lambda's context object that Powertools reads."""

    function_name: str = "predict"
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:predict"
    memory_limit_in_mb: int = 1024
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = "/aws/lambda/predict"
    log_stream_name: str = "bench"
    deadline: float = field(default_factory=lambda: time.monotonic() + 30)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def read_contract(directory: Path) -> bytes | None:
    """The serving contract the runner wrote, if this checkout has contracts."""
    path = directory / CONTRACT_FILE
    return path.read_bytes() if path.exists() else None


def load_bodies(directory: Path) -> dict[str, str]:
    """``{"one": body of 1 row, "batch": body of 100 rows}`` written by the runner."""
    bodies: dict[str, str] = json.loads((directory / BODIES_FILE).read_text())
    return bodies


def peak_rss_mb() -> float:
    """This process's peak resident memory (``VmHWM``), as data_gate_stage.py reads it."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")
