"""Lambda entry point of the pipeline's train stage: parse the event, call one domain function."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from conveyor.stages.context import PipelineContext, StageEvent
from conveyor.stages.train import train_candidate

logger = Logger(service="conveyor")
_context: PipelineContext | None = None


def _pipeline_context() -> PipelineContext:
    global _context  # noqa: PLW0603 - built once per container, on first use, not at import
    if _context is None:
        _context = PipelineContext.from_env()
    return _context


@logger.inject_lambda_context(log_event=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = train_candidate(StageEvent.parse(event), _pipeline_context())
    logger.info("train done", extra={"model": result.get("model"), "execution": event.get("execution_id")})
    return result
