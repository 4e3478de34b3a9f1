"""The prediction service: routing -> verified ONNX model and serving contract -> validated request
-> scores; the shadow scored beside; every scoring captured (sampled) and measured.

Imports numpy and onnxruntime (through ``conveyor.scoring``) and the standard library, nothing
heavier: this is the predict Lambda's cold start. A test checks the import graph.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from conveyor.capture import captured, json_safe
from conveyor.contract import MASK, ContractViolation, Scoring, ServingContract, TooMany
from conveyor.errors import ArtifactError, ConveyorError
from conveyor.ports import CaptureSink, MetricsSink, ObjectStore
from conveyor.registry import Registry, Routing, load_verified, sha256_hex
from conveyor.scoring import OnnxModel

log = logging.getLogger(__name__)

MAX_HEADER_VALUE = 200


class RequestError(ConveyorError):
    status = 400
    code = "invalid_request"

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details if details is not None else []


class InvalidInput(RequestError):
    status = 400
    code = "invalid_input"


class ModelNotFound(RequestError):
    status = 404
    code = "model_not_found"


class TooManyRows(RequestError):
    status = 413
    code = "too_many_rows"


class ModelUnavailable(RequestError):
    status = 503
    code = "model_unavailable"


def _header(headers: dict[str, str] | None, wanted: str) -> str | None:
    for name, value in (headers or {}).items():
        if name.lower() == wanted and value and len(value) <= MAX_HEADER_VALUE:
            return value
    return None


def request_id_from(headers: dict[str, str] | None) -> str:
    """Honour a client's X-Request-Id (any header case); otherwise make one."""
    return _header(headers, "x-request-id") or str(uuid.uuid4())


def entity_key_from(headers: dict[str, str] | None) -> str | None:
    """The client's X-Entity-Key (any header case): requests with the same key land on the same side
    of a traffic split. None when absent (the request id is used instead)."""
    return _header(headers, "x-entity-key")


def parse_body(raw: str | None) -> Any:
    """The request body as JSON, or InvalidInput naming why not."""
    try:
        return json.loads(raw or "")
    except json.JSONDecodeError as error:
        raise InvalidInput("the body is not valid JSON", [{"field": "body", "message": error.msg}]) from None
    except (ValueError, TypeError, RecursionError):  # e.g. a 5,000-digit integer, or nesting 100,000 deep
        raise InvalidInput(
            "the body is JSON this API cannot read",
            [{"field": "body", "message": "integer too long or nesting too deep"}],
        ) from None


def _model_arrays(scoring: Scoring, inputs: dict[str, str]) -> dict[str, np.ndarray]:
    """ONNX input columns (n, 1): object arrays for string inputs, float32 for the rest."""
    return {
        name: (
            np.asarray(scoring.columns[name], dtype=object)
            if kind == "category"
            else np.asarray(scoring.columns[name], dtype=np.float32)
        ).reshape(-1, 1)
        for name, kind in inputs.items()
    }


def _validated(contract: ServingContract, instances: Any, max_rows: int) -> Scoring:
    try:
        return contract.columns(instances, max_rows)
    except TooMany as error:
        raise TooManyRows(error.message, error.details) from None
    except ContractViolation as error:
        raise InvalidInput(error.message, error.details) from None


def columns_from_instances(instances: Any, features: dict[str, str], max_rows: int) -> dict[str, np.ndarray]:
    """Validate ``instances`` against model inputs (name -> ``number`` | ``category``, every one
    nullable) and turn them into ONNX input columns; every problem is reported with its field path."""
    contract = ServingContract.from_model_inputs("", "", features)
    return _model_arrays(_validated(contract, instances, max_rows), features)


