"""Serving: the predict function (through its ``live`` alias) behind an IAM-authorized REST API;
capture records leave as lines of its log, which a subscription filter sends to Kinesis Data
Firehose, which unpacks them and writes them to the capture bucket by model and hour."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_logs_destinations as log_destinations
from aws_cdk import aws_s3 as s3
from constructs import Construct

from conveyor import layout
from conveyor.capture import CAPTURE_LINE_FIELDS
from conveyor.openapi import predict_request_schema
from infra import constants as c
from infra import nag
from infra.constructs.buckets import secure_bucket
from infra.functions import FunctionFactory

# The artifact keys predict may read (conveyor.layout: artifact_key, contract_key).
PREDICT_READS = (f"*/{layout.MODELS}/sha256-*", f"*/{layout.CONTRACTS}/sha256-*")

_SCHEMA_TYPES = {
    "object": apigw.JsonSchemaType.OBJECT,
    "array": apigw.JsonSchemaType.ARRAY,
    "string": apigw.JsonSchemaType.STRING,
    "number": apigw.JsonSchemaType.NUMBER,
    "integer": apigw.JsonSchemaType.INTEGER,
    "boolean": apigw.JsonSchemaType.BOOLEAN,
    "null": apigw.JsonSchemaType.NULL,
}
_SCHEMA_KEYS = {
    "required": "required",
    "minItems": "min_items",
    "maxItems": "max_items",
    "description": "description",
    "enum": "enum",
    "pattern": "pattern",
    "maxLength": "max_length",
}


def _gateway_error(field: str) -> str:
    """API Gateway's own refusals (request validation) in the API's error format."""
    return (
        '{"error": {"code": "invalid_request", "message": $context.error.messageString, "details": '
        f'[{{"field": "{field}", "message": "$util.escapeJavaScript($context.error.validationErrorString)"}}]}}}}'
    )


def json_schema(schema: dict[str, Any], *, root: bool = True) -> apigw.JsonSchema:
    """A JSON Schema document (the subset ``conveyor.openapi`` uses) as API Gateway's JsonSchema."""
    unknown = set(schema) - {"type", "properties", "items", "additionalProperties", *_SCHEMA_KEYS}
    if unknown:
        raise ValueError(f"JSON Schema keywords not translated for API Gateway: {sorted(unknown)}")
    props: dict[str, Any] = {new: schema[old] for old, new in _SCHEMA_KEYS.items() if old in schema}
    if root:
        props["schema"] = apigw.JsonSchemaVersion.DRAFT4
    if "type" in schema:
        props["type"] = _SCHEMA_TYPES[schema["type"]]
    if "properties" in schema:
        props["properties"] = {k: json_schema(v, root=False) for k, v in schema["properties"].items()}
    if "items" in schema:
        props["items"] = json_schema(schema["items"], root=False)
    if "additionalProperties" in schema:
        extra = schema["additionalProperties"]
        props["additional_properties"] = extra if isinstance(extra, bool) else json_schema(extra, root=False)
    return apigw.JsonSchema(**props)


class CaptureStore(Construct):
    """The capture bucket; created before the functions, whose common environment names it."""

    def __init__(self, scope: Construct, construct_id: str, *, access_logs: s3.IBucket) -> None:
        super().__init__(scope, construct_id)
        self.bucket = secure_bucket(self, "CaptureBucket", access_logs=access_logs)


