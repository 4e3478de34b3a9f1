"""The prediction service: routing -> verified ONNX model and serving contract -> validated request
-> scores; the champion answering for a challenger that cannot; the shadow scored beside; every
scoring captured (sampled) and measured. Loading: ``conveyor.model_cache``; breakers:
``conveyor.breaker``; capture records and metrics: ``conveyor.outcome``.

What the client does not wait for runs after the response (``conveyor.afterwork``): the shadow's
scoring, capture records, metrics, and the routing record's refresh ahead of its expiry, which loads
the versions a new revision names before the cached routing switches to it (pre-warm).

Imports numpy and onnxruntime (through ``conveyor.scoring``) and the standard library, nothing
heavier: this is the predict Lambda's cold start. A test checks the import graph. Both are imported
when first used, not with this module: the predict handler imports them in a thread while its
first request waits on the network (``functions/predict/handler.py``).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from conveyor.afterwork import AfterResponse
from conveyor.breaker import Breaker
from conveyor.capture import captured
from conveyor.contract import ContractViolation, Scoring, ServingContract, TooMany
from conveyor.errors import ArtifactError, MalformedOutput
from conveyor.model_cache import LoadedVersion, ModelCache
from conveyor.outcome import BREAKER_OPEN, Datapoint, Outcome, capture_record, datapoints
from conveyor.request import (
    InvalidInput,
    ModelNotFound,
    ModelUnavailable,
    RequestError,
    TooManyRows,
    entity_key_from,
    parse_body,
    request_id_from,
)
from conveyor.routing import Routing

if TYPE_CHECKING:
    import numpy as np

    from conveyor.ports import CaptureSink, MetricsSink
    from conveyor.scoring import Prediction

log = logging.getLogger(__name__)

__all__ = [  # ModelCache and the request helpers: re-exported, they lived here
    "InvalidInput",
    "LoadedVersion",
    "ModelCache",
    "ModelNotFound",
    "ModelUnavailable",
    "Outcome",
    "PredictionService",
    "RequestError",
    "TooManyRows",
    "entity_key_from",
    "parse_body",
    "request_id_from",
]


def _model_arrays(scoring: Scoring, inputs: dict[str, str]) -> dict[str, np.ndarray]:
    """ONNX input columns (n, 1): object arrays for string inputs, float32 for the rest (the rows of
    one float32 block: one conversion for all the numbers, not one per input)."""
    import numpy as np  # imported by now (see the module's note): a lookup

    numbers = [name for name, kind in inputs.items() if kind != "category"]
    block = np.array([scoring.columns[name] for name in numbers], dtype=np.float32)
    arrays = dict(zip(numbers, block.reshape(len(numbers), -1, 1), strict=True))  # (n, 1) views of the block
    for name, kind in inputs.items():
        if kind == "category":
            arrays[name] = np.asarray(scoring.columns[name], dtype=object).reshape(-1, 1)
    return arrays


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
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    return value


def _positive_column(classes: list[Any]) -> int | None:
    """Which probability column is the positive class of a binary classifier (``1`` or the last)."""
    if len(classes) != 2:
        return None
    labels = [str(c) for c in classes]
    return labels.index("1") if "1" in labels else 1


def _fill(outcome: Outcome, prediction: Prediction, classes: list[Any] | None, task: str) -> None:
    """Put a prediction's labels, probabilities and mean score into ``outcome``."""
    outcome.predictions = [_json_value(v) for v in prediction.labels.tolist()]
    # means of Python floats: numpy's reductions cost microseconds on the few rows of a request
    if prediction.probabilities is not None and classes is not None:
        labels = [str(c) for c in classes]
        rows = prediction.probabilities.tolist()
        outcome.probabilities = [{label: p for label, p in zip(labels, row, strict=True)} for row in rows]
        positive = _positive_column(classes)
        if positive is not None and rows:
            outcome.score = math.fsum(row[positive] for row in rows) / len(rows)
    elif task == "regression" and len(prediction.labels):
        values = prediction.values.tolist()
        outcome.score = math.fsum(values) / len(values)


def _elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


def _refused(ref: dict[str, Any], role: str, error: RequestError, started: float) -> Outcome:
    return Outcome(
        ref=ref,
        role=role,
        served=True,
        status=error.status,
        error=error,
        error_code=error.code,
        latency_ms=_elapsed_ms(started),
    )


