"""`conveyor approve` / `reject`: help with exit codes, and clear errors before any cloud call."""

import pytest
from typer.testing import CliRunner

from conveyor.cli.app import app
from conveyor.cli.common import ExitCode
from conveyor.cli.follow import Outcome

runner = CliRunner()


@pytest.mark.parametrize("command", ["approve", "reject"])
def test_approval_commands_teach_with_help_and_exit_codes(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "Exit codes" in result.output and "--json" in result.output and "waits for" in result.output


def test_approve_needs_a_version_number(tmp_path):
    result = runner.invoke(app, ["approve", "m", "three", "--state", str(tmp_path / "none.json")])
    assert result.exit_code == 2 and "valid integer" in " ".join(result.output.split())


def test_approve_without_a_running_cloud_says_how_to_start_one(tmp_path):
    result = runner.invoke(app, ["approve", "m", "3", "--state", str(tmp_path / "none.json")])
    assert result.exit_code == 1 and "conveyor up" in result.output


def test_top_level_help_lists_the_awaiting_approval_exit_code():
    assert "6 awaiting approval" in " ".join(runner.invoke(app, ["--help"]).output.split())


def test_exit_codes_of_a_deployment():
    waiting = Outcome("AWAITING_APPROVAL", "Await approval", {}, None, None, 1.0)
    assert waiting.exit_code == ExitCode.AWAITING_APPROVAL == 6
    rolled_back = Outcome("FAILED", "Rolled back", {}, "RolledBack", "m v2 rolled back", 1.0)
    assert rolled_back.exit_code == ExitCode.REJECTED
    assert Outcome("SUCCEEDED", "Rejected by reviewer", {}, None, None, 1.0).exit_code == ExitCode.REJECTED
    assert Outcome("FAILED", "Deployment interrupted", {}, "DeploymentInterrupted", "", 1.0).exit_code == 1
