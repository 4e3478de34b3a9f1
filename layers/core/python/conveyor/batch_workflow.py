"""The contract of the state machine "batch" (batch scoring; the definition:
``infra/batch_definition.py``): its state names and what its states pass, as TypedDicts. Beside
``conveyor.workflow`` (the pipeline's), standard library only: the CDK app imports it.
"""

from __future__ import annotations

from typing import Any, TypedDict

from conveyor.workflow import ObjectCreatedDetail


class BatchState:
    """State names of the state machine "batch"."""

    PLAN = "Plan chunks"
    SCORE = "Score chunks"  # a Distributed Map over the items manifest
    DONE = "Scored"


class BatchPlanInput(TypedDict):
    """What "Plan chunks" reads: the batch object's "Object Created" detail (as the pipeline's drop)."""

    detail: ObjectCreatedDetail


class BatchPlan(TypedDict):
    """``$.plan``: the job and where its chunks are listed. Only pointers: the items are in S3."""

    model: str
    batch_id: str
    model_version: int
    source_key: str
    items_bucket: str
    items_key: str  # a JSON array of conveyor.batch.ChunkItem, read by the Map's ItemReader
    results_prefix: str  # the Map's ResultWriter prefix (artifact bucket): a folder per map run below it
    chunks: int
    rows: int


class BatchScoreInput(TypedDict):
    """What a Map iteration's scorer reads: one chunk item."""

    item: dict[str, Any]


class ChunkResult(TypedDict):
    """One scored chunk: its part's key and counts (the Map writes these to S3, not to the state)."""

    model: str
    part: int
    key: str
    rows: int
    errors: int
    captured: int
    seconds: float
