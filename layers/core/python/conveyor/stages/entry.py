"""The Lambda entry shape shared by every pipeline stage: parse, run the stage, log, return."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from conveyor.stages.context import PipelineContext, StageEvent

# A stage returns its result: one of conveyor.workflow's *Result TypedDicts.
Stage = Callable[[StageEvent[Any], PipelineContext], Mapping[str, Any]]
Handler = Callable[[dict[str, Any], LambdaContext], Mapping[str, Any]]


def stage_entry(stage: Stage, logger: Logger) -> Handler:
    """A Lambda handler that runs ``stage`` on the execution state it is given."""

    @logger.inject_lambda_context(log_event=False)
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Mapping[str, Any]:
        result = stage(StageEvent.parse(event), PipelineContext.for_this_container())
        logger.info(
            "stage done",
            extra={"stage": stage.__name__, "model": result.get("model"), "execution": event.get("execution_id")},
        )
        return result

    return lambda_handler
