"""The serving benchmark's baseline: functions/predict/handler.py rewritten to serve the same
model as a scikit-learn pipeline loaded with joblib. Never deployed.

Kept equal to the real handler wherever the comparison is not about, by importing its code:
request ids, body parsing, instance validation (the serving contract built from the model's
inputs) and the error classes come from ``conveyor.serving``. The same REST proxy routing, JSON
log line and embedded-format metrics per request (latency, errors, rows, mean score) through the
same standard-library code (``conveyor.adapters.apigw``, ``conveyor.adapters.emf``; the real
handler dropped Powertools in issue 15, and so does its twin), the same routing record read
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
import os
import threading
import time
from typing import Any

import joblib
import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from conveyor.adapters.apigw import JsonLog, ProxyRequest, Route, respond
from conveyor.adapters.emf import EmfMetrics
from conveyor.serving import (
    InvalidInput,
    ModelNotFound,
    RequestError,
    columns_from_instances,
    parse_body,
    request_id_from,
)

log = JsonLog(service="conveyor")
metrics = EmfMetrics()
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
        dimensions = {"model": model, "version": str(routing.champion["version"])}
        points = [
            ("Latency", dimensions, (time.perf_counter() - started) * 1000),
            ("Errors", dimensions, 0.0),
            ("Rows", dimensions, float(len(frame))),
            ("MeanScore", dimensions, float(np.mean(probabilities[:, -1]))),
        ]
        metrics.publish("Conveyor", points)  # in the request: the twin has no after-response work
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


def predict(request: ProxyRequest) -> dict[str, Any]:
    body = parse_body(request.body)
    response = _prediction_service().predict(request.params["model"], body, request.request_id)
    fields = {
        "model": request.params["model"],
        "version": response["model_version"],
        "rows": len(response["predictions"]),
    }
    log.write("INFO", "scored", fields)
    return respond(200, response, {"X-Request-Id": request.request_id})


ROUTE = Route("POST", "/models/<model>/predict", predict)


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = ProxyRequest.from_event(event)
    request.request_id = request_id_from(request.headers)
    log.invocation(context, request.request_id)
    params = ROUTE.match(request)
    try:
        if params is None:
            body = {"error": {"code": "not_found", "message": "no such route", "details": []}}
            return respond(404, body, {"X-Request-Id": request.request_id})
        request.params = params
        return ROUTE.handler(request)
    except RequestError as error:
        log.write("INFO", "request refused", {"code": error.code, "status": error.status})
        body = {"error": {"code": error.code, "message": error.message, "details": error.details}}
        return respond(error.status, body, {"X-Request-Id": request.request_id})
