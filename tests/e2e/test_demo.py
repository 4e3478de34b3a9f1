"""`make demo` is the first thing a new user runs: it must complete, tell its story, and stop what it started."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.mark.e2e
def test_the_demo_completes_and_tells_its_story() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "conveyor.cli.main", "demo", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads(result.stdout)  # with --json, stdout is one JSON document
    outcomes = {d["drop"]: d["outcome"] for d in summary["drops"]}
    assert outcomes["1984-1985"] == "serving"
    assert outcomes["1986"] in {"serving", "candidate rejected"}
    assert outcomes["broken"] == "data rejected"
    assert outcomes["1986 late"] == "recorded"
    assert outcomes["1988"] in {"serving", "candidate rejected"}
    assert summary["drop_to_first_prediction_seconds"] > 0 and summary["ok"] is True
    assert "local cloud stopped" in result.stderr
