"""Lambda entry point of the live monitor: the schedule's tick, or one model's run now (``conveyor monitor --now``)."""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from conveyor.monitoring.context import MonitorContext
from conveyor.monitoring.schedule import handle

logger = Logger(service="conveyor")


@logger.inject_lambda_context(log_event=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(event, MonitorContext.for_this_container(), time.time())
