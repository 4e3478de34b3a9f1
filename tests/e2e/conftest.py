"""One local cloud for the e2e tests, started as a user would (`conveyor up`) in its own process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest

from conveyor.cli.target import Target
from tests.conftest import ROOT


def wait_until(condition: Callable[[], bool], *, timeout: float = 60, interval: float = 0.3, what: str = "") -> None:
    """Poll ``condition`` until it holds; fail the test after ``timeout`` seconds (a generous deadline,
    never a fixed sleep before an assertion)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what or 'the condition'} did not hold within {timeout} s")
        time.sleep(interval)


@pytest.fixture(scope="session")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    workdir = tmp_path_factory.mktemp("cloud")
    state = workdir / "local.json"
    log = (workdir / "up.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "conveyor.cli.main", "up", "--state", str(state), "--data-dir", str(workdir / "data")],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "CONVEYOR_MODEL_DIR": str(workdir / "models")},
    )
    deadline = time.monotonic() + 240
    while not state.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the local cloud did not start:\n{(workdir / 'up.log').read_text()[-3000:]}")
        time.sleep(0.1)
    yield Target.load(state)
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
    assert not state.exists(), "`conveyor up` removes its state file when it stops"
