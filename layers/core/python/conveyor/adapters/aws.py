"""boto3 adapters: the only place in the domain package that talks to AWS.

The same code runs on AWS and on the local cloud: there, ``AWS_ENDPOINT_URL`` points every
client at the moto server on 127.0.0.1.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from conveyor.ports import (
    AlarmDefinition,
    AlarmStatus,
    CallbackExpired,
    ConditionFailed,
    ObjectMissing,
    ObjectRef,
)


def _to_dynamo(value: Any) -> Any:
    return json.loads(json.dumps(value), parse_float=Decimal)


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dynamo(v) for v in value]
    return value


# What S3 answers for a key that has no (current) version, or a version that does not exist.
_MISSING = {"404", "NoSuchKey", "NoSuchVersion", "NotFound"}


def _is_missing(error: ClientError) -> bool:
    return str(error.response.get("Error", {}).get("Code")) in _MISSING


class S3ObjectStore:
    def __init__(self, client: Any | None = None) -> None:
        self._s3 = client or boto3.client("s3")

    def get(self, bucket: str, key: str, version_id: str | None = None) -> bytes:
        return self._read(bucket, key, version_id)

    def _read(self, bucket: str, key: str, version_id: str | None, **extra: str) -> bytes:
        """The object's bytes (``extra``: e.g. a ``Range``); ObjectMissing when it is not there."""
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key, **extra}
        if version_id:
            kwargs["VersionId"] = version_id
        try:
            body: bytes = self._s3.get_object(**kwargs)["Body"].read()
        except ClientError as error:
            if _is_missing(error):
                raise ObjectMissing(bucket, key, version_id) from error
            raise
        return body

    def put(self, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream") -> ObjectRef:
        response = self._s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)
        return ObjectRef(bucket, key, response.get("VersionId"), response.get("ETag", "").strip('"'), len(data))

    def head(self, bucket: str, key: str, version_id: str | None = None) -> ObjectRef | None:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if version_id:
            kwargs["VersionId"] = version_id
        try:
            response = self._s3.head_object(**kwargs)
        except ClientError as error:
            if _is_missing(error):
                return None
            raise
        return ObjectRef(
            bucket, key, response.get("VersionId"), response.get("ETag", "").strip('"'), response.get("ContentLength")
        )

    def copy(self, source: ObjectRef, bucket: str, key: str) -> ObjectRef:
        copy_source: dict[str, str] = {"Bucket": source.bucket, "Key": source.key}
        if source.version_id:
            copy_source["VersionId"] = source.version_id
        try:
            response = self._s3.copy_object(Bucket=bucket, Key=key, CopySource=copy_source)
        except ClientError as error:
            if _is_missing(error):
                raise ObjectMissing(source.bucket, source.key, source.version_id) from error
            raise
        etag = response.get("CopyObjectResult", {}).get("ETag", "").strip('"')
        return ObjectRef(bucket, key, response.get("VersionId"), etag, source.size)

    def delete(self, bucket: str, key: str) -> None:
        # On the versioned data bucket this only adds a delete marker: the bytes are kept.
        self._s3.delete_object(Bucket=bucket, Key=key)

    def download(self, bucket: str, key: str, path: Path, version_id: str | None = None) -> None:
        extra = {"VersionId": version_id} if version_id else None
        try:  # a managed transfer: ranged GETs straight to the file
            self._s3.download_file(bucket, key, str(path), ExtraArgs=extra)
        except ClientError as error:
            if _is_missing(error):
                raise ObjectMissing(bucket, key, version_id) from error
            raise

    def get_range(self, bucket: str, key: str, start: int, end: int, version_id: str | None = None) -> bytes:
        try:
            return self._read(bucket, key, version_id, Range=f"bytes={start}-{end - 1}")
        except ClientError as error:
            if error.response["Error"]["Code"] == "InvalidRange":  # past the end
                return b""
            raise

    def tags(self, bucket: str, key: str, version_id: str | None = None) -> dict[str, str]:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if version_id:
            kwargs["VersionId"] = version_id
        try:
            found = self._s3.get_object_tagging(**kwargs).get("TagSet", [])
        except ClientError as error:
            if _is_missing(error):
                raise ObjectMissing(bucket, key, version_id) from error
            raise
        return {str(t["Key"]): str(t["Value"]) for t in found}

    def upload(self, bucket: str, key: str, path: Path) -> ObjectRef:
        with path.open("rb") as body:  # streamed from the file (single PUT: parts up to 5 GB)
            response = self._s3.put_object(Bucket=bucket, Key=key, Body=body)
        return ObjectRef(
            bucket, key, response.get("VersionId"), response.get("ETag", "").strip('"'), path.stat().st_size
        )

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        found: list[str] = []
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            found.extend(obj["Key"] for obj in page.get("Contents", []))
        return found


