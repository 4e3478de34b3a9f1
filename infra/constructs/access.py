"""The roles people assume to work a deployed stack with the CLI (`conveyor ... --stack NAME`).

- The approver role: exactly what `conveyor approve` and `reject` need: read the registry, write a
  version's item and its deployment record (``MODEL#*`` partitions only, never the routing record),
  answer the pipeline's task-token callbacks, follow the execution (``approve --wait``), and put
  the registry events on the default bus.
- The operator role: what changes what serves by hand (`kill`, `revive`, `rollback`,
  `migrate-routing`: the routing record), and what deletes: `impact --erase` and `smoke`'s cleanup
  delete every version of an object. It is the only principal the artifact bucket lets delete an
  object version (its bucket policy denies ``s3:DeleteObjectVersion`` to everyone else, functions
  included). `smoke` also drops data, starts and follows the pipeline and calls the API.

Both trust the account (``AccountRootPrincipal``): a user or role of the account may assume them
when its own IAM policy allows ``sts:AssumeRole`` on them (README, "Operating a deployed stack").
In the stage the deploy workflow smoke-tests, the operator role also trusts that workflow's jobs
(infra/stage_policy.py, ``trust_ci_smoke``).
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra import nag
from infra.constructs.registry import grant_model_items_write, grant_routing_write

# Reading and deleting every version of an object (aws-cdk's grants cover current versions only).
OBJECT_VERSION_ACTIONS = ("s3:ListBucketVersions", "s3:GetObjectVersion", "s3:DeleteObjectVersion")


class OperatorAccess(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        table: dynamodb.ITable,
        data_bucket: s3.IBucket,
        artifact_bucket: s3.IBucket,
        capture_bucket: s3.IBucket,
        state_machine: sfn.StateMachine,
        api: apigw.RestApi,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.approver = iam.Role(
            self,
            "ApproverRole",
            assumed_by=iam.AccountRootPrincipal(),
            description=f"{stack.stack_name}: conveyor approve / reject",
        )
        self.operator = iam.Role(
            self,
            "OperatorRole",
            # A name the deploy workflow can compute ({stack}-{region}-operator): its smoke step assumes it.
            role_name=f"{stack.stack_name}-{stack.region}-operator",
            assumed_by=iam.AccountRootPrincipal(),
            description=f"{stack.stack_name}: conveyor kill / revive / rollback / impact --erase / smoke",
        )
        default_bus = events.EventBus.from_event_bus_name(self, "DefaultBus", "default")
        executions = stack.format_arn(
            service="states",
            resource="execution",
            resource_name=f"{state_machine.state_machine_name}:*",
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )
        for role in (self.approver, self.operator):
            _may_follow_the_stack(role, stack, state_machine, executions)

        grant_model_items_write(table, self.approver)
        state_machine.grant_task_response(self.approver)
        default_bus.grant_put_events_to(self.approver)  # ModelApproved, ModelRejected

        grant_routing_write(table, self.operator)
        for bucket in (data_bucket, artifact_bucket, capture_bucket):
            bucket.grant_read(self.operator)
            bucket.grant_delete(self.operator)
            self.operator.add_to_policy(
                iam.PolicyStatement(
                    actions=list(OBJECT_VERSION_ACTIONS),
                    resources=[bucket.bucket_arn, bucket.arn_for_objects("*")],
                )
            )
        data_bucket.grant_put(self.operator)  # smoke: the drop
        artifact_bucket.grant_put(self.operator)  # smoke: the spec
        state_machine.grant_start_execution(self.operator)  # impact --retrain
        self.operator.add_to_policy(
            iam.PolicyStatement(actions=["execute-api:Invoke"], resources=[api.arn_for_execute_api()])
        )  # smoke: predict

        artifact_bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="OnlyTheOperatorDeletesVersions",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["s3:DeleteObjectVersion"],
                resources=[artifact_bucket.arn_for_objects("*")],
                conditions={"ArnNotEquals": {"aws:PrincipalArn": self.operator.role_arn}},
            )
        )
        nag.operator_roles(
            self.approver, self.operator, state_machine, api, [data_bucket, artifact_bucket, capture_bucket]
        )


def _may_follow_the_stack(role: iam.Role, stack: cdk.Stack, state_machine: sfn.StateMachine, executions: str) -> None:
    """What every person's role needs to use the CLI with ``--stack``: the outputs and the executions."""
    # `--stack NAME` finds the stack's resources by its outputs.
    role.add_to_policy(iam.PolicyStatement(actions=["cloudformation:DescribeStacks"], resources=[stack.stack_id]))
    # Follow executions (approve --wait, smoke, impact --retrain); status lists the latest.
    role.add_to_policy(
        iam.PolicyStatement(actions=["states:ListExecutions"], resources=[state_machine.state_machine_arn])
    )
    role.add_to_policy(
        iam.PolicyStatement(actions=["states:DescribeExecution", "states:GetExecutionHistory"], resources=[executions])
    )
