"""Import graphs of the zip functions: they get the core layer and a numpy + onnxruntime +
Powertools layer, nothing else, so they must not import pandas, scikit-learn, pydantic or yaml.
The predict function imports numpy and onnxruntime and the standard library only (not Powertools)."""

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

FORBIDDEN = ("pandas", "sklearn", "scipy", "skl2onnx", "onnx", "pyarrow", "pydantic", "yaml", "moto")
NOT_ON_PREDICT = ("aws_lambda_powertools", "jmespath")

PROBE = """
import json, sys, time
started = time.perf_counter()
import functions.{name}.handler as handler
elapsed = time.perf_counter() - started
if hasattr(handler, "runtime"):  # predict imports numpy and onnxruntime in a thread from init
    handler.runtime.join()
print(json.dumps({{"modules": sorted({{m.split('.')[0] for m in sys.modules}}), "seconds": elapsed}}))
"""


def _imports(name: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(name=name)], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return set(json.loads(done.stdout.strip().splitlines()[-1])["modules"])


def test_predict_handler_imports_numpy_and_onnxruntime_and_no_training_libraries():
    loaded = _imports("predict")
    assert "onnxruntime" in loaded and "numpy" in loaded
    heavy = loaded & {*FORBIDDEN, *NOT_ON_PREDICT, "boto3", "botocore"}
    assert not heavy, f"the predict handler's import loads {sorted(heavy)}"


@pytest.mark.parametrize("name", ["dispatch", "register", "deploy"])
def test_other_zip_functions_import_only_what_their_layers_ship(name):
    loaded = _imports(name)
    assert not loaded & set(FORBIDDEN), f"{name} imports {sorted(loaded & set(FORBIDDEN))}"


SERVICE_PROBE = """
import json, os, sys
os.environ.update({{
    "DATA_BUCKET": "d", "ARTIFACT_BUCKET": "a", "CAPTURE_BUCKET": "c", "REGISTRY_TABLE": "t",
    "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s",
    "CAPTURE_DELIVERY": {delivery!r},
}})
import functions.predict.handler as handler
service = handler._prediction_service()  # what the first request builds: every lazy import of the path
print(json.dumps({{
    "modules": sorted({{m.split('.')[0] for m in sys.modules}}),
    "conveyor": sorted(m for m in sys.modules if m.startswith("conveyor")),
    "sink": type(service._capture).__name__,
}}))
"""


@pytest.mark.parametrize(("delivery", "sink"), [("log", "LogLineCapture"), ("", "BatchingS3Capture")])
def test_the_prediction_service_built_at_the_first_request_imports_no_training_library(delivery, sink):
    done = subprocess.run(
        [sys.executable, "-c", SERVICE_PROBE.format(delivery=delivery)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["sink"] == sink
    heavy = set(found["modules"]) & {*FORBIDDEN, "aws_lambda_powertools"}
    assert not heavy, sorted(heavy)
    assert {"conveyor.contract", "conveyor.capture", "conveyor.adapters.emf"} <= set(found["conveyor"])
    assert "conveyor.spec" not in found["conveyor"]


REGISTER_PROBE = """
import json, sys
sys.modules["yaml"] = None  # what the register function's layers ship: no PyYAML, no pydantic
sys.modules["pydantic"] = None
from conveyor.stages.release import _serving_contract
print(json.dumps({"contract": _serving_contract(None, {"spec_key": "m/spec.yaml"})}))
"""


def test_register_without_yaml_or_pydantic_registers_without_a_contract_instead_of_failing():
    done = subprocess.run([sys.executable, "-c", REGISTER_PROBE], cwd=ROOT, capture_output=True, text=True, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"contract": None}
