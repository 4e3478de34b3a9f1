"""The prediction service: routing -> verified ONNX model -> validated request -> scores.

Imports numpy and onnxruntime (through ``conveyor.scoring``) and nothing heavier: this is the
predict Lambda's cold start. A test checks the import graph.
"""

from __future__ import annotations

import math
import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from conveyor.errors import ConveyorError
from conveyor.ports import ObjectStore
from conveyor.registry import Registry, Routing, load_verified, sha256_hex
from conveyor.scoring import OnnxModel


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


def request_id_from(headers: dict[str, str] | None) -> str:
    """Honour a client's X-Request-Id (any header case); otherwise make one."""
    for name, value in (headers or {}).items():
        if name.lower() == "x-request-id" and value and len(value) <= 200:
            return value
    return str(uuid.uuid4())


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _fits_float32(value: int | float) -> bool:
    """Finite, and within float32's range: the model's inputs are float32 (a huge int would overflow)."""
    try:
        number = float(value)
    except OverflowError:
        return False
    return math.isfinite(number) and abs(number) <= _FLOAT32_MAX


def columns_from_instances(instances: Any, features: dict[str, str], max_rows: int) -> dict[str, np.ndarray]:
    """Validate ``instances`` against the model's inputs and turn them into ONNX input columns.

    Every problem is reported with its field path (``instances[2].age``), not just the first.
    """
    if not isinstance(instances, list) or not instances:
        raise InvalidInput(
            "'instances' must be a non-empty list of objects", [{"field": "instances", "message": "required"}]
        )
    if len(instances) > max_rows:
        raise TooManyRows(
            f"{len(instances)} instances in one request; the maximum is {max_rows}",
            [{"field": "instances", "message": f"at most {max_rows} rows"}],
        )
    errors: list[dict[str, str]] = []
    numbers: dict[str, list[float]] = {name: [] for name, kind in features.items() if kind == "number"}
    strings: dict[str, list[str]] = {name: [] for name, kind in features.items() if kind != "number"}
    for row_number, row in enumerate(instances):
        if not isinstance(row, dict):
            errors.append({"field": f"instances[{row_number}]", "message": "must be an object of feature: value"})
            continue
        for name, kind in features.items():
            field = f"instances[{row_number}].{name}"
            value = row.get(name)
            if kind == "number":
                if value is None:
                    numbers[name].append(math.nan)
                elif isinstance(value, bool):
                    numbers[name].append(1.0 if value else 0.0)
                elif isinstance(value, int | float) and _fits_float32(value):
                    numbers[name].append(float(value))
                else:
                    errors.append(
                        {
                            "field": field,
                            "message": f"must be a finite number within float32 range, got {type(value).__name__}",
                        }
                    )
            elif value is None:
                strings[name].append("")
            elif isinstance(value, str | int | bool) and not isinstance(value, float):
                strings[name].append(str(int(value)) if isinstance(value, bool) else str(value))
            else:
                errors.append({"field": field, "message": f"must be a string, got {type(value).__name__}"})
        unknown = sorted(set(row) - set(features))
        if unknown:
            errors.append(
                {"field": f"instances[{row_number}]", "message": f"unknown fields: {', '.join(unknown[:10])}"}
            )
    if errors:
        raise InvalidInput(f"{len(errors)} invalid field(s) in 'instances'", errors[:100])
    columns: dict[str, np.ndarray] = {}
    for name, values in numbers.items():
        columns[name] = np.asarray(values, dtype=np.float32).reshape(-1, 1)
    for name, texts in strings.items():
        columns[name] = np.asarray(texts, dtype=object).reshape(-1, 1)
    return columns


def _json_value(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


class ModelCache:
    """ONNX sessions per artifact sha256, each downloaded once to local disk and verified."""

    def __init__(self, store: ObjectStore, bucket: str, directory: str | None = None) -> None:
        self._store = store
        self._bucket = bucket
        self._dir = Path(directory or os.environ.get("CONVEYOR_MODEL_DIR", "/tmp/conveyor-models"))  # noqa: S108
        self._models: dict[str, OnnxModel] = {}
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


class PredictionService:
    def __init__(
        self,
        registry: Registry,
        models: ModelCache,
        *,
        routing_cache_seconds: float = 5.0,
        max_rows: int = 1000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._registry = registry
        self._models = models
        self._ttl = routing_cache_seconds
        self._max_rows = max_rows
        self._clock = clock
        self._routing: dict[str, tuple[float, Routing | None]] = {}

    def routing(self, model: str) -> Routing | None:
        cached = self._routing.get(model)
        now = self._clock()
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        routing = self._registry.routing(model)
        self._routing[model] = (now, routing)
        return routing

    def predict(self, model: str, body: Any, request_id: str) -> dict[str, Any]:
        routing = self.routing(model)
        if routing is None or routing.champion is None:
            raise ModelNotFound(
                f"no model named {model!r} is deployed", [{"field": "model", "message": "unknown model"}]
            )
        champion = routing.champion
        fallback = routing.fallback or {"mode": "none"}
        if routing.killed:
            if fallback.get("mode") == "previous" and fallback.get("version"):
                champion = fallback["version"]
            elif fallback.get("mode") != "static":
                raise ModelUnavailable(f"model {model!r} is switched off and has no fallback", [])
        onnx_model = self._models.get(champion["artifact_key"], champion["sha256"])
        if not isinstance(body, dict):
            raise InvalidInput(
                "the body must be a JSON object with 'instances'", [{"field": "body", "message": "not an object"}]
            )
        columns = columns_from_instances(body.get("instances"), onnx_model.features, self._max_rows)
        if routing.killed and fallback.get("mode") == "static":
            return {
                "model": model,
                "model_version": None,
                "request_id": request_id,
                "predictions": [fallback.get("prediction")] * len(body["instances"]),
                "fallback": "static",
            }
        prediction = onnx_model.predict(columns)
        response: dict[str, Any] = {
            "model": model,
            "model_version": int(champion["version"]),
            "request_id": request_id,
            "predictions": [_json_value(v) for v in prediction.labels.tolist()],
        }
        if routing.killed:
            response["fallback"] = "previous"
        if prediction.probabilities is not None and onnx_model.classes is not None:
            labels = [str(c) for c in onnx_model.classes]
            response["probabilities"] = [
                {label: float(p) for label, p in zip(labels, row, strict=True)}
                for row in prediction.probabilities.tolist()
            ]
        return response

    def describe(self, model: str) -> dict[str, Any]:
        routing = self._registry.routing(model)
        if routing is None:
            raise ModelNotFound(
                f"no model named {model!r} is deployed", [{"field": "model", "message": "unknown model"}]
            )
        return {
            "model": model,
            "champion": routing.champion,
            "revision": routing.revision,
            "killed": routing.killed,
            "fallback": routing.fallback,
            "history": routing.history[-10:],
            "challenger": routing.challenger,
            "shadow": routing.shadow,
            "traffic": routing.traffic(),
            "updated_at": routing.updated_at,
        }