class DynamoTable:
    def __init__(self, table_name: str, resource: Any | None = None) -> None:
        self._table = (resource or boto3.resource("dynamodb")).Table(table_name)

    def get(self, pk: str, sk: str) -> dict[str, Any] | None:
        item = self._table.get_item(Key={"pk": pk, "sk": sk}, ConsistentRead=True).get("Item")
        return _from_dynamo(item) if item else None

    def put(self, item: dict[str, Any], *, if_absent: bool = False, if_equals: tuple[str, Any] | None = None) -> None:
        kwargs: dict[str, Any] = {"Item": _to_dynamo(item)}
        if if_absent:
            kwargs["ConditionExpression"] = "attribute_not_exists(pk)"
        elif if_equals is not None:
            kwargs["ConditionExpression"] = "#a = :v"
            kwargs["ExpressionAttributeNames"] = {"#a": if_equals[0]}
            kwargs["ExpressionAttributeValues"] = {":v": _to_dynamo(if_equals[1])}
        try:
            self._table.put_item(**kwargs)
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise ConditionFailed(item["pk"] + "/" + item["sk"]) from error
            raise

    def query(
        self, pk: str, sk_prefix: str, *, newest_first: bool = False, limit: int | None = None
    ) -> list[dict[str, Any]]:
        from boto3.dynamodb.conditions import Key

        condition = Key("pk").eq(pk)
        if sk_prefix:  # DynamoDB refuses begins_with on an empty string: "" means every item of pk
            condition = condition & Key("sk").begins_with(sk_prefix)
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": condition,
            "ScanIndexForward": not newest_first,
            "ConsistentRead": True,
        }
        items: list[dict[str, Any]] = []
        while True:
            if limit is not None:
                kwargs["Limit"] = limit - len(items)
            response = self._table.query(**kwargs)
            items.extend(_from_dynamo(i) for i in response.get("Items", []))
            if "LastEvaluatedKey" not in response or (limit is not None and len(items) >= limit):
                return items
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


class SnsNotifier:
    def __init__(self, topic_arn: str, client: Any | None = None) -> None:
        self._topic_arn = topic_arn
        self._sns = client or boto3.client("sns")

    def publish(self, subject: str, message: str) -> None:
        if self._topic_arn:
            self._sns.publish(TopicArn=self._topic_arn, Subject=subject[:100], Message=message)


class CloudWatchMetrics:
    """PutMetricData, in the batches CloudWatch accepts. On AWS and on the local cloud alike."""

    _BATCH = 500

    def __init__(self, client: Any | None = None) -> None:
        self._cloudwatch = client or boto3.client("cloudwatch")

    def publish(self, namespace: str, datapoints: list[tuple[str, dict[str, str], float]]) -> None:
        data = [
            {
                "MetricName": name,
                "Dimensions": [{"Name": k, "Value": v} for k, v in sorted(dimensions.items())],
                "Value": float(value),
            }
            for name, dimensions, value in datapoints
        ]
        for start in range(0, len(data), self._BATCH):
            self._cloudwatch.put_metric_data(Namespace=namespace, MetricData=data[start : start + self._BATCH])


class EventBridgePublisher:
    def __init__(self, bus_name: str = "default", client: Any | None = None) -> None:
        self._bus = bus_name
        self._events = client or boto3.client("events")

    def publish(self, source: str, detail_type: str, detail: dict[str, Any]) -> None:
        entry = {"Source": source, "DetailType": detail_type, "Detail": json.dumps(detail), "EventBusName": self._bus}
        response = self._events.put_events(Entries=[entry])
        if response.get("FailedEntryCount"):
            raise RuntimeError(f"EventBridge refused {detail_type}: {response['Entries']}")


class StepFunctionsStarter:
    def __init__(self, state_machine_arn: str, client: Any | None = None) -> None:
        self._arn = state_machine_arn
        self._sfn = client or boto3.client("stepfunctions")

    def start(self, name: str, payload: dict[str, Any]) -> bool:
        try:
            self._sfn.start_execution(stateMachineArn=self._arn, name=name, input=json.dumps(payload))
        except ClientError as error:
            if error.response["Error"]["Code"] == "ExecutionAlreadyExists":
                return False
            raise
        return True