class Serving(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        factory: FunctionFactory,
        artifact_bucket: s3.IBucket,
        capture_bucket: s3.IBucket,
        table: dynamodb.ITable,
    ) -> None:
        super().__init__(scope, construct_id)
        self.capture_stream = self._capture_stream(capture_bucket)
        self.function = factory.zip_function(
            self,
            c.Fn.PREDICT,
            extra_environment={
                "ROUTING_CACHE_SECONDS": c.ROUTING_CACHE_SECONDS,
                "MAX_BATCH_ROWS": c.MAX_BATCH_ROWS,
                # The cloud only: capture records as log lines, for the subscription filter below (the
                # local cloud has no Firehose and writes capture batches itself).
                "CAPTURE_DELIVERY": "log",
                # S3 and DynamoDB reads signed in the standard library: no boto3 at a cold start.
                "CONVEYOR_LEAN_AWS": "1",
            },
        )
        # Model artifacts and serving contracts only: never staged candidates' holdouts or data.
        for pattern in PREDICT_READS:
            artifact_bucket.grant_read(self.function, pattern)
        table.grant_read_data(self.function)
        self.capture_subscription = logs.SubscriptionFilter(
            self,
            "CaptureSubscription",
            log_group=self.function.log_group,
            destination=log_destinations.FirehoseDestination(self.capture_stream),
            filter_pattern=logs.FilterPattern.all(*(logs.FilterPattern.exists(f"$.{f}") for f in CAPTURE_LINE_FIELDS)),
        )
        # The API calls the alias: SnapStart and provisioned concurrency (infra/stages.py) apply to versions.
        self.alias = self.function.add_alias(c.PREDICT_ALIAS)
        nag.bucket_grants(
            self.function,
            [(artifact_bucket, pattern) for pattern in PREDICT_READS],
            "predict reads model artifacts and their serving contracts (content-addressed keys) only.",
        )
        self.api = self._rest_api()
        self._routes()
        nag.rest_api(self.api, self.api.node.try_find_child("CloudWatchRole"))

    def _rest_api(self) -> apigw.RestApi:
        """The REST API: IAM-authorized, throttled, access-logged (never request bodies)."""
        access_logs = logs.LogGroup(
            self, "ApiAccessLogs", retention=c.LOG_RETENTION, removal_policy=cdk.RemovalPolicy.DESTROY
        )
        return apigw.RestApi(
            self,
            "Api",
            description="Conveyor prediction API (SigV4-signed callers)",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            cloud_watch_role=False,  # the account-wide logging role is ConveyorCiAccess's (infra/ci_access.py)
            deploy_options=apigw.StageOptions(
                stage_name=c.API_STAGE,
                throttling_rate_limit=c.API_THROTTLE_RATE,
                throttling_burst_limit=c.API_THROTTLE_BURST,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,  # request bodies carry features: never log them
                tracing_enabled=True,
            ),
            default_method_options=apigw.MethodOptions(authorization_type=apigw.AuthorizationType.IAM),
        )

    def _routes(self) -> None:
        """POST /models/{model}/predict, GET /models/{model}, GET /openapi.json, all to the predict function."""
        validator = self.api.add_request_validator(
            "RequestValidator", validate_request_body=True, validate_request_parameters=True
        )
        # API Gateway checks the body's shape against the OpenAPI document's PredictRequest (the same
        # schema the function serves at /openapi.json) and that the path parameters are there; the
        # handler then validates every field against the version's serving contract (400 with details).
        self.predict_model = self.api.add_model(
            "PredictRequestModel",
            content_type="application/json",
            model_name="PredictRequest",
            description="POST /models/{model}/predict body (conveyor.openapi.predict_request_schema)",
            schema=json_schema(predict_request_schema()),
        )
        for response_type, field in (
            (apigw.ResponseType.BAD_REQUEST_BODY, "body"),
            (apigw.ResponseType.BAD_REQUEST_PARAMETERS, "parameters"),
        ):
            self.api.add_gateway_response(
                f"Gateway{response_type.response_type}",
                type=response_type,
                status_code="400",
                templates={"application/json": _gateway_error(field)},
            )
        integration = apigw.LambdaIntegration(self.alias, proxy=True, allow_test_invoke=False)
        model_params = {"method.request.path.model": True}

        models = self.api.root.add_resource("models").add_resource("{model}")
        models.add_method("GET", integration, request_validator=validator, request_parameters=model_params)
        models.add_resource("predict").add_method(
            "POST",
            integration,
            request_validator=validator,
            request_parameters=model_params,
            request_models={"application/json": self.predict_model},
        )
        self.api.root.add_resource("openapi.json").add_method(
            "GET",
            integration,
            request_validator=validator,
            request_parameters={"method.request.querystring.model": False},
        )

    def configure_start(self, start: str, provisioned: int) -> None:
        """``snapstart``: a snapshot of the initialized function restores new containers (Python 3.12);
        ``provisioned``: ``provisioned`` containers of the alias kept initialized; ``on_demand``: neither."""
        function = self.function.node.default_child
        alias = self.alias.node.default_child
        assert isinstance(function, lambda_.CfnFunction) and isinstance(alias, lambda_.CfnAlias)
        if start == "snapstart":
            function.snap_start = lambda_.CfnFunction.SnapStartProperty(apply_on="PublishedVersions")
        elif start == "provisioned":
            alias.provisioned_concurrency_config = lambda_.CfnAlias.ProvisionedConcurrencyConfigurationProperty(
                provisioned_concurrent_executions=provisioned
            )

    def _capture_stream(self, capture_bucket: s3.IBucket) -> firehose.DeliveryStream:
        """Firehose to the capture bucket, partitioned by each record's ``model``: the layout of
        docs/capture.md, the same the local batch writer produces. The records come from the predict
        function's log (a subscription filter): Firehose decompresses CloudWatch Logs' gzip batches,
        extracts each log event's message (the record's JSON line), adds the newline, then reads
        ``.model`` for the prefix."""
        log_group = logs.LogGroup(
            self, "CaptureDeliveryLogs", retention=c.LOG_RETENTION, removal_policy=cdk.RemovalPolicy.DESTROY
        )
        destination = firehose.S3Bucket(
            capture_bucket,
            data_output_prefix=c.CAPTURE_PREFIX,
            error_output_prefix=c.CAPTURE_ERROR_PREFIX,
            dynamic_partitioning=firehose.DynamicPartitioningProps(enabled=True),
            processors=[
                firehose.DecompressionProcessor(),
                firehose.CloudWatchLogProcessor(data_message_extraction=True),
                firehose.AppendDelimiterToRecordProcessor(),
                firehose.MetadataExtractionProcessor.jq16({"model": c.CAPTURE_PARTITION_QUERY}),
            ],
            buffering_interval=c.CAPTURE_BUFFER_INTERVAL,
            buffering_size=cdk.Size.mebibytes(c.CAPTURE_BUFFER_MIB),
            compression=firehose.Compression.UNCOMPRESSED,  # JSON lines, as written locally
            file_extension=c.CAPTURE_FILE_EXTENSION,
            logging_config=firehose.EnableLogging(log_group),
        )
        stream = firehose.DeliveryStream(
            self,
            "CaptureStream",
            destination=destination,
            encryption=firehose.StreamEncryption.aws_owned_key(),
        )
        nag.capture_delivery(stream, capture_bucket)
        return stream
