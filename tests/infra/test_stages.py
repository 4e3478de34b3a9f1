"""Stages: every stage synthesizes `Conveyor-{stage}` clean under cdk-nag, with its own settings applied
(infra/stages.py): termination protection, removal policies, log retention, alert e-mails."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Annotations, Match

from conveyor.stacks import stack_name
from infra.constants import REPO_ROOT
from infra.stages import STAGES, StageError, StageSettings, settings_for
from tests.infra.conftest import STAGE_CONTEXTS, Synth

DATA_TYPES = ("AWS::S3::Bucket", "AWS::DynamoDB::Table", "AWS::KMS::Key")
CFN_POLICY = {"RETAIN": "Retain", "DESTROY": "Delete"}


def _settings(stage: str) -> StageSettings:
    return settings_for(STAGE_CONTEXTS[stage])


def _policy(settings_policy: Any) -> str:
    return CFN_POLICY[str(settings_policy.name)]


def test_each_stage_deploys_its_own_stack(stage_synth: tuple[str, Synth]) -> None:
    stage, synth = stage_synth
    assert synth.stack.stack_name == f"Conveyor-{stage}" == stack_name(stage)
    assert synth.stack.termination_protection is _settings(stage).termination_protection


def test_cdk_nag_finds_nothing_unsuppressed_in_any_stage(stage_synth: tuple[str, Synth]) -> None:
    _, synth = stage_synth
    annotations = Annotations.from_stack(synth.stack)
    findings = [
        *annotations.find_error("*", Match.string_like_regexp("AwsSolutions-.*")),
        *annotations.find_warning("*", Match.string_like_regexp("AwsSolutions-.*")),
    ]
    assert findings == [], [str(finding.entry.data)[:300] for finding in findings]


def test_removal_policies_follow_the_stage(stage_synth: tuple[str, Synth]) -> None:
    stage, synth = stage_synth
    settings = _settings(stage)
    data = [resource for kind in DATA_TYPES for resource in synth.resources(kind).values()]
    assert len(data) >= 6  # four buckets, the registry table, the alerts key
    assert {resource.get("DeletionPolicy") for resource in data} == {_policy(settings.data_removal_policy)}
    assert {resource.get("UpdateReplacePolicy") for resource in data} == {_policy(settings.data_removal_policy)}
    log_groups = synth.resources("AWS::Logs::LogGroup").values()
    assert {resource.get("DeletionPolicy") for resource in log_groups} == {_policy(settings.log_removal_policy)}


def test_every_log_group_keeps_the_stage_retention(stage_synth: tuple[str, Synth]) -> None:
    stage, synth = stage_synth
    retention = {
        resource["Properties"].get("RetentionInDays") for resource in synth.resources("AWS::Logs::LogGroup").values()
    }
    assert retention == {_settings(stage).log_retention_days}


def test_alert_emails_subscribe_to_the_alerts_topic(stage_synth: tuple[str, Synth]) -> None:
    stage, synth = stage_synth
    topic = synth.logical_id(synth.stack.alerts_topic)
    subscriptions = sorted(
        (
            resource["Properties"]["Protocol"],
            resource["Properties"]["Endpoint"],
            json.dumps(resource["Properties"]["TopicArn"]),
        )
        for resource in synth.resources("AWS::SNS::Subscription").values()
    )
    expected = sorted(("email", email, json.dumps({"Ref": topic})) for email in _settings(stage).alert_emails)
    assert subscriptions == expected


def test_the_stages_differ_where_the_settings_say() -> None:
    dev, prod = STAGES["dev"], STAGES["prod"]
    assert prod.termination_protection and not dev.termination_protection
    assert _policy(prod.log_removal_policy) == "Retain" and _policy(dev.log_removal_policy) == "Delete"
    assert prod.log_retention_days > dev.log_retention_days
    assert all(_policy(settings.data_removal_policy) == "Retain" for settings in STAGES.values())
    assert all(settings.capture_retention_days == 90 for settings in STAGES.values())
    assert not any(settings.data_versions_expire for settings in STAGES.values())
    assert prod.predict_reserved_concurrency and dev.predict_reserved_concurrency is None


def test_no_stage_claims_the_account_wide_api_gateway_settings(stage_synth: tuple[str, Synth]) -> None:
    # Two stages in one account and region would overwrite each other's AWS::ApiGateway::Account.
    _, synth = stage_synth
    assert synth.resources("AWS::ApiGateway::Account") == {}


def test_stage_context_overrides() -> None:
    assert settings_for({}).name == "dev"
    assert settings_for({"stage": "prod", "stack_name": "Conveyor"}).stack_name == "Conveyor"
    assert settings_for({"alert_emails": " a@example.com , b@example.org "}).alert_emails == (
        "a@example.com",
        "b@example.org",
    )
    assert settings_for({"stage": "prod", "alert_emails": ""}).alert_emails == ()
    with pytest.raises(StageError, match="not e-mail addresses: ops"):
        settings_for({"alert_emails": "ops"})
    with pytest.raises(StageError, match="unknown stage 'qa'"):
        settings_for({"stage": "qa"})


def test_an_unknown_stage_fails_the_synth_with_a_clear_message(tmp_path: Path) -> None:
    env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps({"stage": "qa"}), "CDK_OUTDIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "infra.app"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 1
    assert "infra.app: unknown stage 'qa': use -c stage=dev|staging|prod" in done.stderr
    assert "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []  # nothing synthesized
