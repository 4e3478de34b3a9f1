"""The local board in a real headless Chromium, on the e2e local cloud after a demo-like story: a model
serving (v1, approved by a reviewer) with a candidate (v2) waiting for approval, requests scored, an
alarm and the live monitor's metrics in CloudWatch.

What the page shows is compared with ``conveyor status --json`` and the alarms' states; the approve
button is clicked with the mouse and moves the candidate on; a screenshot is kept as an artifact.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests
import yaml

from conveyor.cli.target import Target
from conveyor.localcloud.template import STACK
from tests.browser import Page, chromium
from tests.conftest import DATASET, DEMO_ROW, DEMO_SPEC, ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local-cloud")]
MODEL = "board-visits"
ARTIFACT = ROOT / ".conveyor" / "test-artifacts" / "board.png"
SHOWN = """(() => ({
  traffic: [...document.querySelectorAll('table.overview tr[data-model]')].map(row => ({
    model: row.dataset.model,
    traffic: [...row.querySelectorAll('.traffic')].filter(b => b.dataset.role !== 'shadow')
      .map(b => [b.dataset.version, Number(b.dataset.weight)])})),
  alarms: [...document.querySelectorAll('table.overview .alarm, #board > div .alarm')]
    .map(a => [a.dataset.alarm, a.dataset.state]),
  pending: [...document.querySelectorAll('[data-pending]')].map(p => [p.dataset.pending, Number(p.dataset.version)]),
  versions: [...document.querySelectorAll('[data-card]')].map(c => ({model: c.dataset.card,
    versions: [...c.querySelectorAll(':scope > div [data-status]')].map(v => [Number(v.dataset.version), v.dataset.status])})),
  errors: document.documentElement.dataset.errors || '0',
}))()"""


def _cli(cloud_state: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "conveyor.cli.main", *args, "--state", str(cloud_state)],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def _json(cloud_state: Path, *args: str, timeout: float = 600) -> tuple[int, dict[str, Any]]:
    done = _cli(cloud_state, *args, "--json", timeout=timeout)
    try:
        return done.returncode, json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"`conveyor {' '.join(args)}` printed no JSON (exit {done.returncode}):\n{done.stderr[-3000:]}")


def _spec() -> bytes:
    spec = yaml.safe_load(DEMO_SPEC.read_text())
    spec["name"] = MODEL
    spec["gates"] = {"primary_metric": "roc_auc", "max_degradation": 1.0, "min_agreement": 0.0, "max_flip_rate": 1.0}
    spec["retrain"] = {"on_drift": True, "min_new_rows": 1, "schedule": None}
    spec["deployment"] = {"strategy": "all_at_once", "approval": "manual", "approval_timeout_seconds": 900}
    spec["value"] = {
        "true_positive": 30,
        "false_positive": -5,
        "false_negative": -40,
        "true_negative": 0,
        "unit": "EUR",
    }
    return yaml.safe_dump(spec).encode()


@pytest.fixture(scope="module")
def story(cloud: Target, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """v1 serving after a reviewer's approval, v2 waiting for one, requests scored, an alarm, live metrics."""
    work = tmp_path_factory.mktemp("board")
    state = work / "local.json"
    state.write_text(json.dumps(dataclasses.asdict(cloud)))
    cloud.s3.put_object(Bucket=cloud.output("ArtifactBucketName"), Key=f"{MODEL}/spec.yaml", Body=_spec())
    frame = pd.read_csv(DATASET)
    for version, years in ((1, [1984]), (2, [1985, 1986])):
        data = work / f"visits_{version}.csv"
        frame[frame["year"].isin(years)].to_csv(data, index=False)
        code, dropped = _json(state, "drop", str(data), "--model", MODEL)
        assert code == 6 and dropped["registration"]["version"] == version, dropped  # awaits approval
        if version == 1:
            code, approved = _json(state, "approve", MODEL, "1", "--wait", timeout=300)
            assert code == 0, approved
    for _ in range(20):
        answer = requests.post(f"{cloud.api_url}/models/{MODEL}/predict", json={"instances": [DEMO_ROW]}, timeout=30)
        assert answer.status_code == 200, answer.text
    cw = cloud.client("cloudwatch")
    # The live monitor's path (PutMetricData, dimensions {model} and {model, version}).
    now = time.time()
    for hours_ago in range(6):
        at = datetime.fromtimestamp(now - hours_ago * 3600, UTC)
        cw.put_metric_data(
            Namespace="Conveyor",
            MetricData=[
                {
                    "MetricName": "LiveDriftedFeatures",
                    "Dimensions": [{"Name": "model", "Value": MODEL}],
                    "Value": hours_ago % 2,
                    "Timestamp": at,
                },
                {
                    "MetricName": "LiveMetric",
                    "Dimensions": [{"Name": "model", "Value": MODEL}, {"Name": "version", "Value": "1"}],
                    "Value": 0.62 + 0.01 * hours_ago,
                    "Timestamp": at,
                },
                {
                    "MetricName": "LiveValuePer1000",
                    "Dimensions": [{"Name": "model", "Value": MODEL}, {"Name": "version", "Value": "1"}],
                    "Value": 900 + 10 * hours_ago,
                    "Timestamp": at,
                },
            ],
        )
    existing = cw.describe_alarms(AlarmNamePrefix=f"{STACK}-{MODEL}-")["MetricAlarms"]
    if not existing:  # the per-model alarms a promotion creates (issue 12); one here, in ALARM
        name = f"{STACK}-{MODEL}-latency"
        cw.put_metric_alarm(
            AlarmName=name,
            Namespace="Conveyor",
            MetricName="Latency",
            Dimensions=[{"Name": "model", "Value": MODEL}],
            ExtendedStatistic="p99",
            Period=60,
            EvaluationPeriods=1,
            Threshold=1.0,
            ComparisonOperator="GreaterThanThreshold",
        )
        cw.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="p99 latency above 1 ms (e2e)")
    yield {"state": state}


