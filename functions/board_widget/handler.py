"""Lambda entry point of the dashboard's custom widget (registry view, approve/reject buttons): parse the
event, call one domain function. CloudWatch renders the HTML it returns."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from conveyor.board.widget import render_widget

logger = Logger(service="conveyor")


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> str | dict[str, str]:
    return render_widget(event, endpoint=context.invoked_function_arn)
