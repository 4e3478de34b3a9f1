"""The local cloud: the stack's resources, created on a moto server from the synthesized template.

Start order: synthesize (cached) -> moto server on 127.0.0.1 -> Step Functions execution on ->
in-process Lambda runtime -> every resource the template declares that moto serves -> queue
pollers for the event source mappings -> the HTTP gateway for the REST API.
What AWS does behind the scenes for CDK's custom resources (bucket notifications) is done here
directly; IAM, log groups, layers and the API Gateway control plane are cloud-only (listed in
``LocalCloudInfo.skipped``).
"""

from __future__ import annotations

import io
import json
import logging
import os
import sys
import time
import zipfile
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from conveyor.errors import ConveyorError
from conveyor.localcloud.fidelity import serialize_dynamodb_writes
from conveyor.localcloud.gateway import Gateway
from conveyor.localcloud.poller import QueuePoller
from conveyor.localcloud.resolver import Names
from conveyor.localcloud.runtime import FUNCTION_TAG, LambdaRuntime, LocalFunction, install_moto_patch
from conveyor.localcloud.template import STACK, repo_root, synthesized_template

log = logging.getLogger(__name__)

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "conveyor-local", "AWS_SECRET_ACCESS_KEY": "conveyor-local"}

# Environment variables naming resources the local cloud does not create, with the reason. The
# functions run without them and fall back to what works locally.
CLOUD_ONLY_ENVIRONMENT = {
    # moto's Firehose has no dynamic partitioning (it would write every model's records under one
    # prefix): without a stream, predict writes the same capture lines in batches to the bucket itself.
    "CAPTURE_STREAM": "AWS::KinesisFirehose::DeliveryStream",
}


class LocalCloudError(ConveyorError):
    pass


@dataclass
class LocalCloudInfo:
    endpoint: str
    api_url: str
    region: str
    outputs: dict[str, str]
    functions: dict[str, str]
    created: dict[str, int]
    skipped: dict[str, int]
    pid: int = field(default_factory=os.getpid)
    started_at: float = field(default_factory=time.time)
    startup_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _tags(properties: dict[str, Any]) -> dict[str, str]:
    tags = properties.get("Tags") or []
    if isinstance(tags, dict):
        return {str(k): str(v) for k, v in tags.items()}
    return {str(t["Key"]): str(t["Value"]) for t in tags}


def _find_getatt_targets(value: Any) -> list[str]:
    if isinstance(value, dict):
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            return [target[0] if isinstance(target, list) else str(target).split(".")[0]]
        return [t for v in value.values() for t in _find_getatt_targets(v)]
    if isinstance(value, list):
        return [t for v in value for t in _find_getatt_targets(v)]
    return []


def _placeholder_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "The local cloud runs this function's code in-process from functions/.\n")
    return buffer.getvalue()


