"""Lambda entry point of the prediction API (API Gateway REST proxy).

Imports numpy and onnxruntime through the domain package and the standard library, nothing else:
no Powertools, no boto3 at import (the AWS clients are built at the first request). What the
client does not wait for (capture, metrics, the shadow, the routing refresh) runs after the
response, in Lambda's after-response extension (``conveyor.afterwork``).

numpy and onnxruntime (most of a cold start's CPU) are imported in a thread started at the end of
init: the first request reads its routing record, artifact and contract over the network meanwhile,
and waits for the import only where it opens the ONNX session. Under provisioned concurrency or
SnapStart, init waits for that thread (nothing is half-imported when the sandbox is frozen).
"""

from __future__ import annotations

import gc

_collecting = gc.isenabled()
gc.disable()  # no cyclic collection while the imports build their objects (see the end of the module)

import logging  # noqa: E402
import os  # noqa: E402
import threading  # noqa: E402
from typing import Any  # noqa: E402

from conveyor.adapters.apigw import JsonLog, ProxyRequest, Route, respond  # noqa: E402
from conveyor.afterwork import runner_from_env  # noqa: E402
from conveyor.errors import ArtifactError  # noqa: E402
from conveyor.request import RequestError, entity_key_from, request_id_from  # noqa: E402
from conveyor.serving import ModelCache, PredictionService  # noqa: E402  numpy and onnxruntime: below

log = JsonLog(service="conveyor")
logging.getLogger("conveyor").addHandler(log)
logging.getLogger("conveyor").setLevel(logging.INFO)
logging.getLogger("conveyor").propagate = False
after = runner_from_env()  # on Lambda: the internal extension registers during init, here
_service: Any = None


def _prediction_service() -> Any:
    global _service  # noqa: PLW0603 - built once per container, on first use, not at import
    if _service is None:
        from conveyor.adapters.emf import EmfMetrics
        from conveyor.config import Settings

        settings = Settings.from_env()
        store, routing = _aws(settings)
        _service = PredictionService(
            routing,
            ModelCache(store, settings.artifact_bucket),
            routing_cache_seconds=settings.routing_cache_seconds,
            max_rows=settings.max_batch_rows,
            capture=_capture_sink(settings),
            metrics=EmfMetrics(),
            metrics_namespace=settings.metrics_namespace,
            after=after,
        )
    return _service


def _aws(settings: Any) -> tuple[Any, Any]:
    """The artifact reader and the routing reader: signed in the standard library with
    ``CONVEYOR_LEAN_AWS=1`` (the stack sets it: no boto3 at a cold start), else boto3's."""
    import os

    from conveyor.routing import RoutingReader

    if os.environ.get("CONVEYOR_LEAN_AWS") == "1":
        from conveyor.adapters.lean_aws import LeanDynamoReader, LeanS3

        return LeanS3(), RoutingReader(LeanDynamoReader(settings.registry_table))
    from conveyor.adapters.aws import DynamoTable, S3ObjectStore

    return S3ObjectStore(), RoutingReader(DynamoTable(settings.registry_table))


def _capture_sink(settings: Any) -> Any:
    """Log lines for the subscription filter (the cloud); batches to the bucket (the local cloud)."""
    from conveyor.capture import BatchingS3Capture, LogLineCapture, NullCapture

    if settings.capture_delivery == "log":
        return LogLineCapture()
    if settings.capture_bucket:  # the local cloud: no subscription filter or Firehose there (see the README)
        from conveyor.adapters.aws import S3ObjectStore  # writes: boto3's (the lean reader only reads)

        return BatchingS3Capture(
            S3ObjectStore(),
            settings.capture_bucket,
            max_records=settings.capture_flush_records,
            max_seconds=settings.capture_flush_seconds,
        )
    return NullCapture()


def _json(status: int, body: dict[str, Any], request_id: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return respond(status, body, {"X-Request-Id": request_id, **(headers or {})})


def predict(request: ProxyRequest) -> dict[str, Any]:
    request_id = request.request_id
    model = request.params["model"]
    response = _prediction_service().predict_json(model, request.body, request_id, entity_key_from(request.headers))
    failed = response.get("fallback_from")
    fields = {"model": model, "version": response["model_version"], "rows": len(response["predictions"])}
    line = log.line("INFO", "scored", {**fields, "warnings": len(response["warnings"]), "fallback_from": failed})
    after.defer(lambda: log.put(line))  # written after the response: the client does not wait for it
    # The champion answered for a version that could not: the header names the version that failed.
    return _json(200, response, request_id, {"X-Conveyor-Fallback": str(failed)} if failed is not None else None)


def describe(request: ProxyRequest) -> dict[str, Any]:
    return _json(200, _prediction_service().describe(request.params["model"]), request.request_id)


def openapi(request: ProxyRequest) -> dict[str, Any]:
    from conveyor.openapi import openapi_document

    model = request.query.get("model")
    contract = _prediction_service().contract(model) if model else None
    return _json(200, openapi_document(contract), request.request_id)


ROUTES = (
    Route("POST", "/models/<model>/predict", predict),
    Route("GET", "/models/<model>", describe),
    Route("GET", "/openapi.json", openapi),
)


def _error(status: int, code: str, message: str, details: list[Any], request_id: str) -> dict[str, Any]:
    return _json(status, {"error": {"code": code, "message": message, "details": details}}, request_id)


def _resolve(request: ProxyRequest) -> dict[str, Any]:
    for route in ROUTES:
        params = route.match(request)
        if params is not None:
            request.params = params
            return route.handler(request)
    details = [{"field": "path", "message": request.path}]
    return _error(404, "not_found", "no such route", details, request.request_id)


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = ProxyRequest.from_event(event)
    request.request_id = request_id_from(request.headers)
    log.invocation(context, request.request_id)
    try:
        return _resolve(request)
    except RequestError as error:
        log.write("INFO", "request refused", {"code": error.code, "status": error.status})
        return _error(error.status, error.code, error.message, error.details, request.request_id)
    except ArtifactError as error:
        log.write("ERROR", "artifact refused", {"reason": str(error)})
        message = "the model artifact failed verification"
        return _error(503, "model_unavailable", message, [], request.request_id)
    except Exception:
        logging.getLogger("conveyor.predict").exception("unexpected error")
        message = "internal error; the request id identifies it in the logs"
        return _error(500, "internal", message, [], request.request_id)
    finally:
        after.finished()  # the response is built: what the request deferred may run


def _import_runtime() -> None:
    """numpy and onnxruntime, then what init built moved out of the collector's generations (it lives
    as long as the container: no later collection walks numpy's and onnxruntime's objects again) and
    collection resumed as before."""
    try:
        import conveyor.scoring  # noqa: F401
    finally:
        gc.freeze()
        if _collecting:
            gc.enable()


runtime = threading.Thread(target=_import_runtime, name="import-runtime", daemon=True)
runtime.start()
if os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand") != "on-demand":
    runtime.join()
