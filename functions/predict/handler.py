"""Lambda entry point of the prediction API (API Gateway REST proxy).

Imports numpy and onnxruntime through the domain package, never pandas or scikit-learn.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from conveyor.errors import ArtifactError
from conveyor.openapi import openapi_document
from conveyor.serving import RequestError, entity_key_from, request_id_from

logger = Logger(service="conveyor")
# Dimensions are exactly model and version (service="" keeps Powertools from adding "service");
# the configured namespace replaces this one at cold start.
metrics = Metrics(namespace="Conveyor", service="")
app = APIGatewayRestResolver()
_service: Any = None
# GET routes score nothing, so they publish no metrics: expected, not worth a warning per request.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)


def _prediction_service() -> Any:
    global _service  # noqa: PLW0603 - built once per container, on first use, not at import
    if _service is None:
        from conveyor.adapters.aws import DynamoTable, FirehoseCapture, S3ObjectStore
        from conveyor.adapters.powertools import PowertoolsMetrics
        from conveyor.capture import BatchingS3Capture, NullCapture
        from conveyor.config import Settings
        from conveyor.ports import CaptureSink
        from conveyor.registry import Registry
        from conveyor.serving import ModelCache, PredictionService

        settings = Settings.from_env()
        metrics.namespace = settings.metrics_namespace
        store = S3ObjectStore()
        capture: CaptureSink
        if settings.capture_stream:
            capture = FirehoseCapture(settings.capture_stream)
        elif settings.capture_bucket:  # the local cloud: no Firehose there (see the README)
            capture = BatchingS3Capture(
                store,
                settings.capture_bucket,
                max_records=settings.capture_flush_records,
                max_seconds=settings.capture_flush_seconds,
            )
        else:
            capture = NullCapture()
        _service = PredictionService(
            Registry(DynamoTable(settings.registry_table)),
            ModelCache(store, settings.artifact_bucket),
            routing_cache_seconds=settings.routing_cache_seconds,
            max_rows=settings.max_batch_rows,
            capture=capture,
            metrics=PowertoolsMetrics(metrics),
            metrics_namespace=settings.metrics_namespace,
        )
    return _service


def _request_id() -> str:
    request_id = request_id_from(dict(app.current_event.headers or {}))
    logger.set_correlation_id(request_id)
    return request_id


def _json(status: int, body: dict[str, Any], request_id: str, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body),
        headers={"X-Request-Id": request_id, **(headers or {})},
    )


@app.post("/models/<model>/predict")
def predict(model: str) -> Response:
    request_id = _request_id()
    entity_key = entity_key_from(dict(app.current_event.headers or {}))
    # Captures leave through the service's sink: Firehose per request, or the local batch writer's own timer.
    response = _prediction_service().predict_json(model, app.current_event.body, request_id, entity_key)
    logger.info(
        "scored",
        extra={
            "model": model,
            "version": response["model_version"],
            "rows": len(response["predictions"]),
            "warnings": len(response["warnings"]),
            "fallback_from": response.get("fallback_from"),
        },
    )
    # The champion answered for a version that could not: the header names the version that failed.
    failed = response.get("fallback_from")
    return _json(200, response, request_id, {"X-Conveyor-Fallback": str(failed)} if failed is not None else None)


@app.get("/models/<model>")
def describe(model: str) -> Response:
    return _json(200, _prediction_service().describe(model), _request_id())


@app.get("/openapi.json")
def openapi() -> Response:
    request_id = _request_id()
    model = app.current_event.get_query_string_value("model")
    contract = _prediction_service().contract(model) if model else None
    return _json(200, openapi_document(contract), request_id)


@app.exception_handler(RequestError)
def request_error(error: RequestError) -> Response:
    logger.info("request refused", extra={"code": error.code, "status": error.status})
    body = {"error": {"code": error.code, "message": error.message, "details": error.details}}
    return _json(error.status, body, _request_id())


@app.exception_handler(ArtifactError)
def artifact_error(error: ArtifactError) -> Response:
    logger.error("artifact refused", extra={"reason": str(error)})
    body = {"error": {"code": "model_unavailable", "message": "the model artifact failed verification", "details": []}}
    return _json(503, body, _request_id())


@app.not_found
def not_found(_: NotFoundError) -> Response:
    body = {
        "error": {
            "code": "not_found",
            "message": "no such route",
            "details": [{"field": "path", "message": app.current_event.path}],
        }
    }
    return _json(404, body, _request_id())


@app.exception_handler(Exception)
def unexpected(error: Exception) -> Response:
    logger.exception("unexpected error")
    body = {
        "error": {
            "code": "internal",
            "message": "internal error; the request id identifies it in the logs",
            "details": [],
        }
    }
    return _json(500, body, _request_id())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, log_event=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
