""" "Read training result": the TrainingResult a training container (ECS task or SageMaker job) wrote to S3,
into the state at ``$.training``, so Evaluate sees the same result whichever compute trained.

No pandas, no pydantic: a zip function runs it.
"""

from __future__ import annotations

import json
from typing import Any

from conveyor.errors import TrainingError
from conveyor.ports import ObjectMissing
from conveyor.stages.context import PipelineContext, StageEvent
from conveyor.workflow import TrainingResult

__all__ = ["read_training_result"]


def read_training_result(event: StageEvent[Any], ctx: PipelineContext) -> TrainingResult:
    """The result at ``$.compute.result_key``; TrainingError if the container wrote none, or its error."""
    key = str(event.require("compute", "result_key"))
    compute = str(event.require("compute", "compute"))
    try:
        document = json.loads(ctx.store.get(ctx.settings.artifact_bucket, key))
    except ObjectMissing:
        raise TrainingError(
            f"the {compute} training run wrote no result (s3://{ctx.settings.artifact_bucket}/{key})",
            details={"compute": compute, "result_key": key},
        ) from None
    if "error" in document:
        failure = document["error"]
        raise TrainingError(
            f"training on {compute} failed: {failure.get('type')}: {failure.get('message')}",
            details={"compute": compute, "result_key": key},
        )
    result: TrainingResult = document
    return result