def _alarms(cloud: Target, state: Path) -> dict[str, str]:
    """Alarm states as `conveyor alarms --json` says (CloudWatch's DescribeAlarms where that command is absent)."""
    if "alarms" in _cli(state, "--help").stdout:
        code, document = _json(state, "alarms")
        assert code == 0, document
        return {a["name"]: a["state"] for a in document["alarms"]}
    found = cloud.client("cloudwatch").describe_alarms(AlarmNamePrefix=f"{STACK}-")["MetricAlarms"]
    return {a["AlarmName"]: a["StateValue"] for a in found}


@pytest.fixture(scope="module")
def page(story: dict[str, Any]) -> Iterator[Page]:
    with chromium() as browser:
        yield browser


def test_the_board_shows_what_status_and_alarms_say(cloud: Target, story: dict[str, Any], page: Page) -> None:
    page.goto(cloud.board_url)
    shown = page.evaluate(SHOWN)
    page.screenshot(ARTIFACT)
    assert page.errors() == [] and shown["errors"] == "0"
    code, status = _json(story["state"], "status")
    assert code == 0, status
    expected = {m["model"]: sorted((str(v), float(w)) for v, w in m["traffic"].items()) for m in status["models"]}
    assert {row["model"]: sorted((v, w) for v, w in row["traffic"]) for row in shown["traffic"]} == expected
    versions = {m["model"]: sorted((v["version"], v["status"]) for v in m["versions"]) for m in status["models"]}
    assert {c["model"]: sorted(tuple(v) for v in c["versions"]) for c in shown["versions"]} == versions
    alarms = {name: state for name, state in shown["alarms"]}
    per_model = {k: v for k, v in _alarms(cloud, story["state"]).items() if k.startswith(f"{STACK}-{MODEL}-")}
    assert per_model and {k: v for k, v in alarms.items() if k in per_model} == per_model
    assert [MODEL, 2] in shown["pending"]
    assert ARTIFACT.stat().st_size > 10_000


def test_the_approve_button_moves_the_waiting_candidate_on(cloud: Target, story: dict[str, Any], page: Page) -> None:
    page.goto(cloud.board_url)
    page.click(f'button.approve[data-model="{MODEL}"][data-version="2"]')
    assert page.wait_for("document.documentElement.dataset.lastAction", timeout=60) == "approved"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        code, status = _json(story["state"], "status", MODEL)
        (entry,) = status["models"]
        if code == 0 and entry["serving"] == 2:
            break
        time.sleep(1)
    assert entry["serving"] == 2, entry
    page.wait_for(f'!document.querySelector(\'[data-pending="{MODEL}"][data-version="2"]\')', timeout=60 + 30)
    assert page.errors() == []


def test_the_static_board_needs_no_network_and_has_no_buttons(
    cloud: Target, story: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "board.html"
    done = _cli(story["state"], "board", "--out", str(out))
    assert done.returncode == 0, done.stderr
    html = out.read_text()
    assert MODEL in html and "<svg" in html
    assert (
        "<script" not in html
        and "<button" not in html
        and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    )
    url = _cli(story["state"], "board", "--no-open")
    assert url.returncode == 0 and url.stdout.strip() == cloud.board_url