class FirehoseCapture:
    """Capture records to a Kinesis Data Firehose delivery stream (PutRecordBatch: at most 500
    records and 4 MiB per call). Records Firehose reports as failed are retried once; the rest
    raise, and the prediction service counts them without failing the request."""

    _MAX_RECORDS = 500
    _MAX_BYTES = 4 * 1024 * 1024
    # The put is on the request path: a slow or unreachable Firehose may cost a request a few
    # seconds at worst (not boto3's default minute of timeouts and retries), never its answer.
    _CLIENT_CONFIG = Config(connect_timeout=1, read_timeout=2, retries={"max_attempts": 2, "mode": "standard"})

    def __init__(self, stream_name: str, client: Any | None = None) -> None:
        self._stream = stream_name
        self._firehose = client or boto3.client("firehose", config=self._CLIENT_CONFIG)

    def put(self, records: list[dict[str, Any]]) -> None:
        from conveyor.capture import record_line

        lines = [record_line(r) for r in records]
        batch: list[bytes] = []
        size = 0
        for line in lines:
            if batch and (len(batch) == self._MAX_RECORDS or size + len(line) > self._MAX_BYTES):
                self._send(batch)
                batch, size = [], 0
            batch.append(line)
            size += len(line)
        if batch:
            self._send(batch)

    def flush(self) -> None:
        return  # every put is delivered synchronously: a Lambda container may be frozen right after

    def _send(self, lines: list[bytes]) -> None:
        pending = lines
        for _attempt in range(2):
            response = self._firehose.put_record_batch(
                DeliveryStreamName=self._stream, Records=[{"Data": line} for line in pending]
            )
            if not response.get("FailedPutCount"):
                return
            pending = [
                line
                for line, result in zip(pending, response["RequestResponses"], strict=True)
                if result.get("ErrorCode")
            ]
        raise RuntimeError(f"Firehose refused {len(pending)} capture record(s) twice")


class StepFunctionsCallbacks:
    """Answers ``.waitForTaskToken`` tasks (manual approval) with SendTaskSuccess / SendTaskFailure."""

    # What Step Functions says when the token's task no longer waits.
    _EXPIRED = {"InvalidToken", "TaskTimedOut", "TaskDoesNotExist"}

    def __init__(self, client: Any | None = None) -> None:
        self._sfn = client or boto3.client("stepfunctions")

    def succeed(self, token: str, output: dict[str, Any]) -> None:
        try:
            self._sfn.send_task_success(taskToken=token, output=json.dumps(output))
        except ClientError as error:
            if error.response["Error"]["Code"] in self._EXPIRED:
                raise CallbackExpired(error.response["Error"]["Code"]) from error
            raise

    def fail(self, token: str, error: str, cause: str) -> None:
        try:
            self._sfn.send_task_failure(taskToken=token, error=error, cause=cause[:32768])
        except ClientError as failure:
            if failure.response["Error"]["Code"] in self._EXPIRED:
                raise CallbackExpired(failure.response["Error"]["Code"]) from failure
            raise


