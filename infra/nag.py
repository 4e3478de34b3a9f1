"""cdk-nag suppressions: each finding we accept, with the reason, scoped as narrowly as cdk-nag allows.

IAM5 (wildcard) suppressions name the exact wildcard they accept (`applies_to`), so a new
wildcard introduced later is still reported.
"""

from __future__ import annotations

from collections.abc import Iterable

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import IConstruct

# The wildcard actions of aws-cdk's Bucket.grant_read / grant_read_write / grant_put.
S3_GRANT_ACTIONS = (
    "Action::s3:GetObject*",
    "Action::s3:GetBucket*",
    "Action::s3:List*",
    "Action::s3:DeleteObject*",
    "Action::s3:Abort*",
)
BASIC_EXECUTION_POLICY = "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
API_GATEWAY_LOGS_POLICY = (
    "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
)


def logical_id(construct: IConstruct) -> str:
    """The CloudFormation logical id of an L2 construct's resource, as cdk-nag prints it."""
    stack = cdk.Stack.of(construct)
    default_child = construct.node.default_child
    if not isinstance(default_child, cdk.CfnElement):
        raise TypeError(f"{construct.node.path} has no CloudFormation resource")
    return str(stack.resolve(stack.get_logical_id(default_child)))


def objects_in(bucket: s3.IBucket, key_pattern: str = "*") -> str:
    return f"Resource::<{logical_id(bucket)}.Arn>/{key_pattern}"


def _suppress(construct: IConstruct, rule: str, reason: str, applies_to: Iterable[str] | None = None) -> None:
    NagSuppressions.add_resource_suppressions(
        construct,
        [NagPackSuppression(id=rule, reason=reason, applies_to=list(applies_to) if applies_to else None)],
        apply_to_children=True,
    )


def function_baseline(fn: lambda_.Function, *, zip_package: bool) -> None:
    """What every Conveyor function's role and runtime accepts."""
    role = fn.role
    assert role is not None
    _suppress(
        role,
        "AwsSolutions-IAM5",
        "Active X-Ray tracing: xray:PutTraceSegments/PutTelemetryRecords support no resource scoping.",
        ["Resource::*"],
    )
    if zip_package:
        _suppress(
            fn,
            "AwsSolutions-L1",
            "Pinned to python3.12 on purpose: the layers' wheels, the training image and pyproject "
            "target CPython 3.12; the runtime moves with them in one change.",
        )


def bucket_grants(grantee: iam.IGrantable, buckets: Iterable[tuple[s3.IBucket, str]], reason: str) -> None:
    """Accept the object-level wildcards of aws-cdk's bucket grants to `grantee` (a function)."""
    role = grantee.grant_principal
    if not isinstance(role, iam.Role):
        raise TypeError("bucket grants are suppressed on the grantee's role")
    _suppress(
        role,
        "AwsSolutions-IAM5",
        f"aws-cdk bucket grants: object actions on keys under the bucket, no other bucket. {reason}",
        [*S3_GRANT_ACTIONS, *(objects_in(bucket, pattern) for bucket, pattern in buckets)],
    )


def state_machine_role(role: iam.IRole, functions: Iterable[lambda_.IFunction]) -> None:
    _suppress(
        role,
        "AwsSolutions-IAM5",
        "LambdaInvoke grants <function>:* so the pipeline may invoke a version or alias of its own "
        "functions; log delivery and X-Ray actions support no resource scoping (Resource::*); "
        "kms:GenerateDataKey* on the alerts key only, to publish to the encrypted topic.",
        [
            *(f"Resource::<{logical_id(fn)}.Arn>:*" for fn in functions),
            "Resource::*",
            "Action::kms:GenerateDataKey*",
        ],
    )