def _chosen(routing: Routing, champion: dict[str, Any], routing_key: str) -> tuple[dict[str, Any], str, str]:
    """The version a request goes to, its role, and the kill switch's mode: ``""`` (not killed),
    ``previous`` (the previous version serves), ``static`` (validated by the champion, answered with the
    static prediction) or ``off`` (503)."""
    if not routing.killed:
        ref, role = routing.choose(routing_key)
        return ref, role, ""
    fallback = routing.fallback or {"mode": "none"}
    if fallback.get("mode") == "previous" and fallback.get("version"):
        return fallback["version"], "champion", "previous"
    return champion, "champion", "static" if fallback.get("mode") == "static" else "off"


def _response(model: str, request_id: str, answer: Outcome, mode: str) -> dict[str, Any]:
    response: dict[str, Any] = {
        "model": model,
        "model_version": answer.version,
        "request_id": request_id,
        "predictions": answer.predictions,
    }
    if answer.probabilities is not None:
        response["probabilities"] = answer.probabilities
    response["warnings"] = answer.warnings
    if mode == "previous":
        response["fallback"] = "previous"
    elif answer.fallback_for is not None:
        response["fallback"] = "champion"
        response["fallback_from"] = answer.fallback_for
    return response


class RoutingSource(Protocol):
    """Where routing records come from: ``conveyor.registry.Registry`` or ``RoutingReader``."""

    def routing(self, model: str) -> Routing | None: ...


@dataclass(frozen=True)
class Observed:
    """What a request leaves for after its response: how the versions handled it, and its identity."""

    model: str
    served: list[Outcome]
    body: Any
    request_id: str
    routing_key: str
    timestamp: float
    capture_all: bool  # the model is on trial (a challenger or a shadow): every request is captured


