"""`conveyor alarms`: the per-model alarms by model and signal, as a table or JSON."""

from __future__ import annotations

from typer.testing import CliRunner

from conveyor.cli.main import app
from conveyor.cli.monitoring_commands import alarms_document
from conveyor.ports import AlarmStatus

runner = CliRunner()


def test_the_document_lists_per_model_alarms_only() -> None:
    statuses = [
        AlarmStatus("Conveyor-m-latency", "ALARM", "Threshold Crossed: 1 datapoint", 1_700_000_000.0),
        AlarmStatus("Conveyor-m-errors", "OK", "fine", 1_700_000_001.0),
        AlarmStatus("Conveyor-other-model-drift", "INSUFFICIENT_DATA", "no data", 0.0),
        AlarmStatus("Conveyor-System-PredictErrors", "OK", "fine", 1.0),
    ]
    document = alarms_document(statuses, "Conveyor")
    assert [(a["model"], a["signal"], a["state"]) for a in document["alarms"]] == [
        ("m", "errors", "OK"),
        ("m", "latency", "ALARM"),
        ("other-model", "drift", "INSUFFICIENT_DATA"),
    ]
    (latency,) = [a for a in document["alarms"] if a["signal"] == "latency"]
    assert latency == {
        "name": "Conveyor-m-latency",
        "model": "m",
        "signal": "latency",
        "state": "ALARM",
        "reason": "Threshold Crossed: 1 datapoint",
        "updated": "2023-11-14T22:13:20+00:00",
    }
    assert [a["name"] for a in alarms_document(statuses, "Conveyor", "other-model")["alarms"]] == [
        "Conveyor-other-model-drift"
    ]


def test_help_and_no_cloud(tmp_path) -> None:
    result = runner.invoke(app, ["alarms", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "--json" in result.output and "Exit codes" in result.output
    result = runner.invoke(app, ["alarms", "--state", str(tmp_path / "none.json")])
    assert result.exit_code == 1 and "conveyor up" in result.output
