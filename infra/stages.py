"""Per-stage settings: the one reviewed file that says how dev, staging and prod differ.

`python -m infra.app -c stage=dev|staging|prod` (default dev) deploys the stack `Conveyor-{stage}`
(`conveyor.stacks.stack_name`). Two stages can share an account and region: nothing below is
account-wide (the API Gateway logging role is the `ConveyorCiAccess` stack's, see infra/ci_access.py).

Applied at synth today (infra/stage_policy.py): the stack name, termination protection, removal
policies, log retention and the alert e-mail subscriptions. Read by the hardening work of issue 14
(section 4), which applies them where the constructs change: predict's memory and reserved
concurrency, and the capture retention (a lifecycle rule on the capture bucket).

Context overrides, for one deploy without editing this file:
  -c alert_emails=a@example.com,b@example.com   replaces the stage's alert e-mails ("" for none)
  -c stack_name=Conveyor                        keeps a stack deployed before stages under its old
                                                name (README, "Migrating an existing Conveyor stack")
  -c predict_start=snapstart|provisioned|on_demand [-c predict_provisioned_concurrency=N]
                                                how predict's containers start (predict_start below)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import aws_cdk as cdk

from conveyor.stacks import DEFAULT_STAGE, stack_name

PREDICT_STARTS = ("on_demand", "snapstart", "provisioned")
# The retention periods CloudWatch Logs accepts (AWS::Logs::LogGroup RetentionInDays).
LOG_RETENTION_DAYS = frozenset(
    (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)
)
_EMAIL = re.compile(r"^[^@\s,]+@[^@\s,]+\.[^@\s,]+$")


class StageError(ValueError):
    """A stage or a stage override the app cannot build: reported at synth, before anything deploys."""


@dataclass(frozen=True)
class StageSettings:
    name: str
    # SNS e-mail subscriptions to the alerts topic (each address confirms once, from AWS's e-mail).
    alert_emails: tuple[str, ...]
    # Predict: memory (MB) and reserved concurrency. None reserves nothing: a new account's
    # concurrency quota can be as low as 10, and Lambda keeps 100 unreserved, so a reservation
    # would fail the deploy there. Prod reserves, so a runaway function elsewhere cannot starve it.
    predict_memory_mb: int
    predict_reserved_concurrency: int | None
    # Every log group of the stack (functions, state machine, API access logs, Firehose errors).
    log_retention_days: int
    log_removal_policy: cdk.RemovalPolicy
    # Buckets, the registry table and the alerts key. RETAIN in every stage: a registered model
    # points at its data and artifacts, and deleting a stack must never delete them.
    data_removal_policy: cdk.RemovalPolicy
    # Capture records (request features and predictions) expire after this many days.
    capture_retention_days: int
    # Data versions never expire: lineage (registry -> data version id) points at them, so a
    # model's evidence must stay reproducible. An erasure request deletes an object explicitly
    # (`conveyor impact --erase`); no lifecycle rule does.
    data_versions_expire: bool
    # CloudFormation refuses to delete a termination-protected stack.
    termination_protection: bool
    # The deploy workflow smoke-tests this stage (`conveyor smoke`): with `-c github_repo=owner/name`,
    # the stage's operator role trusts that repository's jobs in the GitHub environment of this stage's
    # name (OIDC), which is how the smoke step gets credentials (README, "Smoke test").
    smoke_from_ci: bool = False
    # Overrides the stack name (the migration path for a stack deployed as `Conveyor`).
    stack_name_override: str | None = None
    # How predict's new containers start (Serving.configure_start): "on_demand" (import and load at
    # the first request), "snapstart" (restored from a snapshot of the initialized function; Python
    # 3.12+) or "provisioned" (predict_provisioned_concurrency containers kept initialized, billed
    # while idle). The API always calls predict's "live" alias, which both need.
    predict_start: str = "on_demand"
    predict_provisioned_concurrency: int = 0

    def __post_init__(self) -> None:
        if self.predict_start not in PREDICT_STARTS:
            raise StageError(f"{self.name}: predict_start must be one of {', '.join(PREDICT_STARTS)}")
        if (self.predict_start == "provisioned") != (self.predict_provisioned_concurrency > 0):
            raise StageError(f"{self.name}: predict_provisioned_concurrency > 0 goes with predict_start='provisioned'")
        if self.log_retention_days not in LOG_RETENTION_DAYS:
            raise StageError(f"{self.name}: log_retention_days must be one of {sorted(LOG_RETENTION_DAYS)}")
        if self.data_versions_expire:
            raise StageError(f"{self.name}: data versions never expire (lineage points at them)")

    @property
    def stack_name(self) -> str:
        return self.stack_name_override or stack_name(self.name)


STAGES: dict[str, StageSettings] = {
    "dev": StageSettings(
        name="dev",
        alert_emails=(),
        predict_memory_mb=1024,
        predict_reserved_concurrency=None,
        log_retention_days=30,
        log_removal_policy=cdk.RemovalPolicy.DESTROY,
        data_removal_policy=cdk.RemovalPolicy.RETAIN,
        capture_retention_days=90,
        data_versions_expire=False,
        termination_protection=False,
        smoke_from_ci=True,
    ),
    "staging": StageSettings(
        name="staging",
        alert_emails=(),
        predict_memory_mb=1024,
        predict_reserved_concurrency=None,
        log_retention_days=90,
        log_removal_policy=cdk.RemovalPolicy.DESTROY,
        data_removal_policy=cdk.RemovalPolicy.RETAIN,
        capture_retention_days=90,
        data_versions_expire=False,
        termination_protection=False,
    ),
    "prod": StageSettings(
        name="prod",
        alert_emails=(),
        predict_memory_mb=1024,
        predict_reserved_concurrency=20,
        log_retention_days=365,
        log_removal_policy=cdk.RemovalPolicy.RETAIN,  # the audit trail outlives the stack
        data_removal_policy=cdk.RemovalPolicy.RETAIN,
        capture_retention_days=90,
        data_versions_expire=False,
        termination_protection=True,
    ),
}


def _emails(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list | tuple) else str(value).split(",")
    emails = tuple(str(item).strip() for item in items if str(item).strip())
    bad = [email for email in emails if not _EMAIL.match(email)]
    if bad:
        raise StageError(f"alert_emails: not e-mail addresses: {', '.join(bad)}")
    return emails


def settings_for(context: Mapping[str, Any]) -> StageSettings:
    """The settings of the stage named by the app's context (`-c stage=...`), with its overrides."""
    stage = str(context.get("stage") or DEFAULT_STAGE)
    if stage not in STAGES:
        raise StageError(f"unknown stage {stage!r}: use -c stage={'|'.join(STAGES)} (settings in infra/stages.py)")
    settings = STAGES[stage]
    if context.get("alert_emails") is not None:
        settings = replace(settings, alert_emails=_emails(context["alert_emails"]))
    if context.get("stack_name"):
        settings = replace(settings, stack_name_override=str(context["stack_name"]))
    if context.get("predict_start"):
        provisioned = int(context.get("predict_provisioned_concurrency") or 0)
        settings = replace(
            settings, predict_start=str(context["predict_start"]), predict_provisioned_concurrency=provisioned
        )
    return settings
