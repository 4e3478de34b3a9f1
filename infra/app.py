"""Entry point: `python -m infra.app` (what cdk.json runs) synthesizes into cdk.out or $CDK_OUTDIR.

Context: `-c stage=dev|staging|prod` (default dev) picks the stack `Conveyor-{stage}` and its settings
(infra/stages.py); `-c ci_access=true -c github_repo=owner/name` adds the `ConveyorCiAccess` stack
(infra/ci_access.py), deployed once per account by hand.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra import constants as c
from infra.ci_access import CiAccessError, add_ci_access
from infra.stack import ConveyorStack
from infra.stage_policy import apply_stage
from infra.stages import StageError, settings_for

_STAGE_CONTEXT = ("stage", "alert_emails", "stack_name", "predict_start", "predict_provisioned_concurrency")


def build_app(context: dict[str, Any] | None = None) -> cdk.App:
    """The app with the stage's Conveyor stack, checked by cdk-nag's AwsSolutions rules at synth."""
    # Feature flags live here, not only in cdk.json, so tests and `cdk synth` build the same template.
    app = cdk.App(context={**c.FEATURE_FLAGS, **(context or {})})
    settings = settings_for({key: app.node.try_get_context(key) for key in _STAGE_CONTEXT})
    account = os.environ.get("CDK_DEFAULT_ACCOUNT")
    region = os.environ.get("CDK_DEFAULT_REGION")
    env = cdk.Environment(account=account, region=region) if account or region else None
    stack = ConveyorStack(
        app,
        settings.stack_name,
        env=env,
        description=f"Conveyor ({settings.name}): serverless MLOps assembly line",
        termination_protection=settings.termination_protection,
    )
    apply_stage(
        stack,
        settings,
        stack.alerts_topic,
        capture_bucket=stack.capture_bucket,
        predict_function=stack.predict_function,
        operator_role=stack.operator_role,
        github_repo=app.node.try_get_context("github_repo"),
    )
    if str(app.node.try_get_context("ci_access")).lower() == "true":
        add_ci_access(app, env=env)
    cdk.Aspects.of(app).add(AwsSolutionsChecks(verbose=True))
    return app


if __name__ == "__main__":
    try:
        build_app().synth()
    except (StageError, CiAccessError) as error:
        sys.exit(f"infra.app: {error}")
