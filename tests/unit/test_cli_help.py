import pytest
from typer.testing import CliRunner

from conveyor.cli.app import app
from tests.conftest import DEMO_SPEC

runner = CliRunner()


@pytest.mark.parametrize(
    "command",
    [
        "up",
        "demo",
        "drop",
        "status",
        "predict",
        "impact",
        "validate",
        "drift",
        "init",
        "kill",
        "revive",
        "rollback",
        "train",
        "evaluate",
        "models",
        "lineage",
    ],
)
def test_every_command_teaches_with_help(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output and len(result.output) > 200


def test_top_level_help_documents_exit_codes():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "Exit codes" in result.output


def test_commands_without_a_running_cloud_say_how_to_start_one(tmp_path):
    result = runner.invoke(app, ["status", "--state", str(tmp_path / "none.json")])
    assert result.exit_code == 1
    assert "conveyor up" in result.output


def test_predict_refuses_a_body_that_is_not_json(tmp_path):
    result = runner.invoke(app, ["predict", "m", "--json", "{nope", "--state", str(tmp_path / "none.json")])
    assert result.exit_code == 2
    assert "not valid JSON" in result.output


def test_drop_refuses_a_spec_of_another_model(tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("a\n1\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text(DEMO_SPEC.read_text())
    state = tmp_path / "local.json"
    state.write_text('{"endpoint": "http://127.0.0.1:9", "api_url": "", "region": "us-east-1", "outputs": {}}')
    result = runner.invoke(app, ["drop", str(data), "--model", "other", "--spec", str(spec), "--state", str(state)])
    assert result.exit_code == 2
    assert "doctor-visits" in result.output


@pytest.mark.parametrize(
    ("command", "phrases"),
    [
        ("train", ["--spec", "--out", "--json", "model.onnx", "holdout.parquet", "training.json", "Exit codes"]),
        ("evaluate", ["--champion", "--data", "--spec", "--report", "--json", "min_improvement", "Exit codes"]),
        ("models", ["--json", "--state", "serves", "Exit codes"]),
        ("lineage", ["lineage of one version", "--json", "sha256", "parent", "Exit codes"]),
    ],
)
def test_model_commands_document_their_options_outputs_and_exit_codes(command, phrases):
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for phrase in phrases:
        assert phrase in text, phrase


def test_models_without_a_running_cloud_say_how_to_start_one(tmp_path):
    for args in (["models"], ["lineage", "doctor-visits", "1"]):
        result = runner.invoke(app, [*args, "--state", str(tmp_path / "none.json")])
        assert result.exit_code == 1
        assert "conveyor up" in result.output
