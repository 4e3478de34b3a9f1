"""One cold start of a predict handler, in this fresh process (as in a new Lambda container).

``python serving_cold_start.py KIND DIR OUT.json`` (KIND: ``onnx`` or ``sklearn``), started by
test_serving_bench.py with the function's environment, ``AWS_ENDPOINT_URL`` pointing at a moto
server that holds the registry table, both artifacts, the serving contract and the capture
bucket, ``CAPTURE_DELIVERY=log`` and ``CONVEYOR_LEAN_AWS=1`` for the ONNX handler (capture records
as log lines, stdlib-signed reads: as the stack configures predict), and an empty ``CONVEYOR_MODEL_DIR`` (Lambda's /tmp is empty in
a new container). stdout is the handler's log lines.

The clock starts before the handler's module is imported and stops when its first response
is back: import, then the first request (the readers and their connections, routing record from
DynamoDB, artifact from S3 and its sha256 check, model load, validation, scoring, JSON).
Everything before the clock is the interpreter's own start and the standard library pieces
the event is built with; the runner measures that part too (from spawning the process).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))
import serving_env as env  # noqa: E402 - standard library only


def mapped_libraries() -> list[str]:
    """Shared objects of installed packages this process has mapped (which shipped ``.so`` files are used)."""
    names = set()
    for line in Path("/proc/self/maps").read_text().splitlines():
        path = line.split()[-1]
        if "-packages/" in path and ".so" in Path(path).name:
            names.add(path.split("-packages/", 1)[1])
    return sorted(names)


def main() -> None:
    kind, directory, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    event = env.predict_event(env.load_bodies(directory)["one"], "cold-start")
    context = env.Context()
    modules_before = len(sys.modules)
    clock = time.perf_counter
    started = clock()
    if kind == "floor":  # only numpy and onnxruntime, and the session opened: the floor to compare with
        import numpy  # noqa: F401
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        ort.InferenceSession((directory / env.ONNX_FILE).read_bytes(), options, providers=["CPUExecutionProvider"])
        answered = clock()
        out.write_text(
            json.dumps({"kind": kind, "cold_start_ms": (answered - started) * 1000, "answered_at": time.time()})
        )
        return
    if kind == "onnx":
        import functions.predict.handler as handler
    elif kind == "sklearn":
        import serving_sklearn_handler as handler
    else:
        raise SystemExit(f"unknown handler {kind}")
    imported = clock()
    response = handler.lambda_handler(event, context)
    answered = clock()
    answered_at = time.time()
    second = handler.lambda_handler(event, context)
    warm = clock() - answered
    if response["statusCode"] != 200 or second["statusCode"] != 200:
        raise SystemExit(f"{kind}: {response['statusCode']} {response['body'][:500]}")
    heavy = ("pandas", "sklearn", "scipy", "joblib", "onnxruntime", "boto3", "numpy")
    result = {
        "kind": kind,
        "import_ms": (imported - started) * 1000,
        "first_request_ms": (answered - imported) * 1000,
        "cold_start_ms": (answered - started) * 1000,
        "second_request_ms": warm * 1000,
        "answered_at": answered_at,
        "modules_loaded": len(sys.modules) - modules_before,
        "heavy_modules": sorted(m for m in heavy if m in sys.modules),
        "bytecode_cache": sys.pycache_prefix or "__pycache__",
        "peak_rss_mb": env.peak_rss_mb(),
        "mapped_libraries": mapped_libraries(),
        "prediction": json.loads(response["body"])["predictions"],
    }
    out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
