"""Import graphs of the zip functions: they get the core layer and a numpy + onnxruntime +
Powertools layer, nothing else, so they must not import pandas, scikit-learn, pydantic or yaml."""

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

FORBIDDEN = ("pandas", "sklearn", "scipy", "skl2onnx", "onnx", "pyarrow", "pydantic", "yaml", "moto")

PROBE = """
import json, sys, time
started = time.perf_counter()
import functions.{name}.handler
elapsed = time.perf_counter() - started
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
    assert not loaded & set(FORBIDDEN), f"the predict path imports {sorted(loaded & set(FORBIDDEN))}"


@pytest.mark.parametrize("name", ["dispatch", "register", "deploy"])
def test_other_zip_functions_import_only_what_their_layers_ship(name):
    loaded = _imports(name)
    assert not loaded & set(FORBIDDEN), f"{name} imports {sorted(loaded & set(FORBIDDEN))}"
