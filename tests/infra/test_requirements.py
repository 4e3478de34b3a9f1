"""The layers' and image's requirement files pin exactly what pyproject.toml pins."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s;#]+)")


def _name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", requirement.split("[", maxsplit=1)[0]).lower()


def _pins(lines: list[str]) -> dict[str, str]:
    pins = {}
    for line in lines:
        match = PIN.match(line.strip())
        if match:
            pins[_name(match.group(1))] = match.group(2)
    return pins


def pyproject_pins() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        lines += extra
    return _pins(lines)


@pytest.mark.parametrize("path", ["layers/inference/requirements.txt", "layers/training/requirements.txt"])
def test_requirement_pins_match_pyproject(path: str) -> None:
    lines = [line for line in (ROOT / path).read_text().splitlines() if line.strip() and not line.startswith("#")]
    pins = _pins(lines)
    assert len(pins) == len(lines), f"{path}: every requirement is pinned with =="
    expected = pyproject_pins()
    assert {name: expected.get(name) for name in pins} == pins


def test_inference_layer_has_no_training_libraries() -> None:
    pins = _pins((ROOT / "layers/inference/requirements.txt").read_text().splitlines())
    assert set(pins) == {"numpy", "onnxruntime", "aws-lambda-powertools"}
