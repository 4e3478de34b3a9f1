"""Stack names: the CDK app deploys one stack per stage, ``Conveyor-{stage}``.

The one naming rule the CDK app (``infra/stages.py`` holds each stage's settings), the local
cloud and the CLI share. The local cloud runs the default stage.
"""

from __future__ import annotations

STACK_PREFIX = "Conveyor"
DEFAULT_STAGE = "dev"


def stack_name(stage: str = DEFAULT_STAGE) -> str:
    """The CloudFormation stack name of a stage: ``Conveyor-dev``, ``Conveyor-prod``, ..."""
    return f"{STACK_PREFIX}-{stage}"