def rest_api(api: cdk.IResource, cloud_watch_role: IConstruct | None) -> None:
    _suppress(
        api,
        "AwsSolutions-COG4",
        "Callers are services signing with SigV4: methods use IAM authorization, not Cognito user pools.",
    )
    _suppress(
        api,
        "AwsSolutions-APIG3",
        "No WAF for now: only IAM-authorized (signed) principals reach the API and the stage is "
        "throttled; add a web ACL when the API is exposed to untrusted networks.",
    )
    if cloud_watch_role is not None:
        _suppress(
            cloud_watch_role,
            "AwsSolutions-IAM4",
            "API Gateway's account-level role for access/execution logs: the AWS managed policy is the "
            "documented one for it.",
            [API_GATEWAY_LOGS_POLICY],
        )


def cdk_singletons(stack: cdk.Stack) -> None:
    """Functions aws-cdk adds itself (the S3 notifications custom resource)."""
    for child in stack.node.children:
        if child.node.id.startswith("BucketNotificationsHandler"):
            _suppress(
                child,
                "AwsSolutions-IAM4",
                "aws-cdk's bucket-notifications custom resource (turns on EventBridge delivery of the "
                "data bucket) uses the basic execution policy for its own logs only.",
                [BASIC_EXECUTION_POLICY],
            )


def metrics_publisher(fn: lambda_.Function) -> None:
    """cloudwatch:PutMetricData has no resource-level permissions; the grant is limited by a namespace condition."""
    role = fn.role
    assert role is not None
    _suppress(
        role,
        "AwsSolutions-IAM5",
        "cloudwatch:PutMetricData supports no resource scoping; the statement is conditioned on the "
        "Conveyor metrics namespace.",
        ["Resource::*"],
    )


def topic_publisher(fn: lambda_.Function) -> None:
    """Publishing to the encrypted alerts topic: aws-cdk's topic grant adds the key's GenerateDataKey*."""
    role = fn.role
    assert role is not None
    _suppress(
        role,
        "AwsSolutions-IAM5",
        "kms:GenerateDataKey* on the alerts topic's key only (aws-cdk's grant_publish), to publish to the "
        "encrypted topic.",
        ["Action::kms:GenerateDataKey*"],
    )


def capture_delivery(stream: IConstruct, capture_bucket: s3.IBucket) -> None:
    """The capture delivery stream's role: aws-cdk's S3 destination grant (object wildcards on the
    capture bucket only) and its own log group."""
    _suppress(
        stream,
        "AwsSolutions-IAM5",
        "Firehose writes objects under the capture bucket's dynamic prefixes (one per model and hour): "
        "aws-cdk's bucket grant to the delivery role, object actions on that bucket only.",
        [*S3_GRANT_ACTIONS, objects_in(capture_bucket, "*")],
    )


def alarm_sync(fn: lambda_.Function) -> None:
    """Functions that keep the per-model alarms: alarm actions on the stack's own alarms only."""
    role = fn.role
    assert role is not None
    _suppress(
        role,
        "AwsSolutions-IAM5",
        "Per-model alarms are created after deploy time, named {stack}-{model}-{signal}: PutMetricAlarm, "
        "TagResource and DeleteAlarms on alarms named with this stack's prefix only.",
        ["Resource::arn:<AWS::Partition>:cloudwatch:<AWS::Region>:<AWS::AccountId>:alarm:<AWS::StackName>-*"],
    )


def function_invoker(fn: lambda_.Function, invoked: lambda_.IFunction) -> None:
    """aws-cdk's grant_invoke covers the function and its versions and aliases (``<arn>:*``)."""
    role = fn.role
    assert role is not None
    _suppress(
        role,
        "AwsSolutions-IAM5",
        "grant_invoke allows the function's versions and aliases (<function>:*) beside the function; "
        "one function only.",
        [f"Resource::<{logical_id(invoked)}.Arn>:*"],
    )


