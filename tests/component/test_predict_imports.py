"""The predict function's import graph: numpy and onnxruntime, never pandas or scikit-learn."""

import json
import subprocess
import sys

from tests.conftest import ROOT

FORBIDDEN = ("pandas", "sklearn", "scipy", "skl2onnx", "onnx", "pyarrow", "pydantic", "moto")

PROBE = """
import json, sys, time
started = time.perf_counter()
import functions.predict.handler
elapsed = time.perf_counter() - started
print(json.dumps({"modules": sorted({m.split('.')[0] for m in sys.modules}), "seconds": elapsed}))
"""


def test_predict_handler_imports_no_training_libraries():
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, check=True)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    loaded = set(report["modules"])
    assert "onnxruntime" in loaded and "numpy" in loaded
    assert not loaded & set(FORBIDDEN), f"the predict path imports {sorted(loaded & set(FORBIDDEN))}"