class LocalCloud:
    def __init__(
        self,
        *,
        root: Path | None = None,
        port: int = 0,
        api_port: int = 0,
        region: str = "us-east-1",
        state_dir: Path | None = None,
    ) -> None:
        self.root = root or repo_root()
        self.port = port
        self.api_port = api_port
        self.region = region
        self.state_dir = state_dir or self.root / ".conveyor"
        self.runtime = LambdaRuntime()
        self._server: Any = None
        self._pollers: list[QueuePoller] = []
        self._gateway: Gateway | None = None
        self.info: LocalCloudInfo | None = None

    # lifecycle --------------------------------------------------------------------------
    def start(self) -> LocalCloudInfo:
        from moto.server import ThreadedMotoServer

        started = time.perf_counter()
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log
        template = synthesized_template(self.root, state_dir=self.state_dir)
        for name, value in CREDENTIALS.items():
            os.environ[name] = value
        os.environ["AWS_DEFAULT_REGION"] = os.environ["AWS_REGION"] = self.region
        os.environ.pop("AWS_PROFILE", None)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        # moto's Step Functions calls Lambda through its own server: tell it where that is.
        os.environ["MOTO_PORT"] = str(port)
        os.environ["AWS_ENDPOINT_URL"] = endpoint
        import requests

        requests.post(
            f"{endpoint}/moto-api/config", json={"stepfunctions": {"execute_state_machine": True}}, timeout=10
        )
        install_moto_patch(self.runtime)
        serialize_dynamodb_writes()
        if str(self.root) not in sys.path:  # functions/ and infra/ are imported from the checkout
            sys.path.insert(0, str(self.root))
        names = Names.for_template(template, region=self.region, endpoint=endpoint, stack=STACK)
        created, skipped, api_function = self._create(template, names, endpoint)
        self._gateway = None
        api_url = ""
        if api_function:
            self._gateway = Gateway(self._invoke_api(api_function), port=self.api_port)
            self._gateway.start()
            api_url = self._gateway.url
        outputs = {}
        for output_id, output in template.get("Outputs", {}).items():
            outputs[output_id] = (
                api_url + "/" if output_id.startswith("ApiUrl") else str(names.resolve(output["Value"]))
            )
        self.info = LocalCloudInfo(
            endpoint=endpoint,
            api_url=api_url,
            region=self.region,
            outputs=outputs,
            functions={f.code: f.name for f in self.runtime.functions.values()},
            created=dict(created),
            skipped=dict(skipped),
            startup_seconds=round(time.perf_counter() - started, 3),
        )
        return self.info

    def stop(self) -> None:
        for poller in self._pollers:
            poller.stop()
        if self._gateway is not None:
            self._gateway.stop()
        from conveyor.capture import flush_all

        flush_all()  # batched captures reach the bucket while the moto server still runs
        if self._server is not None:
            self._server.stop()
        self._server = None

    def write_state(self, path: Path | None = None) -> Path:
        if self.info is None:
            raise LocalCloudError("the local cloud is not started")
        path = path or self.state_dir / "local.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.info.to_dict(), indent=2))
        tmp.replace(path)
        return path

    # resources --------------------------------------------------------------------------
    def _invoke_api(self, function: str) -> Any:
        def invoke(event: dict[str, Any]) -> tuple[Any, bool]:
            result = self.runtime.invoke(function, event)
            return result.payload, result.errored

        return invoke

    def _create(self, template: dict[str, Any], names: Names, endpoint: str) -> tuple[Counter[str], Counter[str], str]:
        import boto3

        def client(service: str) -> Any:
            return boto3.client(service, endpoint_url=endpoint, region_name=self.region)

        s3, ddb, sqs, sns, events, lam, sfn, iam = (
            client(s) for s in ("s3", "dynamodb", "sqs", "sns", "events", "lambda", "stepfunctions", "iam")
        )
        role_arn = iam.create_role(
            RoleName="conveyor-local",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )["Role"]["Arn"]
        resources: dict[str, dict[str, Any]] = template.get("Resources", {})
        created: Counter[str] = Counter()
        skipped: Counter[str] = Counter()
        by_type: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for logical_id, resource in resources.items():
            by_type.setdefault(resource["Type"], []).append((logical_id, resource.get("Properties", {})))

        for logical_id, props in by_type.pop("AWS::S3::Bucket", []):
            bucket = names.ref(logical_id)
            kwargs: dict[str, Any] = {"Bucket": bucket}
            if self.region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
            s3.create_bucket(**kwargs)
            if props.get("VersioningConfiguration", {}).get("Status") == "Enabled":
                s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
            if "BucketEncryption" in props:
                # CloudFormation and the S3 API spell the same rule differently.
                rules = [
                    {"ApplyServerSideEncryptionByDefault": r["ServerSideEncryptionByDefault"]}
                    for r in names.resolve(props["BucketEncryption"]["ServerSideEncryptionConfiguration"])
                    if "ServerSideEncryptionByDefault" in r
                ]
                s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": rules})
            if "PublicAccessBlockConfiguration" in props:
                s3.put_public_access_block(
                    Bucket=bucket, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"]
                )
            created["AWS::S3::Bucket"] += 1
        for _logical_id, props in by_type.pop("Custom::S3BucketNotifications", []):
            s3.put_bucket_notification_configuration(
                Bucket=names.resolve(props["BucketName"]),
                NotificationConfiguration=names.resolve(props.get("NotificationConfiguration", {})),
            )
            created["Custom::S3BucketNotifications"] += 1
        for logical_id, props in by_type.pop("AWS::DynamoDB::Table", []):
            table: dict[str, Any] = {
                "TableName": names.ref(logical_id),
                "KeySchema": props["KeySchema"],
                "AttributeDefinitions": props["AttributeDefinitions"],
                "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
            }
            if props.get("GlobalSecondaryIndexes"):
                table["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
            if table["BillingMode"] == "PROVISIONED":
                table["ProvisionedThroughput"] = props["ProvisionedThroughput"]
            ddb.create_table(**table)
            created["AWS::DynamoDB::Table"] += 1
        queues = sorted(by_type.pop("AWS::SQS::Queue", []), key=lambda q: "RedrivePolicy" in q[1])
        for logical_id, props in queues:
            attributes: dict[str, str] = {}
            for name in (
                "VisibilityTimeout",
                "MessageRetentionPeriod",
                "DelaySeconds",
                "ReceiveMessageWaitTimeSeconds",
            ):
                if name in props:
                    attributes[name] = str(props[name])
            if "RedrivePolicy" in props:
                attributes["RedrivePolicy"] = json.dumps(names.resolve(props["RedrivePolicy"]))
            sqs.create_queue(QueueName=names.get_att(logical_id, "QueueName"), Attributes=attributes)
            created["AWS::SQS::Queue"] += 1
        for logical_id, _props in by_type.pop("AWS::SNS::Topic", []):
            sns.create_topic(Name=names.get_att(logical_id, "TopicName"))
            created["AWS::SNS::Topic"] += 1
        for logical_id, props in by_type.pop("AWS::Events::Rule", []):
            rule = names.ref(logical_id)
            events.put_rule(
                Name=rule,
                EventPattern=json.dumps(names.resolve(props["EventPattern"])),
                State=props.get("State", "ENABLED"),
            )
            targets = [{"Id": t["Id"], "Arn": names.resolve(t["Arn"])} for t in props.get("Targets", [])]
            if targets:
                events.put_targets(Rule=rule, Targets=targets)
            created["AWS::Events::Rule"] += 1

        environment: dict[str, str] = {}
        for logical_id, props in by_type.pop("AWS::Lambda::Function", []):
            code = _tags(props).get(FUNCTION_TAG)
            if code is None:
                skipped["AWS::Lambda::Function (CDK internal)"] += 1
                continue
            name = names.ref(logical_id)
            declared = props.get("Environment", {}).get("Variables", {})
            variables = {k: str(v) for k, v in names.resolve(declared).items() if k not in CLOUD_ONLY_ENVIRONMENT}
            for key, value in variables.items():
                if environment.setdefault(key, value) != value:
                    raise LocalCloudError(
                        f"functions disagree on environment variable {key} ({environment[key]!r} vs {value!r}); "
                        "the local cloud runs all handlers in one process, so a name must have one value"
                    )
            lam.create_function(
                FunctionName=name,
                Runtime="python3.12",
                Role=role_arn,
                Handler="handler.lambda_handler",
                Code={"ZipFile": _placeholder_zip()},
                Timeout=int(props.get("Timeout", 3)),
                MemorySize=int(props.get("MemorySize", 128)),
                Environment={"Variables": variables},
                Tags=_tags(props),
            )
            self.runtime.register(
                LocalFunction(
                    name=name,
                    arn=names.get_att(logical_id, "Arn"),
                    code=code,
                    memory=int(props.get("MemorySize", 128)),
                    timeout=int(props.get("Timeout", 3)),
                )
            )
            created["AWS::Lambda::Function"] += 1
        os.environ.update(environment)

        from infra.asl import render_definition  # the renderer the infra tests use: one definition

        for logical_id, props in by_type.pop("AWS::StepFunctions::StateMachine", []):
            document = render_definition(template, logical_id, names.resolve)
            sfn.create_state_machine(
                name=names.get_att(logical_id, "Name"),
                definition=json.dumps(document),
                roleArn=role_arn,
                type=props.get("StateMachineType", "STANDARD"),
            )
            created["AWS::StepFunctions::StateMachine"] += 1

        for _logical_id, props in by_type.pop("AWS::Lambda::EventSourceMapping", []):
            source = names.resolve(props["EventSourceArn"])
            if ":sqs:" not in source:
                skipped["AWS::Lambda::EventSourceMapping (non-SQS)"] += 1
                continue
            queue_name = source.rsplit(":", 1)[-1]
            poller = QueuePoller(
                sqs,
                self.runtime,
                queue_url=sqs.get_queue_url(QueueName=queue_name)["QueueUrl"],
                queue_arn=source,
                function=names.resolve(props["FunctionName"]),
                batch_size=int(props.get("BatchSize", 10)),
                region=self.region,
            )
            poller.start()
            self._pollers.append(poller)
            created["AWS::Lambda::EventSourceMapping"] += 1

        api_function = ""
        for _logical_id, props in by_type.get("AWS::ApiGateway::Method", []):
            integration = props.get("Integration", {})
            if integration.get("Type") == "AWS_PROXY":
                referenced = [t for t in _find_getatt_targets(integration.get("Uri")) if t in resources]
                handlers = [t for t in referenced if resources[t]["Type"] == "AWS::Lambda::Function"]
                if handlers:
                    api_function = names.ref(handlers[0])
        for kind, items in by_type.items():
            skipped[kind] += len(items)
        return created, skipped, api_function
