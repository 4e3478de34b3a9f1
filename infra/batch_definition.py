"""The state machine "batch": batch scoring of an object dropped under ``{model}/batch/``; one
definition for AWS and for the local cloud.

Plan chunks (a Lambda: the version, and the chunks as an items manifest in S3) -> Score chunks (a
Distributed Map: its ItemReader reads the manifest, each item is one chunk scored by a Lambda, its
ResultWriter writes the chunks' results to S3) -> Scored. The state holds pointers only (the
manifest's key, the results' prefix): a job of any size fits Step Functions' 256 KiB.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from conveyor.batch_workflow import BatchState
from conveyor.workflow import path
from infra import constants as c
from infra.constants import Fn
from infra.states import retry_throttled, stage_payload

PLAN = "plan"  # $.plan: conveyor.workflow.BatchPlan
SCORED = "scored"  # $.scored: where the Map's ResultWriter put the chunks' results
SCORE_CHUNK = "Score chunk"


def build_batch_definition(
    scope: Construct, functions: Mapping[str, lambda_.IFunction], artifact_bucket: s3.IBucket
) -> sfn.IChainable:
    plan = tasks.LambdaInvoke(
        scope,
        BatchState.PLAN,
        lambda_function=functions[Fn.BATCH_PLAN],
        payload=stage_payload(),
        payload_response_only=True,
        result_path=path(PLAN),
        retry_on_service_exceptions=True,
    )
    retry_throttled(plan)
    score = tasks.LambdaInvoke(
        scope,
        SCORE_CHUNK,
        lambda_function=functions[Fn.BATCH_SCORE],
        payload=sfn.TaskInput.from_object(
            {"state": {"item": sfn.JsonPath.object_at("$.item")}, "execution_id": sfn.JsonPath.string_at("$.execution")}
        ),
        payload_response_only=True,
        retry_on_service_exceptions=True,
    )
    retry_throttled(score)  # a Map of 100 chunks at once can meet the account's concurrency limit
    chunks = sfn.DistributedMap(
        scope,
        BatchState.SCORE,
        item_reader=sfn.S3JsonItemReader(bucket=artifact_bucket, key=sfn.JsonPath.string_at(path(PLAN, "items_key"))),
        item_selector={"item": sfn.JsonPath.string_at("$$.Map.Item.Value"), "execution": sfn.JsonPath.execution_id},
        result_writer=sfn.ResultWriter(bucket=artifact_bucket, prefix=c.BATCH_RESULTS_PREFIX),
        max_concurrency=c.BATCH_MAX_CONCURRENCY,
        tolerated_failure_percentage=0,  # a bad row is an error column, never a failed chunk
        result_path=path(SCORED),
    )
    chunks.item_processor(score)
    return plan.next(chunks).next(sfn.Succeed(scope, BatchState.DONE))
