"""One creator per resource type of the synthesized template: each makes its resources on the moto
server with the API call AWS (or CloudFormation) would make.

``CREATORS`` lists them in creation order (buckets before their notifications, functions before the
state machines and event source mappings that call them). Types no creator handles are counted as
skipped by ``LocalCloud``.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from conveyor.errors import ConveyorError
from conveyor.localcloud.poller import QueuePoller
from conveyor.localcloud.resolver import Names
from conveyor.localcloud.runtime import FUNCTION_TAG, LambdaRuntime, LocalFunction
from conveyor.localcloud.schedules import LocalSchedules
from conveyor.localcloud.schedules import Target as ScheduleTarget

# Environment variables naming resources the local cloud does not create, with the reason. The
# functions run without them and fall back to what works locally.
CLOUD_ONLY_ENVIRONMENT = {
    # Capture lines reach the bucket through a log subscription filter and Firehose in the cloud;
    # moto has no log subscriptions to Firehose and its Firehose no dynamic partitioning: without
    # this, predict writes the same capture lines in batches to the bucket itself.
    "CAPTURE_DELIVERY": "AWS::Logs::SubscriptionFilter",
}

Items = list[tuple[str, dict[str, Any]]]  # (logical id, properties) of one resource type


class LocalCloudError(ConveyorError):
    pass


@dataclass
class Creation:
    """What the creators share: the template, the name resolver, the clients, and what they made."""

    template: dict[str, Any]
    names: Names
    endpoint: str
    region: str
    runtime: LambdaRuntime
    created: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    pollers: list[QueuePoller] = field(default_factory=list)
    # Scheduled rules go here (moto stores them but never fires them); None: not created.
    schedules: LocalSchedules | None = None
    _clients: dict[str, Any] = field(default_factory=dict)
    _role_arn: str = ""

    def client(self, service: str) -> Any:
        if service not in self._clients:
            import boto3

            self._clients[service] = boto3.client(service, endpoint_url=self.endpoint, region_name=self.region)
        return self._clients[service]

    @property
    def role_arn(self) -> str:
        """The one role every function and state machine is given (moto checks only that it exists)."""
        if not self._role_arn:
            self._role_arn = self.client("iam").create_role(
                RoleName="conveyor-local",
                AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
            )["Role"]["Arn"]
        return self._role_arn


def tags(properties: dict[str, Any]) -> dict[str, str]:
    found = properties.get("Tags") or []
    if isinstance(found, dict):
        return {str(k): str(v) for k, v in found.items()}
    return {str(t["Key"]): str(t["Value"]) for t in found}


def find_getatt_targets(value: Any) -> list[str]:
    if isinstance(value, dict):
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            return [target[0] if isinstance(target, list) else str(target).split(".")[0]]
        return [t for v in value.values() for t in find_getatt_targets(v)]
    if isinstance(value, list):
        return [t for v in value for t in find_getatt_targets(v)]
    return []


def placeholder_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "The local cloud runs this function's code in-process from functions/.\n")
    return buffer.getvalue()


def create_buckets(c: Creation, items: Items) -> None:
    s3 = c.client("s3")
    for logical_id, props in items:
        bucket = c.names.ref(logical_id)
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if c.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": c.region}
        s3.create_bucket(**kwargs)
        if props.get("VersioningConfiguration", {}).get("Status") == "Enabled":
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        if "BucketEncryption" in props:
            # CloudFormation and the S3 API spell the same rule differently.
            rules = [
                {"ApplyServerSideEncryptionByDefault": r["ServerSideEncryptionByDefault"]}
                for r in c.names.resolve(props["BucketEncryption"]["ServerSideEncryptionConfiguration"])
                if "ServerSideEncryptionByDefault" in r
            ]
            s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": rules})
        if "PublicAccessBlockConfiguration" in props:
            s3.put_public_access_block(
                Bucket=bucket, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"]
            )
        c.created["AWS::S3::Bucket"] += 1


def create_bucket_notifications(c: Creation, items: Items) -> None:
    """What CDK's notifications custom resource does on AWS, done directly."""
    for _logical_id, props in items:
        c.client("s3").put_bucket_notification_configuration(
            Bucket=c.names.resolve(props["BucketName"]),
            NotificationConfiguration=c.names.resolve(props.get("NotificationConfiguration", {})),
        )
        c.created["Custom::S3BucketNotifications"] += 1