class PredictionService:
    """Answers predict requests for every model, per its routing record (cached ``routing_cache_seconds``).

    A challenger that cannot answer a request (a 5xx: its artifact does not load or verify, its session
    raises, its output is malformed) is answered for by the champion, and its breaker
    (``conveyor.breaker``, one per version in this container) counts the failure; while the breaker is
    open the challenger is not tried. The failure is captured and measured as the challenger's, the
    champion's answer too (``fallback_for``). The champion's own failure is not retried on another
    version: the kill switch's fallback (``conveyor kill --fallback``) is what answers for it.
    """

    def __init__(
        self,
        registry: RoutingSource,
        models: ModelCache,
        *,
        routing_cache_seconds: float = 5.0,
        max_rows: int = 1000,
        clock: Callable[[], float] = time.monotonic,
        capture: CaptureSink | None = None,
        metrics: MetricsSink | None = None,
        metrics_namespace: str = "Conveyor",
        wall_clock: Callable[[], float] = time.time,
        after: AfterResponse | None = None,
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
        self._after = after
        self._routing: dict[str, tuple[float, Routing | None]] = {}
        self._refreshing: set[str] = set()
        self._breakers: dict[tuple[str, int], Breaker] = {}
        self.capture_failures = 0
        self.metrics_failures = 0

    def routing(self, model: str) -> Routing | None:
        """The model's routing record, cached ``routing_cache_seconds`` (read here when the cache has
        expired; under steady traffic, the after-response refresh renews it first)."""
        cached = self._routing.get(model)
        now = self._clock()
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        routing = self._registry.routing(model)
        self._routing[model] = (now, routing)
        return routing

    def _refresh_ahead(self, model: str) -> None:
        """After a response: past half its cache time, read the routing record again and load every
        version a new revision names (champion, challenger, shadow, the kill switch's previous version)
        before switching the cached routing to it, so no request pays a download or the read."""
        cached = self._routing.get(model)
        if self._ttl <= 0 or cached is None or self._clock() - cached[0] < self._ttl / 2 or model in self._refreshing:
            return
        self._refreshing.add(model)
        try:
            now = self._clock()
            routing = self._registry.routing(model)
            if routing is not None and (cached[1] is None or routing.revision != cached[1].revision):
                self.warm(model, routing)
            self._routing[model] = (now, routing)
        finally:
            self._refreshing.discard(model)

    def warm(self, model: str, routing: Routing) -> None:
        """Load the versions ``routing`` may send requests to. A version that fails to load is
        remembered as failed by the model cache (its breaker and the champion handle its requests)."""
        fallback = (routing.fallback or {}).get("version") if routing.killed else None
        for ref in (routing.champion, routing.challenger, routing.shadow, fallback):
            if isinstance(ref, dict):
                try:
                    self._models.load(model, ref)
                except Exception:
                    log.warning("pre-warm failed", exc_info=True, extra={"model": model, "version": ref.get("version")})

    def _later(self, job: Callable[[], None]) -> None:
        """Run ``job`` after the response (at once without an after-response runner); never raises."""
        if self._after is not None:
            self._after.defer(job)
            return
        try:
            job()
        except Exception:
            log.warning("after-response work failed", exc_info=True)

    def _deployed(self, model: str) -> tuple[Routing, dict[str, Any]]:
        """The model's routing record and its champion, or ModelNotFound."""
        routing = self.routing(model)
        if routing is None or routing.champion is None:
            raise ModelNotFound(
                f"no model named {model!r} is deployed", [{"field": "model", "message": "unknown model"}]
            )
        return routing, routing.champion

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
        routing, champion = self._deployed(model)
        routing_key = entity_key or request_id
        ref, role, mode = _chosen(routing, champion, routing_key)
        body: Any = None
        try:
            body = read_body()
        except RequestError as unreadable:
            served = [_refused(ref, role, unreadable, started)]
        else:
            if mode == "off":
                off = ModelUnavailable(f"model {model!r} is switched off and has no fallback", [])
                served = [_refused(ref, role, off, started)]
            else:
                served = self._answer(model, routing, ref, role, body, started)
        answer = served[-1]
        if mode == "static" and answer.error is None:  # no model answers: nothing to capture or measure
            self._later(lambda: self._refresh_ahead(model))
            fallback = routing.fallback or {}
            return {
                "model": model,
                "model_version": None,
                "request_id": request_id,
                "predictions": [fallback.get("prediction")] * len(body["instances"]),
                "warnings": answer.warnings,
                "fallback": "static",
            }
        shadow = routing.shadow if routing.shadow is not None and not routing.killed and body is not None else None
        on_trial = not routing.killed and (routing.challenger is not None or routing.shadow is not None)
        observed = Observed(model, served, body, request_id, routing_key, timestamp, on_trial)
        self._later(lambda: self._after_response(observed, shadow))
        if answer.error is not None:
            raise answer.error
        return _response(model, request_id, answer, mode)

    def _after_response(self, observed: Observed, shadow: dict[str, Any] | None) -> None:
        """The shadow scores the request, every outcome is captured and measured, the routing refreshed."""
        outcomes = list(observed.served)
        if shadow is not None:
            shadow_started = time.perf_counter()
            outcome = self._score(observed.model, shadow, "shadow", observed.body, served=False)
            outcome.latency_ms = _elapsed_ms(shadow_started)
            outcomes.append(outcome)
        self._observe(observed, outcomes)
        self._refresh_ahead(observed.model)

    def _answer(
        self, model: str, routing: Routing, ref: dict[str, Any], role: str, body: Any, started: float
    ) -> list[Outcome]:
        """The chosen version's outcome, then, if it was a challenger that could not answer (a 5xx, or
        its breaker is open), the champion's answer for it. A client's error (4xx) is never retried."""
        breaker = self._breaker(model, ref) if role == "challenger" else None
        if breaker is not None and not breaker.allow():
            unavailable = ModelUnavailable(f"version {ref['version']} is unavailable (its breaker is open)", [])
            first = _refused(ref, role, unavailable, started)
            first.error_code = BREAKER_OPEN
        else:
            first = self._score(model, ref, role, body, served=True)
            first.latency_ms = _elapsed_ms(started)
            if breaker is not None and breaker.record(failed=first.failed):
                self._opened(model, first, breaker)
        if not first.failed or role != "challenger" or routing.champion is None:
            return [first]
        answer = self._score(model, routing.champion, "champion", body, served=True)
        answer.latency_ms = _elapsed_ms(started)  # what the client waited: the failed attempt included
        answer.fallback_for = first.version
        return [first, answer]

    def _breaker(self, model: str, ref: dict[str, Any]) -> Breaker:
        key = (model, int(ref["version"]))
        breaker = self._breakers.get(key)
        if breaker is None:
            breaker = self._breakers.setdefault(key, Breaker(self._models.breaker_settings(ref), self._clock))
        return breaker

    def _opened(self, model: str, outcome: Outcome, breaker: Breaker) -> None:
        settings = breaker.settings
        log.warning(
            "breaker opened: the champion answers for this version for %s s",
            settings.cooldown_seconds,
            extra={"model": model, "version": outcome.version, "failures": breaker.failures},
        )
        self._publish(
            [
                ("BreakerOpen", {"model": model, "version": str(outcome.version)}, 1.0),
                ("BreakerOpen", {"model": model}, 1.0),  # the set the model's breaker alarm watches
            ]
        )

    def _score(self, model: str, ref: dict[str, Any], role: str, body: Any, *, served: bool) -> Outcome:
        """One version scores the request. Never raises: a failure is in the outcome (the served one is
        raised by the caller after capture; a shadow's goes no further than capture)."""
        outcome = Outcome(ref=ref, role=role, served=served)
        replay = self._models.recent_failure(ref) is not None  # logged when it happened, not on every replay
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
            _fill(outcome, prediction, version.onnx.classes, version.onnx.task)
        except RequestError as error:
            outcome.status, outcome.error, outcome.error_code = error.status, error, error.code
        except ArtifactError as error:
            if not replay:
                log.error(
                    "artifact refused", extra={"model": model, "version": ref.get("version"), "reason": str(error)}
                )
            refused = ModelUnavailable("the model artifact failed verification", [])
            outcome.status, outcome.error, outcome.error_code = 503, refused, refused.code
        except MalformedOutput as error:
            log.error("malformed output", extra={"model": model, "version": ref.get("version"), "reason": str(error)})
            outcome.status, outcome.error, outcome.error_code = 500, error, "malformed_output"
        except Exception as error:  # a bug or an onnxruntime failure: captured, measured, then a 500
            if not replay:
                log.exception("scoring failed", extra={"model": model, "version": ref.get("version"), "role": role})
            outcome.status, outcome.error, outcome.error_code = 500, error, "internal"
        return outcome

    # capture and metrics ---------------------------------------------------------------------
    def _observe(self, observed: Observed, outcomes: list[Outcome]) -> None:
        """Capture (sampled) and measure every outcome. Neither can fail the request: failures are
        logged and counted."""
        model, request_id, body = observed.model, observed.request_id, observed.body
        if self._capture is not None:
            contract = next((o.contract for o in outcomes if o.served and o.contract is not None), None)
            rate = contract.sample_rate if contract is not None else 1.0
            if observed.capture_all or captured(request_id, rate):
                instances = body.get("instances") if isinstance(body, dict) else None
                rows = instances[: self._max_rows] if isinstance(instances, list) else []
                try:
                    records = [
                        capture_record(model, o, rows, request_id, observed.routing_key, observed.timestamp)
                        for o in outcomes
                    ]
                    self._capture.put(records)
                except Exception:
                    self.capture_failures += 1
                    log.warning("capture failed", exc_info=True, extra={"model": model, "request_id": request_id})
                    self._publish([("CaptureErrors", {"model": model}, 1.0)])
        points = [point for outcome in outcomes for point in datapoints(model, outcome)]
        # The per-model set the model's alarms watch: what the client saw, whichever version answered.
        served = next((o for o in outcomes if o.served), None)
        if served is not None:
            points.append(("Latency", {"model": model}, round(served.latency_ms, 3)))
            points.append(("Errors", {"model": model}, 1.0 if served.status >= 500 else 0.0))
        self._publish(points)

    def _publish(self, points: list[Datapoint]) -> None:
        if self._metrics is None or not points:
            return
        try:
            self._metrics.publish(self._namespace, points)
        except Exception:
            self.metrics_failures += 1
            log.warning("metrics failed", exc_info=True)

    # state ----------------------------------------------------------------------------------
    def contract(self, model: str) -> ServingContract:
        """The serving contract of the version that takes the champion's traffic."""
        _, champion = self._deployed(model)
        return self._models.load(model, champion).contract

    def breakers(self, model: str) -> dict[str, dict[str, Any]]:
        """This container's breakers of ``model``: version -> ``{"state", "opened_at" (epoch s), "failures"}``."""
        offset = self._wall_clock() - self._clock()
        return {
            str(version): breaker.describe(offset)
            for (name, version), breaker in sorted(self._breakers.items())
            if name == model
        }

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
            "breakers": self.breakers(model),
        }

    def flush(self, timeout: float = 10.0) -> None:
        """Finish the after-response work, then deliver buffered captures (shutdown, tests); never raises."""
        if self._after is not None and not self._after.drain(timeout):
            log.warning("after-response work still running after %s s", timeout)
        if self._capture is None:
            return
        try:
            self._capture.flush()
        except Exception:
            self.capture_failures += 1
            log.warning("capture flush failed", exc_info=True)
