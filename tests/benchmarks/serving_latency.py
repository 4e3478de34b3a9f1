"""In-handler latency of the ONNX predict handler and its scikit-learn twin, side by side.

``python serving_latency.py DIR OUT.json N_SINGLE N_BATCH WARMUP`` (started by
test_serving_bench.py in a fresh process, stdout discarded: it is the handlers' log lines).

Both handlers run in this one process against moto (``mock_aws``): the registry table and the
artifact bucket are seeded as the pipeline leaves them (with the serving contract, when this
checkout has contracts), ``ROUTING_CACHE_SECONDS`` is an hour, so after the first call every
call reads its routing record and model from memory, as a warm Lambda container does. No
capture transport is configured: the ONNX handler builds and masks each capture record, then
drops it (the time of a Firehose or S3 call is not in these numbers). Calls are timed one by one with ``perf_counter_ns`` around
``lambda_handler(event, context)`` and interleaved in blocks (ONNX then scikit-learn, then
the other way round), so both see the same noise of this shared machine.

Besides the handlers, the same bodies are timed through the layers underneath, to say where
the time goes: the prediction service alone (routing cache + validation + scoring + response
dict, and for ONNX the capture record and metric datapoints; no Powertools resolver, no JSON) and the model alone (``InferenceSession.run`` on ready columns;
``predict_proba`` on a ready frame).
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))
import serving_env as env  # noqa: E402

AFTER: Any = None  # the ONNX handler's after-response runner (a ManualRunner, drained between calls)


def _time(call: Callable[[], Any], n: int) -> tuple[list[float], list[float]]:
    """``n`` calls, each timed alone, in microseconds: wall clock, and this thread's CPU time
    (which leaves out the time the process waited for a core on this shared machine). What a call
    left for after its response runs between calls, untimed: on Lambda the client has its answer
    then (the after-response extension, ``conveyor.afterwork``)."""
    wall, cpu = [], []
    clock, cpu_clock = time.perf_counter_ns, time.thread_time_ns
    for _ in range(n):
        started, cpu_started = clock(), cpu_clock()
        call()
        cpu_ended, ended = cpu_clock(), clock()
        if AFTER is not None:
            AFTER.drain()
        wall.append((ended - started) / 1000)
        cpu.append((cpu_ended - cpu_started) / 1000)
    return wall, cpu


def _interleaved(
    calls: dict[str, Callable[[], Any]], n: int, block: int, cpu: dict[str, list[float]] | None = None
) -> dict[str, list[float]]:
    """Wall-clock samples per call name; CPU-time samples go to ``cpu`` when given."""
    samples: dict[str, list[float]] = {name: [] for name in calls}
    names = list(calls)
    rounds = 0
    while len(samples[names[0]]) < n:
        order = names if rounds % 2 == 0 else names[::-1]
        for name in order:
            wall, cpu_samples = _time(calls[name], min(block, n - len(samples[name])))
            samples[name].extend(wall)
            if cpu is not None:
                cpu.setdefault(name, []).extend(cpu_samples)
        rounds += 1
    return samples


def _collections() -> list[int]:
    return [generation["collections"] for generation in gc.get_stats()]


def _trial(ox: Any, body: str, n: int, warmup: int) -> dict[str, list[float]]:
    """The ONNX handler's single-row latency with capture and a shadow on (the model on trial: every
    request captured, as log lines to /dev/null; the shadow the same artifact as a second version)
    against off (no capture, no shadow), interleaved: the handler's service swapped per block."""
    import boto3

    from conveyor.adapters.aws import DynamoTable, S3ObjectStore
    from conveyor.capture import LogLineCapture
    from conveyor.registry import Registry, RoutingReader
    from conveyor.serving import ModelCache, PredictionService

    trial_model = env.seed_trial(boto3.client("s3"), boto3.resource("dynamodb"))
    devnull = open(os.devnull, "w")  # noqa: SIM115 - open for the whole measurement
    common = {"routing_cache_seconds": 3600.0, "max_rows": 1000, "after": AFTER}
    reader = RoutingReader(DynamoTable(env.REGISTRY_TABLE))
    models = ModelCache(S3ObjectStore(), env.ARTIFACT_BUCKET)
    services = {
        "off": PredictionService(reader, models, capture=None, **common),
        "on": PredictionService(reader, models, capture=LogLineCapture(devnull), **common),
    }
    events = {"off": env.predict_event(body, "trial-off"), "on": env.predict_event(body, "trial-on", trial_model)}
    assert Registry(DynamoTable(env.REGISTRY_TABLE)).routing(trial_model).shadow is not None
    context = env.Context()

    def call(name: str) -> Callable[[], Any]:
        def once() -> Any:
            ox._service = services[name]
            return ox.lambda_handler(events[name], context)

        return once

    calls = {name: call(name) for name in services}
    for name in calls:
        assert calls[name]()["statusCode"] == 200, name
    _interleaved(calls, warmup, 50)
    samples = _interleaved(calls, n, 100)
    devnull.close()
    return samples


