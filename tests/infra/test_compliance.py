"""cdk-nag (AwsSolutions) leaves nothing unsuppressed; cfn-lint accepts the template; outputs exist."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from aws_cdk.assertions import Annotations, Match

from tests.infra.conftest import Synth

OUTPUTS = (
    "DataBucketName",
    "ArtifactBucketName",
    "CaptureBucketName",
    "RegistryTableName",
    "AlertsTopicArn",
    "StateMachineArn",
    "IngestQueueUrl",
    "ApiUrl",
)

# cfn-lint findings accepted, with the reason.
CFN_LINT_IGNORED: dict[str, str] = {
    "W3005": "aws-cdk adds DependsOn on a function's role and its default policy (so the policy exists "
    "before the function can run); the role's DependsOn is redundant with Fn::GetAtt, never wrong.",
    "W7001": "aws-cdk's Firehose DeliveryStream always declares a per-region mapping of Firehose's CIDR "
    "blocks (used by Redshift/Splunk/HTTP destinations); the capture stream's destination is S3, so "
    "the mapping is unused. The stack declares no mapping of its own.",
}


def _messages(findings: Sequence[object]) -> list[str]:
    return [json.dumps(getattr(finding, "_values", str(finding)), default=str)[:300] for finding in findings]


def test_no_unsuppressed_nag_errors(synth: Synth) -> None:
    errors = Annotations.from_stack(synth.stack).find_error("*", Match.string_like_regexp("AwsSolutions-.*"))
    assert errors == [], _messages(errors)


def test_no_unsuppressed_nag_warnings(synth: Synth) -> None:
    warnings = Annotations.from_stack(synth.stack).find_warning("*", Match.string_like_regexp("AwsSolutions-.*"))
    assert warnings == [], _messages(warnings)


def test_outputs(synth: Synth) -> None:
    assert set(OUTPUTS) <= set(synth.json["Outputs"])
    assert synth.json["Outputs"]["StateMachineArn"]["Value"] == {"Ref": synth.logical_id(synth.stack.state_machine)}
    assert synth.json["Outputs"]["IngestQueueUrl"]["Value"] == {"Ref": synth.logical_id(synth.stack.ingest_queue)}


def test_cfn_lint(synth: Synth, tmp_path: Path) -> None:
    cfn_lint = Path(sys.executable).parent / "cfn-lint"  # a dev dependency, pinned in pyproject.toml
    assert cfn_lint.exists(), "cfn-lint is missing from .venv: `make` installs it with the dev extra"
    template = tmp_path / "Conveyor.template.json"
    template.write_text(json.dumps(synth.json))
    command = [str(cfn_lint), "--format", "parseable"]
    if CFN_LINT_IGNORED:
        command += ["--ignore-checks", *CFN_LINT_IGNORED]
    result = subprocess.run([*command, "--", str(template)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_cdk_json_runs_the_app_offline_and_agrees_with_the_tests() -> None:
    from infra.constants import FEATURE_FLAGS, REPO_ROOT

    config = json.loads((REPO_ROOT / "cdk.json").read_text())
    assert config["app"] == ".venv/bin/python -m infra.app"
    assert config["notices"] is False
    assert config["context"]["cli-telemetry"] is False
    # Feature flags belong in infra.constants.FEATURE_FLAGS (build_app applies them), so the
    # tests, which do not read cdk.json, synthesize what `cdk synth` does.
    flags = {key: value for key, value in config["context"].items() if key.startswith("@aws-cdk/")}
    assert all(FEATURE_FLAGS.get(key) == value for key, value in flags.items())