class CloudWatchAlarms:
    """The ``Alarms`` port over CloudWatch metric alarms (PutMetricAlarm replaces an alarm's whole
    configuration and keeps its state)."""

    _DELETE_BATCH = 100

    def __init__(self, client: Any | None = None) -> None:
        self._cloudwatch = client or boto3.client("cloudwatch")

    def put(self, definition: AlarmDefinition) -> None:
        kwargs: dict[str, Any] = {
            "AlarmName": definition.name,
            "AlarmDescription": definition.description,
            "Namespace": definition.namespace,
            "MetricName": definition.metric,
            "Dimensions": [{"Name": k, "Value": v} for k, v in sorted(definition.dimensions.items())],
            "Period": definition.period,
            "EvaluationPeriods": definition.evaluation_periods,
            "DatapointsToAlarm": definition.datapoints_to_alarm,
            "Threshold": definition.threshold,
            "ComparisonOperator": definition.comparison,
            "TreatMissingData": definition.treat_missing_data,
            "ActionsEnabled": True,
            "AlarmActions": list(definition.actions),
            "Tags": [{"Key": k, "Value": v} for k, v in sorted((definition.tags or {}).items())],
        }
        if definition.statistic.startswith("p"):
            kwargs["ExtendedStatistic"] = definition.statistic
        else:
            kwargs["Statistic"] = definition.statistic
        self._cloudwatch.put_metric_alarm(**kwargs)

    def delete(self, names: list[str]) -> None:
        for start in range(0, len(names), self._DELETE_BATCH):
            self._cloudwatch.delete_alarms(AlarmNames=names[start : start + self._DELETE_BATCH])

    def describe(self, prefix: str = "") -> list[AlarmStatus]:
        kwargs: dict[str, Any] = {"AlarmTypes": ["MetricAlarm"]}
        if prefix:
            kwargs["AlarmNamePrefix"] = prefix
        found: list[AlarmStatus] = []
        for page in self._cloudwatch.get_paginator("describe_alarms").paginate(**kwargs):
            for alarm in page.get("MetricAlarms", []):
                updated = alarm.get("StateUpdatedTimestamp")
                found.append(
                    AlarmStatus(
                        name=alarm["AlarmName"],
                        state=alarm.get("StateValue", ""),
                        reason=alarm.get("StateReason", ""),
                        updated=updated.timestamp() if updated is not None else 0.0,
                        metric=alarm.get("MetricName", ""),
                        threshold=alarm.get("Threshold"),
                    )
                )
        return found


class LambdaInvoker:
    """Lambda Invoke with ``InvocationType=Event`` (asynchronous: Lambda queues and retries it).
    On the local cloud moto runs the in-process handler before answering."""

    def __init__(self, function_name: str, client: Any | None = None) -> None:
        self._function = function_name
        self._lambda = client or boto3.client("lambda")

    def invoke_async(self, payload: dict[str, Any]) -> None:
        response = self._lambda.invoke(
            FunctionName=self._function, InvocationType="Event", Payload=json.dumps(payload).encode()
        )
        if int(response.get("StatusCode", 0)) != 202:
            raise RuntimeError(f"Lambda did not queue the invocation of {self._function}: {response.get('StatusCode')}")


class RegistryScan:
    """Every item of the registry table in one paginated scan (the board reads its snapshot once per view)."""

    def __init__(self, table_name: str, resource: Any | None = None) -> None:
        self._table = (resource or boto3.resource("dynamodb")).Table(table_name)

    def __call__(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        arguments: dict[str, Any] = {}
        while True:
            page = self._table.scan(**arguments)
            items.extend(_from_dynamo(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return items
            arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]


class CloudWatchAlarmStates:
    """The stack's alarms (names ``{stack}-...``) with state and reason, for the board."""

    def __init__(self, stack: str, signals: tuple[str, ...], client: Any | None = None) -> None:
        self._prefix = f"{stack}-"
        self._signals = signals
        self._cw = client or boto3.client("cloudwatch")

    def alarms(self) -> list[dict[str, Any]]:
        rows = []
        for page in self._cw.get_paginator("describe_alarms").paginate(AlarmNamePrefix=self._prefix):
            for alarm in page.get("MetricAlarms", []) + page.get("CompositeAlarms", []):
                name = alarm["AlarmName"]
                model, _, signal = name[len(self._prefix) :].rpartition("-")
                per_model = bool(model) and signal in self._signals
                updated = alarm.get("StateUpdatedTimestamp")
                rows.append(
                    {
                        "name": name,
                        "model": model if per_model else None,
                        "signal": signal if per_model else None,
                        "state": alarm.get("StateValue", "INSUFFICIENT_DATA"),
                        "reason": alarm.get("StateReason", ""),
                        "updated": updated.isoformat(timespec="seconds") if updated else None,
                        "arn": alarm.get("AlarmArn"),
                    }
                )
        return rows


class StepFunctionsHistory:
    """The pipeline's latest executions (ListExecutions), for the board."""

    def __init__(self, state_machine_arn: str, client: Any | None = None) -> None:
        self._arn = state_machine_arn
        self._sfn = client or boto3.client("stepfunctions")

    def recent(self, limit: int) -> list[dict[str, Any]]:
        executions = self._sfn.list_executions(stateMachineArn=self._arn, maxResults=limit)["executions"]
        return [
            {
                "name": e["name"],
                "status": e["status"],
                "started": e["startDate"].timestamp(),
                "stopped": e["stopDate"].timestamp() if e.get("stopDate") else None,
            }
            for e in executions
        ]
