"""The dependency layer is pruned after pip: what is removed must be nothing a function loads."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import onnxruntime

from infra.bundling import prune_layer
from infra.constants import LAYER_PRUNE


def test_a_pruned_onnxruntime_still_scores_a_model(tmp_path: Path, trained_model) -> None:
    layer = tmp_path / "python"
    shutil.copytree(Path(onnxruntime.__file__).parent, layer / "onnxruntime")
    removed = prune_layer(layer)
    assert removed > 30_000_000  # libonnxruntime.so alone is about 33 MB
    assert not list(layer.glob("onnxruntime/capi/libonnxruntime.so*"))
    assert not (layer / "onnxruntime" / "transformers").exists()
    assert list(layer.glob("onnxruntime/capi/onnxruntime_pybind11_state*.so"))  # the binding itself stays
    model = tmp_path / "model.onnx"
    model.write_bytes(trained_model.onnx)
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import onnxruntime as ort, numpy as np;"
        "assert ort.__file__.startswith(sys.argv[1]), ort.__file__;"
        "s = ort.InferenceSession(sys.argv[2], providers=['CPUExecutionProvider']);"
        "feed = {i.name: (np.zeros((1, 1), np.float32) if 'float' in i.type else np.array([['1']], object))"
        " for i in s.get_inputs()};"
        "print(len(s.run(None, feed)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(layer), str(model)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout) >= 1


def test_the_docker_fallback_prunes_the_same_paths() -> None:
    from infra import bundling

    source = Path(bundling.__file__).read_text()
    assert "rm -rf" in source and "LAYER_PRUNE" in source
    assert all("libs/" not in pattern for pattern in LAYER_PRUNE)  # numpy.libs & co. are linked, never pruned


def test_the_layer_is_compiled_by_lambdas_python_with_bytecode_that_never_goes_stale(tmp_path: Path) -> None:
    from infra.bundling import compile_layer, lambda_python
    from infra.constants import PYTHON_VERSION

    found = lambda_python()
    if found is not None:  # whatever this machine offers must really be Lambda's version
        version = subprocess.run(
            [found, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True, check=True
        )
        assert version.stdout.strip() == str(tuple(int(p) for p in PYTHON_VERSION.split(".")))
    interpreter = found or sys.executable  # the mechanics are the same with this interpreter
    package = tmp_path / "python" / "pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("VALUE = 42\n")
    assert compile_layer(tmp_path / "python", interpreter)
    (pyc,) = (package / "__pycache__").glob("__init__.*.pyc")
    flags = int.from_bytes(pyc.read_bytes()[4:8], "little")
    assert flags == 0b01  # hash-based and unchecked: valid whatever the extracted files' timestamps
