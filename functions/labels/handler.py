"""Lambda entry point of the label ingest: one label file (from the dispatcher) joined with the capture."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from conveyor.monitoring.context import MonitorContext
from conveyor.monitoring.labels import ingest_label_event

logger = Logger(service="conveyor")


@logger.inject_lambda_context(log_event=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    outcome = ingest_label_event(event, MonitorContext.for_this_container())
    logger.info("labels joined", extra={k: outcome[k] for k in ("model", "verdict", "labels", "matched")})
    return outcome
