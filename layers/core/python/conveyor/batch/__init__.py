"""Batch scoring: an object dropped under ``{model}/batch/`` is cut into chunks (``plan``), each
chunk scored by a worker (``score``) into ``{model}/scored/...``, the rows captured like online
traffic. The state machine "batch" (``infra/batch_definition.py``) fans the chunks out with a
Distributed Map; ``conveyor score`` runs the same code on a local file.
"""

from conveyor.batch.plan import BatchJob, ChunkItem, plan_chunks, start_batch
from conveyor.batch.score import ScoredChunk, Scorer, score_frame, score_item

__all__ = ["BatchJob", "ChunkItem", "ScoredChunk", "Scorer", "plan_chunks", "score_frame", "score_item", "start_batch"]
