"""Entry point: `python -m infra.app` (what cdk.json runs) synthesizes into cdk.out or $CDK_OUTDIR."""

from __future__ import annotations

import os
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra import constants as c
from infra.stack import ConveyorStack


def build_app(context: dict[str, Any] | None = None) -> cdk.App:
    """The app with the Conveyor stack, checked by cdk-nag's AwsSolutions rules at synth."""
    # Feature flags live here, not only in cdk.json, so tests and `cdk synth` build the same template.
    app = cdk.App(context={**c.FEATURE_FLAGS, **(context or {})})
    account = os.environ.get("CDK_DEFAULT_ACCOUNT")
    region = os.environ.get("CDK_DEFAULT_REGION")
    env = cdk.Environment(account=account, region=region) if account or region else None
    ConveyorStack(app, c.STACK_ID, env=env, description="Conveyor: serverless MLOps assembly line")
    cdk.Aspects.of(app).add(AwsSolutionsChecks(verbose=True))
    return app


if __name__ == "__main__":
    build_app().synth()