def distributed_map_role(state_machine: sfn.StateMachine, items_bucket: s3.IBucket) -> None:
    """The batch state machine's Distributed Map (aws-cdk's grants): the ItemReader (GetObject) and
    ResultWriter (PutObject, multipart) on objects of the artifact bucket, and the map's child
    executions, which are this state machine's own executions."""
    _suppress(
        state_machine.role,
        "AwsSolutions-IAM5",
        "Distributed Map (aws-cdk): the ItemReader reads the chunk manifest and the ResultWriter writes the "
        "chunks' results, object actions in the artifact bucket only.",
        [f"Resource::arn:<AWS::Partition>:s3:::<{logical_id(items_bucket)}>/*"],
    )
    own = f'{{"Fn::Select":[6,{{"Fn::Split":[":",{{"Ref":"{logical_id(state_machine)}"}}]}}]}}'
    executions = f"Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:{own}"
    _suppress(
        state_machine,
        "AwsSolutions-IAM5",
        "Distributed Map (aws-cdk): describe, stop and redrive the child executions of this state machine's "
        "own map runs, no other state machine's.",
        [f"{executions}:*", f"{executions}/*:*"],
    )


def operator_roles(
    approver: iam.Role, operator: iam.Role, state_machine: IConstruct, api: IConstruct, buckets: Iterable[s3.IBucket]
) -> None:
    """The people's roles (infra/constructs/access.py): following the pipeline's executions and (the
    operator's) aws-cdk's grants on the buckets' objects and invoking the API."""
    executions = (
        "Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:"
        f"<{logical_id(state_machine)}.Name>:*"
    )
    _suppress(
        approver,
        "AwsSolutions-IAM5",
        "Describe and read the history of the pipeline's own executions (any execution name).",
        [executions],
    )
    _suppress(
        operator,
        "AwsSolutions-IAM5",
        "Describe the pipeline's own executions; read, put and delete (every version of) objects of the "
        "stack's three buckets, for erasure requests and the smoke test's cleanup (aws-cdk's grants); "
        "invoke the stack's API (any stage, method and path) for the smoke test's prediction.",
        [
            executions,
            *S3_GRANT_ACTIONS,
            *(objects_in(bucket, "*") for bucket in buckets),
            f"Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:<{logical_id(api)}>/*/*/*",
        ],
    )


def training_compute(compute: IConstruct, artifact_bucket: s3.IBucket, sagemaker_output: str) -> None:
    """The training task (Fargate) and job (SageMaker) of infra/constructs/training_compute.py."""
    _suppress(
        compute,
        "AwsSolutions-ECS2",
        "The training container's environment holds resource names only (buckets, table, topic): no secrets.",
    )
    _suppress(
        compute,
        "AwsSolutions-IAM5",
        "ecr:GetAuthorizationToken supports no resource scoping (Resource::*) for pulling the training image; "
        "the SageMaker job writes its own log streams under /aws/sagemaker/TrainingJobs (any job name) and "
        "its (empty) model output under the artifact bucket's staging/sagemaker prefix.",
        [
            "Resource::*",
            objects_in(artifact_bucket, f"{sagemaker_output}*"),
            "Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:/aws/sagemaker/TrainingJobs:*",
        ],
    )


def training_compute_caller(role: iam.IRole, task_definition: IConstruct) -> None:
    """The pipeline's role running the training task and job (aws-cdk's grants for the .sync integrations)."""
    ref = f'{{"Ref":"{logical_id(task_definition)}"}}'

    def part(index: int) -> str:
        return f'{{"Fn::Select":[{index},{{"Fn::Split":[":",{ref}]}}]}}'

    def family(index: int) -> str:
        return f'{{"Fn::Select":[{index},{{"Fn::Split":["/",{part(5)}]}}]}}'

    revisions = f"Resource::arn:{part(1)}:{part(2)}:{part(3)}:{part(4)}:{family(0)}/{family(1)}:*"
    _suppress(
        role,
        "AwsSolutions-IAM5",
        "ecs:runTask.sync and sagemaker:createTrainingJob.sync (aws-cdk's grants): run any revision of the "
        "training task definition's own family; create, describe and stop training jobs (named per run, "
        "so any name); stop and describe tasks and the managed EventBridge rules Step Functions uses to "
        "learn that a task or job ended support no narrower scoping (Resource::*).",
        [
            revisions,
            "Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:training-job/*",
            "Resource::*",
        ],
    )