def _json_value(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


@dataclass(frozen=True)
class LoadedVersion:
    """One servable version: its ONNX session and its serving contract."""

    ref: dict[str, Any]
    onnx: OnnxModel
    contract: ServingContract

    @property
    def number(self) -> int:
        return int(self.ref["version"])


class ModelCache:
    """ONNX sessions per artifact sha256 (each downloaded once to local disk and verified) and
    serving contracts per sha256 (verified, kept in memory)."""

    def __init__(self, store: ObjectStore, bucket: str, directory: str | None = None) -> None:
        self._store = store
        self._bucket = bucket
        self._dir = Path(directory or os.environ.get("CONVEYOR_MODEL_DIR", "/tmp/conveyor-models"))  # noqa: S108
        self._models: dict[str, OnnxModel] = {}
        self._contracts: dict[tuple[str, str], ServingContract] = {}
        self._lock = threading.Lock()

    def get(self, artifact_key: str, sha256: str) -> OnnxModel:
        model = self._models.get(sha256)
        if model is not None:
            return model
        with self._lock:
            if sha256 in self._models:
                return self._models[sha256]
            path = self._dir / f"{sha256}.onnx"
            data = path.read_bytes() if path.exists() else b""
            if sha256_hex(data) != sha256:
                data = load_verified(self._store, self._bucket, artifact_key, sha256)
                self._dir.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
            model = OnnxModel(data)
            self._models[sha256] = model
            return model

    def contract(self, model_name: str, ref: dict[str, Any], onnx: OnnxModel) -> ServingContract:
        """The version's serving contract, verified by its sha256; derived from the ONNX inputs for a
        version registered without one."""
        contract_sha = str(ref.get("contract_sha256") or "")
        cache_key = (contract_sha or "onnx", str(ref["sha256"]))
        contract = self._contracts.get(cache_key)
        if contract is not None:
            return contract
        if contract_sha:
            data = load_verified(self._store, self._bucket, str(ref["contract_key"]), contract_sha)
            try:
                contract = ServingContract.from_json(data)
            except (ValueError, KeyError, TypeError) as error:
                raise ArtifactError(f"unreadable serving contract {ref['contract_key']}: {error}") from None
            if set(contract.features) != set(onnx.features):
                raise ArtifactError(
                    f"serving contract {ref['contract_key']} does not name the model's inputs",
                    details={"contract": sorted(contract.features), "model": sorted(onnx.features)},
                )
        else:
            contract = ServingContract.from_model_inputs(model_name, onnx.task, onnx.feature_types)
        self._contracts[cache_key] = contract
        return contract

    def load(self, model_name: str, ref: dict[str, Any]) -> LoadedVersion:
        onnx = self.get(str(ref["artifact_key"]), str(ref["sha256"]))
        return LoadedVersion(ref=ref, onnx=onnx, contract=self.contract(model_name, ref, onnx))


@dataclass
class Outcome:
    """How one version handled one request (served or shadow)."""

    ref: dict[str, Any]
    role: str
    served: bool
    latency_ms: float = 0.0
    status: int = 200
    error: Exception | None = None
    error_code: str | None = None
    contract: ServingContract | None = None
    predictions: list[Any] = field(default_factory=list)
    probabilities: list[dict[str, float]] | None = None
    warnings: list[dict[str, Any]] = field(default_factory=list)
    score: float | None = None  # mean positive-class probability, or mean prediction (regression)
    task: str = ""

    @property
    def version(self) -> int:
        return int(self.ref["version"])


def _positive_column(classes: list[Any]) -> int | None:
    """Which probability column is the positive class of a binary classifier (``1`` or the last)."""
    if len(classes) != 2:
        return None
    labels = [str(c) for c in classes]
    return labels.index("1") if "1" in labels else 1


class PredictionService:
    """Answers predict requests for every model, per its routing record (cached ``routing_cache_seconds``)."""

    def __init__(
        self,
        registry: Registry,
        models: ModelCache,
        *,
        routing_cache_seconds: float = 5.0,
        max_rows: int = 1000,
        clock: Callable[[], float] = time.monotonic,
        capture: CaptureSink | None = None,
        metrics: MetricsSink | None = None,
        metrics_namespace: str = "Conveyor",
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._registry = registry
        self._models = models
        self._ttl = routing_cache_seconds
        self._max_rows = max_rows
        self._clock = clock
        self._wall_clock = wall_clock
        self._capture = capture
        self._metrics = metrics
        self._namespace = metrics_namespace
        self._routing: dict[str, tuple[float, Routing | None]] = {}
        self.capture_failures = 0
        self.metrics_failures = 0

    def routing(self, model: str) -> Routing | None:
        cached = self._routing.get(model)
        now = self._clock()
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        routing = self._registry.routing(model)
        self._routing[model] = (now, routing)
        return routing

    # requests -------------------------------------------------------------------------------
    def predict(self, model: str, body: Any, request_id: str, entity_key: str | None = None) -> dict[str, Any]:
        """Score a parsed body ``{"instances": [...]}``."""
        return self._predict(model, lambda: body, request_id, entity_key)

    def predict_json(
        self, model: str, raw: str | None, request_id: str, entity_key: str | None = None
    ) -> dict[str, Any]:
        """Score a raw JSON body; a body that does not parse is refused (and captured) like any invalid input."""
        return self._predict(model, lambda: parse_body(raw), request_id, entity_key)

    def _predict(
        self, model: str, read_body: Callable[[], Any], request_id: str, entity_key: str | None
    ) -> dict[str, Any]:
        started = time.perf_counter()
        timestamp = self._wall_clock()
        routing = self.routing(model)
        if routing is None or routing.champion is None:
            raise ModelNotFound(
                f"no model named {model!r} is deployed", [{"field": "model", "message": "unknown model"}]
            )
        routing_key = entity_key or request_id
        fallback = routing.fallback or {"mode": "none"}
        static = routing.killed and fallback.get("mode") == "static"
        previous = routing.killed and fallback.get("mode") == "previous" and bool(fallback.get("version"))
        if previous:
            ref, role = fallback["version"], "champion"
        elif routing.killed:  # static answer (validated against the champion's contract) or 503
            ref, role = routing.champion, "champion"
        else:
            ref, role = routing.choose(routing_key)
        on_trial = not routing.killed and (routing.challenger is not None or routing.shadow is not None)

        body: Any = None
        try:
            body = read_body()
        except RequestError as unreadable:
            outcome = Outcome(ref=ref, role=role, served=True, status=400, error=unreadable, error_code=unreadable.code)
        else:
            if routing.killed and not static and not previous:
                off = ModelUnavailable(f"model {model!r} is switched off and has no fallback", [])
                outcome = Outcome(ref=ref, role=role, served=True, status=503, error=off, error_code=off.code)
            else:
                outcome = self._score(model, ref, role, body, served=True)
        outcome.latency_ms = (time.perf_counter() - started) * 1000.0
        if static and outcome.error is None:  # no model answers: nothing to capture or measure
            instances = body["instances"]
            return {
                "model": model,
                "model_version": None,
                "request_id": request_id,
                "predictions": [fallback.get("prediction")] * len(instances),
                "warnings": outcome.warnings,
                "fallback": "static",
            }
        outcomes = [outcome]
        if routing.shadow is not None and not routing.killed and body is not None:
            shadow_started = time.perf_counter()
            shadow = self._score(model, routing.shadow, "shadow", body, served=False)
            shadow.latency_ms = (time.perf_counter() - shadow_started) * 1000.0
            outcomes.append(shadow)
        self._observe(model, outcomes, body, request_id, routing_key, timestamp, capture_all=on_trial)
        if outcome.error is not None:
            raise outcome.error
        response: dict[str, Any] = {
            "model": model,
            "model_version": outcome.version,
            "request_id": request_id,
            "predictions": outcome.predictions,
        }
        if outcome.probabilities is not None:
            response["probabilities"] = outcome.probabilities
        response["warnings"] = outcome.warnings
        if routing.killed:
            response["fallback"] = "previous"
        return response

    def _score(self, model: str, ref: dict[str, Any], role: str, body: Any, *, served: bool) -> Outcome:
        """One version scores the request. Never raises: a failure is in the outcome (the served one is
        raised by the caller after capture; a shadow's goes no further than capture)."""
        outcome = Outcome(ref=ref, role=role, served=served)
        try:
            version = self._models.load(model, ref)
            outcome.contract = version.contract
            outcome.task = version.onnx.task
            if not isinstance(body, dict):
                raise InvalidInput(
                    "the body must be a JSON object with 'instances'", [{"field": "body", "message": "not an object"}]
                )
            scoring = _validated(version.contract, body.get("instances"), self._max_rows)
            outcome.warnings = scoring.warnings
            prediction = version.onnx.predict(_model_arrays(scoring, version.onnx.features))
            outcome.predictions = [_json_value(v) for v in prediction.labels.tolist()]
            classes = version.onnx.classes
            if prediction.probabilities is not None and classes is not None:
                labels = [str(c) for c in classes]
                outcome.probabilities = [
                    {label: float(p) for label, p in zip(labels, row, strict=True)}
                    for row in prediction.probabilities.tolist()
                ]
                positive = _positive_column(classes)
                if positive is not None and len(prediction.probabilities):
                    outcome.score = float(np.mean(prediction.probabilities[:, positive]))
            elif version.onnx.task == "regression" and len(prediction.labels):
                outcome.score = float(np.mean(prediction.values))
        except RequestError as error:
            outcome.status, outcome.error, outcome.error_code = error.status, error, error.code
        except ArtifactError as error:
            log.error("artifact refused", extra={"model": model, "version": ref.get("version"), "reason": str(error)})
            refused = ModelUnavailable("the model artifact failed verification", [])
            outcome.status, outcome.error, outcome.error_code = 503, refused, refused.code
        except Exception as error:  # a bug or an onnxruntime failure: captured, measured, then a 500
            log.exception("scoring failed", extra={"model": model, "version": ref.get("version"), "role": role})
            outcome.status, outcome.error, outcome.error_code = 500, error, "internal"
        return outcome

    # capture and metrics ---------------------------------------------------------------------
    def _observe(
        self,
        model: str,
        outcomes: list[Outcome],
        body: Any,
        request_id: str,
        routing_key: str,
        timestamp: float,
        *,
        capture_all: bool,
    ) -> None:
        """Capture (sampled) and measure every outcome. Neither can fail the request: failures are
        logged and counted."""
        served = outcomes[0]
        if self._capture is not None:
            rate = served.contract.sample_rate if served.contract is not None else 1.0
            if capture_all or captured(request_id, rate):
                try:
                    records = [self._record(model, o, body, request_id, routing_key, timestamp) for o in outcomes]
                    self._capture.put(records)
                except Exception:
                    self.capture_failures += 1
                    log.warning("capture failed", exc_info=True, extra={"model": model, "request_id": request_id})
                    self._publish([("CaptureErrors", {"model": model}, 1.0)])
        datapoints: list[tuple[str, dict[str, str], float]] = []
        for outcome in outcomes:
            dimensions = {"model": model, "version": str(outcome.version)}
            datapoints.append(("Latency", dimensions, round(outcome.latency_ms, 3)))
            datapoints.append(("Errors", dimensions, 1.0 if outcome.status >= 500 else 0.0))
            if 400 <= outcome.status < 500:
                datapoints.append(("InvalidRequests", dimensions, 1.0))
            if outcome.error is None:
                datapoints.append(("Rows", dimensions, float(len(outcome.predictions))))
                if outcome.score is not None:
                    name = "MeanPrediction" if outcome.task == "regression" else "MeanScore"
                    datapoints.append((name, dimensions, outcome.score))
        self._publish(datapoints)

    def _publish(self, datapoints: list[tuple[str, dict[str, str], float]]) -> None:
        if self._metrics is None or not datapoints:
            return
        try:
            self._metrics.publish(self._namespace, datapoints)
        except Exception:
            self.metrics_failures += 1
            log.warning("metrics failed", exc_info=True)

    def _record(
        self, model: str, outcome: Outcome, body: Any, request_id: str, routing_key: str, timestamp: float
    ) -> dict[str, Any]:
        """One capture record (``docs/capture.md``)."""
        instances = body.get("instances") if isinstance(body, dict) else None
        rows = instances[: self._max_rows] if isinstance(instances, list) else []
        if outcome.contract is not None:
            inputs = [outcome.contract.mask(row) for row in rows]
        else:  # no contract could be read: nothing says which columns are safe to keep
            inputs = [{str(k): MASK for k in row} if isinstance(row, dict) else MASK for row in rows]
        return {
            "model": model,
            "model_version": outcome.version,
            "role": outcome.role,
            "served": outcome.served,
            "request_id": request_id,
            "routing_key": routing_key,
            "timestamp": round(timestamp, 3),
            "latency_ms": round(outcome.latency_ms, 3),
            "status": outcome.status,
            "error_code": outcome.error_code,
            "inputs": inputs,
            "predictions": [json_safe(p) for p in outcome.predictions],
            "probabilities": outcome.probabilities,
            "warnings": outcome.warnings,
        }

    # state ----------------------------------------------------------------------------------
    def contract(self, model: str) -> ServingContract:
        """The serving contract of the version that takes the champion's traffic."""
        routing = self.routing(model)
        if routing is None or routing.champion is None:
            raise ModelNotFound(
                f"no model named {model!r} is deployed", [{"field": "model", "message": "unknown model"}]
            )
        return self._models.load(model, routing.champion).contract

    def describe(self, model: str) -> dict[str, Any]:
        routing = self._registry.routing(model)
        if routing is None:
            raise ModelNotFound(
                f"no model named {model!r} is deployed", [{"field": "model", "message": "unknown model"}]
            )
        return {
            "model": model,
            "champion": routing.champion,
            "challenger": routing.challenger,
            "challenger_weight": float(routing.challenger_weight) if routing.challenger is not None else 0.0,
            "shadow": routing.shadow,
            "traffic": routing.traffic(),
            "killed": routing.killed,
            "fallback": routing.fallback,
            "revision": routing.revision,
            "updated_at": routing.updated_at,
            "history": routing.history[-10:],
        }

    def flush(self) -> None:
        """Deliver buffered captures (end of an invocation, or shutdown); never raises."""
        if self._capture is None:
            return
        try:
            self._capture.flush()
        except Exception:
            self.capture_failures += 1
            log.warning("capture flush failed", exc_info=True)
