"""The local board with 20 models and 7 days of hourly data: server time plus the browser's load event
under 1 s (issue 13).

A local cloud (``conveyor up``) is seeded through the paths the functions use: the registry through
``conveyor.registry.Registry`` (versions, promotions, a challenger at 10% for every fourth model),
metrics through CloudWatch PutMetricData (``Latency`` and ``Errors`` samples per version and hour, as
the predict function's EMF lines become; the live monitor's ``Live*`` metrics and ``LiveValuePer1000``),
and one alarm per model and signal. Then the page is fetched (server time) and loaded in headless
Chromium (navigation to load event end, which includes the server's time).
"""

from __future__ import annotations

import random
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from conveyor.cli.target import Target
from conveyor.registry import ModelVersion, Registry
from tests.browser import chromium
from tests.conftest import ROOT

MODELS = 20
HOURS = 7 * 24
SAMPLES_PER_HOUR = 20
SIGNALS = ("latency", "errors", "drift", "domain_classifier", "live_metric", "capture_errors")


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    workdir = tmp_path_factory.mktemp("board-bench")
    state = workdir / "local.json"
    log = (workdir / "up.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "conveyor.cli.main", "up", "--state", str(state)],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 300
    while not state.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the local cloud did not start:\n{(workdir / 'up.log').read_text()[-3000:]}")
        time.sleep(0.2)
    yield Target.load(state)
    process.terminate()
    process.wait(timeout=30)


def _seed_registry(cloud: Target, model: str, challenger: bool) -> None:
    registry = Registry(cloud.registry_table())
    for version in (1, 2):
        registry.register(
            ModelVersion(
                model=model,
                version=0,
                status="approved",
                artifact_key=f"{model}/versions/{version}/model.onnx",
                sha256="0" * 64,
                metrics={"candidate": {"roc_auc": 0.7, "value_per_1000": 850.0}, "primary": "roc_auc"},
                created_at=time.time() - 86400 * (3 - version),
            )
        )
    registry.promote(model, 1)
    if challenger:
        registry.set_challenger(model, 2, 0.1)


def _metric(name: str, model: str, version: str | None, at: datetime, values: list[float]) -> dict[str, Any]:
    dims = [{"Name": "model", "Value": model}] + ([{"Name": "version", "Value": version}] if version else [])
    return {"MetricName": name, "Dimensions": dims, "Timestamp": at, "Values": values}


def _seed_metrics(cloud: Target, model: str, now: float, rng: random.Random) -> None:
    cw = cloud.client("cloudwatch")
    batch: list[dict[str, Any]] = []
    for hour in range(HOURS):
        at = datetime.fromtimestamp(now - (HOURS - hour) * 3600 + 60, UTC)
        latency = [round(rng.lognormvariate(1.5, 0.4), 2) for _ in range(SAMPLES_PER_HOUR)]
        errors = [1.0 if rng.random() < 0.01 else 0.0 for _ in range(SAMPLES_PER_HOUR)]
        batch += [_metric("Latency", model, "1", at, latency), _metric("Errors", model, "1", at, errors)]
        batch += [
            _metric("LiveDriftedFeatures", model, None, at, [float(rng.randint(0, 3))]),
            _metric("LiveDomainClassifierAUC", model, None, at, [0.5 + rng.random() / 10]),
            _metric("LiveMetric", model, "1", at, [0.68 + rng.random() / 20]),
            _metric("LiveValuePer1000", model, "1", at, [800 + rng.random() * 100]),
        ]
        if len(batch) >= 600:
            cw.put_metric_data(Namespace="Conveyor", MetricData=batch)
            batch = []
    if batch:
        cw.put_metric_data(Namespace="Conveyor", MetricData=batch)
    for signal in SIGNALS:
        cw.put_metric_alarm(
            AlarmName=f"Conveyor-dev-{model}-{signal}",
            Namespace="Conveyor",
            MetricName="Latency",
            Dimensions=[{"Name": "model", "Value": model}],
            Statistic="Average",
            Period=300,
            EvaluationPeriods=1,
            Threshold=100.0,
            ComparisonOperator="GreaterThanThreshold",
        )


def test_board_with_20_models_and_a_week_of_hourly_points_renders_under_a_second(cloud: Target) -> None:
    rng = random.Random(13)
    now = time.time()
    started = time.perf_counter()
    for index in range(MODELS):
        model = f"bench-model-{index:02d}"
        _seed_registry(cloud, model, challenger=index % 4 == 0)
        _seed_metrics(cloud, model, now, rng)
    seeded = time.perf_counter() - started
    server = []
    size = 0
    for _ in range(5):
        begin = time.perf_counter()
        response = requests.get(cloud.board_url, timeout=60)
        server.append(time.perf_counter() - begin)
        assert response.status_code == 200
        size = len(response.content)
    loads = []
    with chromium() as page:
        for _ in range(5):
            page.goto(cloud.board_url)
            timing = page.evaluate(
                "(() => {const n = performance.getEntriesByType('navigation')[0];"
                " return {server: n.responseEnd - n.requestStart, load: n.loadEventEnd - n.startTime};})()"
            )
            loads.append(timing)
        assert page.errors() == []
        page.screenshot(ROOT / ".conveyor" / "test-artifacts" / "board-bench.png")
        shown = page.evaluate("document.querySelectorAll('table.overview tr[data-model]').length")
    assert shown == MODELS
    server_ms = statistics.median(server) * 1000
    total_ms = statistics.median(t["load"] for t in loads)
    in_browser_server_ms = statistics.median(t["server"] for t in loads)
    print(
        f"\nboard bench: {MODELS} models x {HOURS} hourly points (seeded in {seeded:.1f} s); page {size / 1e6:.2f} MB; "
        f"server render (GET) median {server_ms:.0f} ms; browser navigation -> load event median {total_ms:.0f} ms "
        f"(of which request -> response end {in_browser_server_ms:.0f} ms)"
    )
    assert total_ms < 1000, loads
