"""The serving benchmark's baseline: functions/predict/handler.py rewritten to serve the same
model as a scikit-learn pipeline loaded with joblib. Never deployed.

Kept equal to the real handler wherever the comparison is not about, by importing its code:
request ids, body parsing, instance validation (the serving contract built from the model's
inputs) and the error classes come from ``conveyor.serving``. The same Powertools resolver,
routes, logger and log line, the same embedded-format metrics per request (latency,
errors, rows, mean score; flushed by ``@metrics.log_metrics``), the same routing record read
from the registry table and cached ``ROUTING_CACHE_SECONDS``, the same ``X-Request-Id``
handling, field-level 400s and response fields. It does less than the real handler in three
places, each in scikit-learn's favour: no spec's serving contract (no range warnings, no
``warnings`` field), no capture record, no traffic split or shadow. What differs is what is
being compared: the model is a joblib pickle of
the trained Pipeline (stored beside the ONNX artifact, ``.joblib``), the JSON body becomes a
pandas DataFrame, and ``predict_proba`` scores it (labels are its argmax, so the pipeline runs
once, as the ONNX graph does).

Both score on one thread (the ONNX session is built with one intra-op thread; here
threadpoolctl limits OpenMP and BLAS to one thread once the pickle is loaded).

The pickle is ``{"pipeline", "features": {name: "number" | "category"}, "classes"}``.
Unpickling runs code: a real deployment would verify the bytes first (the ONNX path checks
the registered sha256); here the benchmark wrote them.
"""

from __future__ import annotations

import io
import json
import os
import threading
import time
from typing import Any

import joblib
import numpy as np
import pandas as pd
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from threadpoolctl import threadpool_limits

from conveyor.serving import (
    InvalidInput,
    ModelNotFound,
    RequestError,
    columns_from_instances,
    parse_body,
    request_id_from,
)

logger = Logger(service="conveyor")
metrics = Metrics(namespace="Conveyor")
app = APIGatewayRestResolver()
_service: SklearnService | None = None


def frame_from_instances(instances: Any, features: dict[str, str], max_rows: int) -> pd.DataFrame:
    """``instances`` validated by the real handler's code (``conveyor.serving``: the same field-level
    400s and 413), as the typed frame the pipeline was fit on."""
    columns = columns_from_instances(instances, features, max_rows)
    frame = {}
    for name, kind in features.items():
        column = pd.Series(columns[name].reshape(-1))
        frame[name] = column.fillna("").astype(str) if kind == "category" else column.astype(np.float32)
    return pd.DataFrame(frame)


class SklearnService:
    def __init__(self) -> None:
        import boto3

        from conveyor.adapters.aws import DynamoTable
        from conveyor.registry import Registry

        self._registry = Registry(DynamoTable(os.environ["REGISTRY_TABLE"]))
        self._s3 = boto3.client("s3")
        self._bucket = os.environ["ARTIFACT_BUCKET"]
        self._ttl = float(os.environ.get("ROUTING_CACHE_SECONDS", "5"))
        self._max_rows = int(os.environ.get("MAX_BATCH_ROWS", "1000"))
        self._routing: dict[str, tuple[float, Any]] = {}
        self._models: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def routing(self, model: str) -> Any:
        cached = self._routing.get(model)
        now = time.monotonic()
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        routing = self._registry.routing(model)
        self._routing[model] = (now, routing)
        return routing

    def model(self, onnx_key: str) -> dict[str, Any]:
        key = onnx_key.removesuffix(".onnx") + ".joblib"
        bundle = self._models.get(key)
        if bundle is None:
            with self._lock:
                data = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()
                bundle = joblib.load(io.BytesIO(data))
                # One thread, as the ONNX session has (intra_op_num_threads=1) and as a 1,024 MB
                # Lambda has about 0.6 vCPU. With its default OpenMP pool, HistGradientBoosting's
                # per-tree parallel regions stall on a busy 2-core machine (seconds per request).
                threadpool_limits(limits=1)
                self._models[key] = bundle
        return bundle

    def predict(self, model: str, body: Any, request_id: str) -> dict[str, Any]:
        started = time.perf_counter()
        routing = self.routing(model)
        if routing is None or routing.champion is None:
            raise ModelNotFound(
                f"no model named {model!r} is deployed", [{"field": "model", "message": "unknown model"}]
            )
        bundle = self.model(routing.champion["artifact_key"])
        if not isinstance(body, dict):
            raise InvalidInput(
                "the body must be a JSON object with 'instances'", [{"field": "body", "message": "not an object"}]
            )
        frame = frame_from_instances(body.get("instances"), bundle["features"], self._max_rows)
        probabilities = bundle["pipeline"].predict_proba(frame)
        classes = bundle["pipeline"].classes_
        labels = [str(c) for c in classes]
        metrics.add_dimension("model", model)
        metrics.add_dimension("version", str(routing.champion["version"]))
        metrics.add_metric(name="Latency", unit=MetricUnit.Milliseconds, value=(time.perf_counter() - started) * 1000)
        metrics.add_metric(name="Errors", unit=MetricUnit.Count, value=0.0)
        metrics.add_metric(name="Rows", unit=MetricUnit.Count, value=float(len(frame)))
        metrics.add_metric(name="MeanScore", unit=MetricUnit.NoUnit, value=float(np.mean(probabilities[:, -1])))
        return {
            "model": model,
            "model_version": int(routing.champion["version"]),
            "request_id": request_id,
            "predictions": classes[np.argmax(probabilities, axis=1)].tolist(),
            "probabilities": [
                {label: float(p) for label, p in zip(labels, row, strict=True)} for row in probabilities.tolist()
            ],
        }


def _prediction_service() -> SklearnService:
    global _service  # noqa: PLW0603 - built once per container, on first use, as the real handler does
    if _service is None:
        _service = SklearnService()
    return _service


def _request_id() -> str:
    request_id = request_id_from(dict(app.current_event.headers or {}))
    logger.set_correlation_id(request_id)
    return request_id


def _json(status: int, body: dict[str, Any], request_id: str) -> Response:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body),
        headers={"X-Request-Id": request_id},
    )


@app.post("/models/<model>/predict")
def predict(model: str) -> Response:
    request_id = _request_id()
    body = parse_body(app.current_event.body)
    response = _prediction_service().predict(model, body, request_id)
    logger.info(
        "scored", extra={"model": model, "version": response["model_version"], "rows": len(response["predictions"])}
    )
    return _json(200, response, request_id)


@app.exception_handler(RequestError)
def request_error(error: RequestError) -> Response:
    logger.info("request refused", extra={"code": error.code, "status": error.status})
    body = {"error": {"code": error.code, "message": error.message, "details": error.details}}
    return _json(error.status, body, _request_id())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, log_event=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
