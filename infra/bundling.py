"""Local bundling of a Lambda layer from a requirements file, without Docker.

pip downloads the Lambda platform's wheels (manylinux, CPython 3.12, x86_64) whatever the
host's Python is, so `cdk synth` works on a machine without Docker. When pip is missing or
fails, CDK falls back to the public SAM build image (which needs Docker).
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_

from infra import constants as c


def pip_install_command(requirements: Path, target: Path) -> list[str]:
    """The pip command installing the Lambda platform's wheels of `requirements` into `target`."""
    platforms = [arg for platform in c.LAYER_PIP_PLATFORMS for arg in ("--platform", platform)]
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",  # the host's .pyc would not match Lambda's interpreter
        "-r",
        str(requirements),
        "-t",
        str(target),
        *platforms,
        "--python-version",
        c.PYTHON_VERSION,
        "--implementation",
        "cp",
        "--only-binary=:all:",
    ]


def prune_layer(python_dir: Path, patterns: list[str] | None = None) -> int:
    """Delete what no function loads (``infra.constants.LAYER_PRUNE``) from a layer's ``python/``
    folder; returns the bytes removed."""
    removed = 0
    for pattern in c.LAYER_PRUNE if patterns is None else patterns:
        for path in sorted(python_dir.glob(pattern)):
            if path.is_dir():
                removed += sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
                shutil.rmtree(path)
            elif path.exists():
                removed += path.stat().st_size
                path.unlink()
    return removed


def lambda_python() -> str | None:
    """A CPython of Lambda's version (``c.PYTHON_VERSION``) on this machine, if there is one: it
    compiles the layer's bytecode. Lambda's /opt is read-only, so a layer shipped without bytecode
    is compiled in memory at every cold start (about 230 ms for numpy, onnxruntime and Powertools)."""
    name = f"python{c.PYTHON_VERSION}"
    candidates = [shutil.which(name), *sorted(Path.home().glob(f".pyenv/versions/{c.PYTHON_VERSION}.*/bin/{name}"))]
    for candidate in candidates:
        if not candidate:
            continue
        probe = subprocess.run(
            [str(candidate), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0 and probe.stdout.strip() == c.PYTHON_VERSION:
            return str(candidate)
    return None


def compile_layer(python_dir: Path, interpreter: str) -> bool:
    """Write ``interpreter``'s bytecode beside every module of the layer, valid whatever the files'
    timestamps (unchecked hash: the zip's extraction times never invalidate it)."""
    command = [interpreter, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash"]
    result = subprocess.run([*command, str(python_dir)], capture_output=True, text=True, check=False)
    if result.returncode != 0:  # a module that does not compile (e.g. a template) leaves the rest compiled
        print(f"compileall reported problems:\n{result.stdout[-2000:]}", file=sys.stderr)
    return any(python_dir.rglob("__pycache__/*.pyc"))


@jsii.implements(cdk.ILocalBundling)
class PipLayerBundler:
    """Installs `requirements.txt` of the asset folder into `<output>/python` (a layer's layout).

    Shared objects in `*.libs/` are kept: wheels such as numpy's link against them.
    """

    def __init__(self, source_dir: Path) -> None:
        self._requirements = source_dir / "requirements.txt"

    def try_bundle(self, output_dir: str, options: cdk.BundlingOptions) -> bool:
        if importlib.util.find_spec("pip") is None:
            print("local bundling skipped: pip is not installed", file=sys.stderr)
            return False
        command = pip_install_command(self._requirements, Path(output_dir) / "python")
        result = subprocess.run(command, check=False, capture_output=True, text=True)
        if result.returncode != 0:
            print(f"local bundling failed, trying Docker:\n{result.stderr}", file=sys.stderr)
            return False
        prune_layer(Path(output_dir) / "python")
        interpreter = lambda_python()
        if interpreter is None or not compile_layer(Path(output_dir) / "python", interpreter):
            print(
                f"no Python {c.PYTHON_VERSION} here: the layer ships without bytecode (slower cold starts)",
                file=sys.stderr,
            )
        return True


def requirements_layer_code(source_dir: Path) -> lambda_.Code:
    """Layer code built from `source_dir/requirements.txt`: locally with pip, else in Docker."""
    runtime = lambda_.Runtime.PYTHON_3_12
    return lambda_.Code.from_asset(
        str(source_dir),
        # The layer is a function of the pinned requirements only: hash the source, so an
        # unchanged requirements file reuses the bundle already in cdk.out.
        asset_hash_type=cdk.AssetHashType.SOURCE,
        bundling=cdk.BundlingOptions(
            image=runtime.bundling_image,  # public.ecr.aws/sam/build-python3.12
            command=[
                "bash",
                "-c",
                "pip install --no-compile -r requirements.txt -t /asset-output/python && cd /asset-output/python"
                f" && rm -rf {' '.join(c.LAYER_PRUNE)}"
                " && python -m compileall -q -j 0 --invalidation-mode unchecked-hash .",
            ],
            local=PipLayerBundler(source_dir),
        ),
    )