def create_tables(c: Creation, items: Items) -> None:
    for logical_id, props in items:
        table: dict[str, Any] = {
            "TableName": c.names.ref(logical_id),
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
        }
        if props.get("GlobalSecondaryIndexes"):
            table["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
        if table["BillingMode"] == "PROVISIONED":
            table["ProvisionedThroughput"] = props["ProvisionedThroughput"]
        c.client("dynamodb").create_table(**table)
        c.created["AWS::DynamoDB::Table"] += 1


_QUEUE_ATTRIBUTES = ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds", "ReceiveMessageWaitTimeSeconds")


def create_queues(c: Creation, items: Items) -> None:
    # Dead-letter queues first: a queue's redrive policy names its DLQ.
    for logical_id, props in sorted(items, key=lambda q: "RedrivePolicy" in q[1]):
        attributes = {name: str(props[name]) for name in _QUEUE_ATTRIBUTES if name in props}
        if "RedrivePolicy" in props:
            attributes["RedrivePolicy"] = json.dumps(c.names.resolve(props["RedrivePolicy"]))
        c.client("sqs").create_queue(QueueName=c.names.get_att(logical_id, "QueueName"), Attributes=attributes)
        c.created["AWS::SQS::Queue"] += 1


def create_topics(c: Creation, items: Items) -> None:
    for logical_id, _props in items:
        c.client("sns").create_topic(Name=c.names.get_att(logical_id, "TopicName"))
        c.created["AWS::SNS::Topic"] += 1


def _create_schedule(c: Creation, rule: str, props: dict[str, Any]) -> None:
    """A ``rate(...)`` rule: stored in moto for the record, fired by ``LocalSchedules`` with its targets' input."""
    if c.schedules is None:
        c.skipped["AWS::Events::Rule (schedule)"] += 1
        return
    expression = str(props["ScheduleExpression"])
    c.client("events").put_rule(Name=rule, ScheduleExpression=expression, State=props.get("State", "ENABLED"))
    targets = []
    for target in props.get("Targets", []):
        transformer = target.get("InputTransformer") or {}
        targets.append(
            ScheduleTarget(
                function=str(c.names.resolve(target["Arn"])),
                input=target.get("Input"),
                paths=dict(transformer.get("InputPathsMap") or {}),
                template=transformer.get("InputTemplate"),
            )
        )
    c.schedules.add(rule, f"arn:aws:events:{c.region}:123456789012:rule/{rule}", expression, targets)
    c.created["AWS::Events::Rule"] += 1


def create_rules(c: Creation, items: Items) -> None:
    events = c.client("events")
    for logical_id, props in items:
        rule = c.names.ref(logical_id)
        if "ScheduleExpression" in props:
            _create_schedule(c, rule, props)
            continue
        events.put_rule(
            Name=rule,
            EventPattern=json.dumps(c.names.resolve(props["EventPattern"])),
            State=props.get("State", "ENABLED"),
        )
        targets = [{"Id": t["Id"], "Arn": c.names.resolve(t["Arn"])} for t in props.get("Targets", [])]
        if targets:
            events.put_targets(Rule=rule, Targets=targets)
        c.created["AWS::Events::Rule"] += 1


def _function_environment(c: Creation, props: dict[str, Any], environment: dict[str, str]) -> dict[str, str]:
    declared = props.get("Environment", {}).get("Variables", {})
    variables = {k: str(v) for k, v in c.names.resolve(declared).items() if k not in CLOUD_ONLY_ENVIRONMENT}
    for key, value in variables.items():
        if environment.setdefault(key, value) != value:
            raise LocalCloudError(
                f"functions disagree on environment variable {key} ({environment[key]!r} vs {value!r}); "
                "the local cloud runs all handlers in one process, so a name must have one value"
            )
    return variables


def create_functions(c: Creation, items: Items) -> None:
    """Each function exists in moto (for the Invoke API and Step Functions) with a placeholder zip;
    its code runs in-process from ``functions/``. Every function's environment goes into this
    process's, since all handlers share it."""
    environment: dict[str, str] = {}
    for logical_id, props in items:
        code = tags(props).get(FUNCTION_TAG)
        if code is None:
            c.skipped["AWS::Lambda::Function (CDK internal)"] += 1
            continue
        name = c.names.ref(logical_id)
        c.client("lambda").create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role=c.role_arn,
            Handler="handler.lambda_handler",
            Code={"ZipFile": placeholder_zip()},
            Timeout=int(props.get("Timeout", 3)),
            MemorySize=int(props.get("MemorySize", 128)),
            Environment={"Variables": _function_environment(c, props, environment)},
            Tags=tags(props),
        )
        c.runtime.register(
            LocalFunction(
                name=name,
                arn=c.names.get_att(logical_id, "Arn"),
                code=code,
                memory=int(props.get("MemorySize", 128)),
                timeout=int(props.get("Timeout", 3)),
            )
        )
        c.created["AWS::Lambda::Function"] += 1
    os.environ.update(environment)


