"""The state machine "batch": plan a batch object's chunks, score each chunk (an item of the
Distributed Map). The domain work is ``conveyor.batch``; ``conveyor score`` runs it offline."""

from __future__ import annotations

import os
import threading
from typing import Any

from conveyor import layout
from conveyor.batch import Scorer, plan_chunks, score_item, start_batch
from conveyor.batch.plan import CHUNK_BYTES, ChunkItem, write_plan
from conveyor.batch_workflow import BatchPlan, BatchPlanInput, BatchScoreInput, ChunkResult
from conveyor.registry import load_verified
from conveyor.spec import load_spec
from conveyor.stages.context import PipelineContext, StageEvent

_scorers: dict[tuple[str, int], Scorer] = {}
_lock = threading.Lock()


def plan_batch(event: StageEvent[BatchPlanInput], ctx: PipelineContext) -> BatchPlan:
    """The job of the dropped object (which version scores it) and its chunks, as a manifest in S3."""
    bucket = str(event.require("detail", "bucket", "name"))
    obj = event.require("detail", "object")
    key = str(obj["key"])
    model = layout.model_of_batch(key) or ""
    champion = ctx.registry.champion(model) if model else None
    job = start_batch(
        ctx.store,
        bucket=bucket,
        key=key,
        version_id=obj.get("version-id"),
        champion=champion.version if champion is not None else None,
        artifact_bucket=ctx.settings.artifact_bucket,
        capture_bucket=ctx.settings.capture_bucket,
    )
    items = plan_chunks(ctx.store, job, chunk_bytes=chunk_bytes())
    return {
        "model": job.model,
        "batch_id": job.batch_id,
        "model_version": job.model_version,
        "source_key": key,
        "items_bucket": ctx.settings.artifact_bucket,
        "items_key": write_plan(ctx.store, job, items),
        "results_prefix": layout.BATCH_RESULTS_PREFIX,
        "chunks": len(items),
        "rows": sum(item["rows"] for item in items),
    }


def chunk_bytes() -> int:
    """The chunk size: ``BATCH_CHUNK_MB`` (the benchmark sets it to fan a small file out), else 64 MB."""
    return int(float(os.environ.get("BATCH_CHUNK_MB", CHUNK_BYTES / 2**20)) * 2**20)


def scorer_for(ctx: PipelineContext, model: str, version: int) -> Scorer:
    """The version's scorer, loaded once per container (artifact checked against its sha256)."""
    with _lock:
        found = _scorers.get((model, version))
        if found is None:
            record = ctx.registry.get(model, version)
            bucket = ctx.settings.artifact_bucket
            onnx = load_verified(ctx.store, bucket, record.artifact_key, record.sha256)
            spec = load_spec(ctx.store.get(bucket, layout.version_key(model, version, layout.SPEC_FILE)))
            found = _scorers[(model, version)] = Scorer.of(onnx, spec, version)
        return found


def score_chunk(event: StageEvent[BatchScoreInput], ctx: PipelineContext) -> ChunkResult:
    """Score one chunk (an item of the Map): its part under ``{model}/scored/``, its capture records."""
    item: ChunkItem = event.require("item")
    job: dict[str, Any] = item["job"]
    scorer = scorer_for(ctx, str(job["model"]), int(job["model_version"]))
    result = score_item(ctx.store, item, scorer)
    return {"model": str(job["model"]), **result}  # type: ignore[typeddict-item]
