"""Serving: the predict function behind an IAM-authorized REST API, capturing requests to S3."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra import constants as c
from infra import nag
from infra.constructs.buckets import secure_bucket
from infra.functions import FunctionFactory


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
        self.function = factory.zip_function(
            self,
            c.Fn.PREDICT,
            extra_environment={
                "ROUTING_CACHE_SECONDS": c.ROUTING_CACHE_SECONDS,
                "MAX_BATCH_ROWS": c.MAX_BATCH_ROWS,
            },
        )
        artifact_bucket.grant_read(self.function)
        table.grant_read_data(self.function)
        capture_bucket.grant_put(self.function)
        nag.bucket_grants(
            self.function,
            [(artifact_bucket, "*"), (capture_bucket, "*")],
            "predict reads model artifacts and writes request captures.",
        )

        access_logs = logs.LogGroup(
            self, "ApiAccessLogs", retention=c.LOG_RETENTION, removal_policy=cdk.RemovalPolicy.DESTROY
        )
        self.api = apigw.RestApi(
            self,
            "Api",
            description="Conveyor prediction API (SigV4-signed callers)",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            cloud_watch_role=True,
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
        validator = self.api.add_request_validator(
            "RequestValidator", validate_request_body=True, validate_request_parameters=True
        )
        # The handler validates bodies field by field (400 with details); API Gateway checks
        # that the path parameters are there.
        integration = apigw.LambdaIntegration(self.function, proxy=True, allow_test_invoke=False)
        model_params = {"method.request.path.model": True}

        models = self.api.root.add_resource("models").add_resource("{model}")
        models.add_method("GET", integration, request_validator=validator, request_parameters=model_params)
        models.add_resource("predict").add_method(
            "POST", integration, request_validator=validator, request_parameters=model_params
        )
        self.api.root.add_resource("openapi.json").add_method("GET", integration, request_validator=validator)
        nag.rest_api(self.api, self.api.node.try_find_child("CloudWatchRole"))