def main() -> None:
    directory, out = Path(sys.argv[1]), Path(sys.argv[2])
    n_single, n_batch, warmup = (int(a) for a in sys.argv[3:6])
    os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ.update(env.function_environment(directory / "model-cache"))

    import boto3
    from moto import mock_aws

    with mock_aws():
        env.seed_cloud(
            boto3.client("s3"),
            boto3.resource("dynamodb"),
            (directory / env.ONNX_FILE).read_bytes(),
            (directory / env.JOBLIB_FILE).read_bytes(),
            contract=env.read_contract(directory),
        )
        import serving_sklearn_handler as sk

        import functions.predict.handler as ox
        from conveyor.afterwork import ManualRunner

        global AFTER  # noqa: PLW0603 - one runner for the process, drained by _time
        AFTER = ox.after = ManualRunner()

        handlers = {"onnx": ox.lambda_handler, "sklearn": sk.lambda_handler}
        bodies = env.load_bodies(directory)
        events = {size: env.predict_event(body, f"bench-{size}") for size, body in bodies.items()}

        # Same answers from both (a benchmark of two different models would be meaningless).
        parity: dict[str, float] = {}
        keys: dict[str, list[str]] = {}
        for size, event in events.items():
            answers = {}
            for name, handler in handlers.items():
                response = handler(event, env.Context())
                assert response["statusCode"] == 200, (name, response["body"][:500])
                answers[name] = json.loads(response["body"])
            a, b = answers["onnx"], answers["sklearn"]
            assert a["predictions"] == b["predictions"], size
            assert a["request_id"] == b["request_id"] == f"bench-{size}"
            keys = {name: sorted(answer) for name, answer in answers.items()}
            parity[size] = max(
                abs(p[k] - q[k]) for p, q in zip(a["probabilities"], b["probabilities"], strict=True) for k in p
            )

        context = env.Context()
        results: dict[str, Any] = {
            "parity_max_abs_diff": parity,
            "response_keys": keys,
            "handler": {},
            "service": {},
            "model": {},
            "handler_cpu": {},
            "gc_collections": {},
        }
        for size, n in (("one", n_single), ("batch", n_batch)):
            event = events[size]
            calls = {name: (lambda h=handler, e=event: h(e, context)) for name, handler in handlers.items()}
            _interleaved(calls, warmup, 50)
            before = _collections()
            results["handler_cpu"][size] = {}
            results["handler"][size] = _interleaved(
                calls, n, 100 if size == "one" else 30, results["handler_cpu"][size]
            )
            results["gc_collections"][size] = [b - a for a, b in zip(before, _collections(), strict=True)]

        # The layers underneath, same bodies, fewer calls.
        onnx_service, sk_service = ox._prediction_service(), sk._prediction_service()
        champion = onnx_service.routing(env.MODEL).champion
        onnx_model = onnx_service._models.get(champion["artifact_key"], champion["sha256"])
        bundle = sk_service.model(champion["artifact_key"])
        from conveyor.serving import columns_from_instances

        for size, body in bodies.items():
            parsed = json.loads(body)
            n = max(200, (n_single if size == "one" else n_batch) // 4)
            services = {
                "onnx": lambda p=parsed: onnx_service.predict(env.MODEL, p, "r"),
                "sklearn": lambda p=parsed: sk_service.predict(env.MODEL, p, "r"),
            }
            _interleaved(services, 50, 50)
            results["service"][size] = _interleaved(services, n, 50)
            columns = columns_from_instances(parsed["instances"], onnx_model.features, 1000)
            frame = sk.frame_from_instances(parsed["instances"], bundle["features"], 1000)
            models = {
                "onnx": lambda c=columns: onnx_model.predict(c),
                "sklearn": lambda f=frame: bundle["pipeline"].predict_proba(f),
            }
            _interleaved(models, 50, 50)
            results["model"][size] = _interleaved(models, n, 50)
        results["trial"] = _trial(ox, bodies["one"], n_single, warmup)
    results["peak_rss_mb"] = env.peak_rss_mb()
    out.write_text(json.dumps(results))


if __name__ == "__main__":
    main()