def create_state_machines(c: Creation, items: Items) -> None:
    from infra.asl import render_definition  # the renderer the infra tests use: one definition

    for logical_id, props in items:
        document = render_definition(c.template, logical_id, c.names.resolve)
        c.client("stepfunctions").create_state_machine(
            name=c.names.get_att(logical_id, "Name"),
            definition=json.dumps(document),
            roleArn=c.role_arn,
            type=props.get("StateMachineType", "STANDARD"),
        )
        c.created["AWS::StepFunctions::StateMachine"] += 1


def create_event_source_mappings(c: Creation, items: Items) -> None:
    """What Lambda's pollers do for an SQS event source, done by a thread per queue."""
    sqs = c.client("sqs")
    for _logical_id, props in items:
        source = c.names.resolve(props["EventSourceArn"])
        if ":sqs:" not in source:
            c.skipped["AWS::Lambda::EventSourceMapping (non-SQS)"] += 1
            continue
        poller = QueuePoller(
            sqs,
            c.runtime,
            queue_url=sqs.get_queue_url(QueueName=source.rsplit(":", 1)[-1])["QueueUrl"],
            queue_arn=source,
            function=c.names.resolve(props["FunctionName"]),
            batch_size=int(props.get("BatchSize", 10)),
            region=c.region,
        )
        poller.start()
        c.pollers.append(poller)
        c.created["AWS::Lambda::EventSourceMapping"] += 1


CREATORS: tuple[tuple[str, Callable[[Creation, Items], None]], ...] = (
    ("AWS::S3::Bucket", create_buckets),
    ("Custom::S3BucketNotifications", create_bucket_notifications),
    ("AWS::DynamoDB::Table", create_tables),
    ("AWS::SQS::Queue", create_queues),
    ("AWS::SNS::Topic", create_topics),
    ("AWS::Events::Rule", create_rules),
    ("AWS::Lambda::Function", create_functions),
    ("AWS::StepFunctions::StateMachine", create_state_machines),
    ("AWS::Lambda::EventSourceMapping", create_event_source_mappings),
)


def api_function(resources: dict[str, Any], names: Names) -> str:
    """The function behind the REST API's proxy integration ("" if none): the local gateway calls it.
    The API Gateway resources themselves are cloud-only (moto has no data plane for them)."""
    found = ""
    for resource in resources.values():
        if resource["Type"] != "AWS::ApiGateway::Method":
            continue
        integration = resource.get("Properties", {}).get("Integration", {})
        if integration.get("Type") == "AWS_PROXY":
            uri = integration.get("Uri")
            referenced = [t for t in [*find_getatt_targets(uri), *_refs(uri)] if t in resources]
            handlers = [_aliased(resources, t) for t in referenced]
            handlers = [t for t in handlers if resources.get(t, {}).get("Type") == "AWS::Lambda::Function"]
            if handlers:
                found = names.ref(handlers[0])
    return found


def _refs(value: Any) -> list[str]:
    if isinstance(value, dict):
        if "Ref" in value:
            return [str(value["Ref"])]
        return [t for v in value.values() for t in _refs(v)]
    if isinstance(value, list):
        return [t for v in value for t in _refs(v)]
    return []


def _aliased(resources: dict[str, Any], logical_id: str) -> str:
    """A Lambda alias's function (the API calls predict's ``live`` alias); any other id as given. The
    local cloud runs the function's code: versions and aliases are a deployment's concern."""
    resource = resources[logical_id]
    if resource["Type"] == "AWS::Lambda::Alias":
        targets = _refs(resource.get("Properties", {}).get("FunctionName"))
        return targets[0] if targets else logical_id
    return logical_id


def create_all(c: Creation) -> str:
    """Create every resource a creator handles, count the rest as skipped; the API's function name."""
    resources: dict[str, dict[str, Any]] = c.template.get("Resources", {})
    by_type: dict[str, Items] = {}
    for logical_id, resource in resources.items():
        by_type.setdefault(resource["Type"], []).append((logical_id, resource.get("Properties", {})))
    c.role_arn  # noqa: B018 - created first, as before: every run makes the same calls in the same order
    for kind, create in CREATORS:
        create(c, by_type.pop(kind, []))
    for kind, items in by_type.items():
        c.skipped[kind] += len(items)
    return api_function(resources, c.names)
