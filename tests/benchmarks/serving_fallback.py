"""In-handler latency of a request the champion answers for a challenger that cannot (issue 17).

``python serving_fallback.py DIR OUT.json N WARMUP`` (started by test_fallback_bench.py in a fresh
process, stdout discarded: it is the handler's log lines).

The ONNX predict handler runs against moto (``mock_aws``) as in serving_latency.py: v1 serves, and a
challenger takes half the traffic whose artifact fails its sha256 check. Three kinds of single-row
requests, timed one by one and interleaved: ``normal`` (on v1's side of the split), ``fallback``
(on the challenger's side, its breaker never opening: the challenger fails at once from the cached
load failure, then v1 answers) and ``breaker_open`` (another such challenger with the default
breaker, open after its first 5 failures: the challenger is not tried).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))
import serving_env as env  # noqa: E402
from serving_latency import _interleaved  # noqa: E402


def _request_ids(weight: float) -> tuple[str, str]:
    """A request id on the champion's side of a ``weight`` split and one on the challenger's."""
    from conveyor.registry import traffic_share

    ids = (f"bench-{i}" for i in range(10_000))
    champion = next(i for i in ids if traffic_share(i) >= weight)
    challenger = next(i for i in ids if traffic_share(i) < weight)
    return champion, challenger


def main() -> None:
    directory, out = Path(sys.argv[1]), Path(sys.argv[2])
    n, warmup = int(sys.argv[3]), int(sys.argv[4])
    os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ.update(env.function_environment(directory / "model-cache"))

    import boto3
    from moto import mock_aws

    from conveyor.adapters.aws import DynamoTable
    from conveyor.registry import ModelVersion, Registry, sha256_hex

    with mock_aws():
        s3, dynamodb = boto3.client("s3"), boto3.resource("dynamodb")
        onnx = (directory / env.ONNX_FILE).read_bytes()
        env.seed_cloud(s3, dynamodb, onnx, b"", contract=(directory / "contract.json").read_bytes())
        registry = Registry(DynamoTable(env.REGISTRY_TABLE, resource=dynamodb))
        for name in ("contract-never-opens.json", "contract.json"):  # v2: its breaker never opens; v3: defaults
            contract = (directory / name).read_bytes()
            contract_key = f"{env.MODEL}/contracts/sha256-{sha256_hex(contract)}.json"
            s3.put_object(Bucket=env.ARTIFACT_BUCKET, Key=contract_key, Body=contract)
            key = f"{env.MODEL}/broken/{name}.onnx"
            s3.put_object(Bucket=env.ARTIFACT_BUCKET, Key=key, Body=b"not an onnx model")
            registry.register(
                ModelVersion(
                    model=env.MODEL,
                    version=0,
                    status="approved",
                    artifact_key=key,
                    sha256=sha256_hex(name.encode()),  # what it should be: the bytes in the bucket fail the check
                    contract_key=contract_key,
                    contract_sha256=sha256_hex(contract),
                )
            )
        import functions.predict.handler as ox

        body = json.dumps({"instances": [json.loads((directory / "row.json").read_text())]})
        on_champion, on_challenger = _request_ids(0.5)
        normal = env.predict_event(body, on_champion)
        fallback = env.predict_event(body, on_challenger)
        context = env.Context()
        results: dict[str, list[float]] = {}
        for version, name in ((2, "fallback"), (3, "breaker_open")):
            registry.set_challenger(env.MODEL, version, 0.5)
            ox._service = None  # a new container: the routing record read afresh
            answer = json.loads(ox.lambda_handler(fallback, context)["body"])
            assert answer["model_version"] == 1 and answer["fallback_from"] == version, answer
            assert json.loads(ox.lambda_handler(normal, context)["body"]).get("fallback") is None
            calls = {
                "normal": lambda: ox.lambda_handler(normal, context),
                name: lambda: ox.lambda_handler(fallback, context),
            }
            _interleaved(calls, warmup, 50)
            samples = _interleaved(calls, n, 100)
            results[name] = samples[name]
            results.setdefault("normal", []).extend(samples["normal"])
            breakers = ox._prediction_service().breakers(env.MODEL)
            assert breakers[str(version)]["state"] == ("closed" if version == 2 else "open"), breakers
    out.write_text(json.dumps(results))


if __name__ == "__main__":
    main()
