"""Planning a batch job: which version scores it, and its chunks (Parquet row groups, or CSV byte
ranges cut at line ends, each about ``CHUNK_BYTES``), written as an items manifest to S3 for the
Distributed Map's ItemReader. Only the manifest's key travels in the state.

A CSV is cut at line ends: a batch CSV must not hold line breaks inside quoted values.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import asdict, dataclass
from pathlib import PurePosixPath
from typing import Any, Literal, TypedDict

from conveyor import layout
from conveyor.errors import ConveyorError
from conveyor.ports import ObjectStore
from conveyor.tabular import CSV_SUFFIXES, PARQUET_SUFFIXES

CHUNK_BYTES = 64 * 1024 * 1024
_SCAN = 8 * 1024 * 1024
VERSION_TAG = "conveyor-version"  # an object tag naming the version that scores it


class BatchError(ConveyorError):
    """A batch job that cannot start: not a CSV or Parquet file, no version to score it."""


class ChunkItem(TypedDict):
    """One chunk of a batch job: an item of the Map (what a worker is given)."""

    job: dict[str, Any]  # BatchJob.to_dict
    part: int
    format: Literal["csv", "parquet"]
    start: int  # CSV: first byte of the chunk (a line start); Parquet: 0
    end: int  # CSV: one past its last byte (a line end); Parquet: 0
    row_group: int  # Parquet: the row group; CSV: -1
    first_row: int  # 1-based row number of the chunk's first row in the file
    rows: int
    header: str  # CSV: the header line; Parquet: ""


@dataclass(frozen=True)
class BatchJob:
    """A batch object and what scores it."""

    model: str
    bucket: str
    key: str
    version_id: str | None
    model_version: int
    batch_id: str
    artifact_bucket: str
    capture_bucket: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BatchJob:
        return cls(**{name: data.get(name) for name in cls.__dataclass_fields__})  # type: ignore[arg-type]

    @property
    def format(self) -> Literal["csv", "parquet"]:
        suffix = PurePosixPath(self.key).suffix.lower()
        if suffix in PARQUET_SUFFIXES:
            return "parquet"
        if suffix in CSV_SUFFIXES:
            return "csv"
        raise BatchError(f"{self.key}: batch scoring reads .csv or .parquet, not {suffix or 'no suffix'}")


def batch_id(bucket: str, key: str, version_id: str | None) -> str:
    """A stable id of one batch object version: the prefix of every request_id it gets."""
    return hashlib.sha256(f"{bucket}\n{key}\n{version_id or ''}".encode()).hexdigest()[:16]


def start_batch(
    store: ObjectStore,
    *,
    bucket: str,
    key: str,
    version_id: str | None,
    champion: int | None,
    artifact_bucket: str,
    capture_bucket: str,
) -> BatchJob:
    """The job of a batch object: the version named in its key (``batch/v3/...``), else by its
    ``conveyor-version`` tag, else the serving champion."""
    model = layout.model_of_batch(key)
    if model is None:
        raise BatchError(f"{key} is not under {{model}}/{layout.BATCH}/")
    version = layout.batch_version(key)
    if version is None:
        tagged = store.tags(bucket, key, version_id).get(VERSION_TAG, "").removeprefix("v")
        version = int(tagged) if tagged.isdigit() else champion
    if version is None:
        raise BatchError(f"model {model} has no serving version to score {key}; name one: {model}/batch/v1/...")
    job = BatchJob(
        model, bucket, key, version_id, version, batch_id(bucket, key, version_id), artifact_bucket, capture_bucket
    )
    _ = job.format  # refuse an unreadable file type before planning
    return job


def plan_chunks(store: ObjectStore, job: BatchJob, *, chunk_bytes: int = CHUNK_BYTES) -> list[ChunkItem]:
    """The chunks of the job's object, in file order."""
    if job.format == "parquet":
        return _parquet_chunks(store, job)
    return _csv_chunks(store, job, chunk_bytes)


def write_plan(store: ObjectStore, job: BatchJob, items: list[ChunkItem]) -> str:
    """The items manifest (a JSON array) for the Map's ItemReader; its key."""
    key = layout.batch_staging_key(job.model, job.batch_id, layout.BATCH_ITEMS)
    store.put(job.artifact_bucket, key, json.dumps(items).encode(), "application/json")
    return key


def _csv_chunks(store: ObjectStore, job: BatchJob, chunk_bytes: int) -> list[ChunkItem]:
    """Byte ranges of about ``chunk_bytes`` (at least one line each), cut after a newline, with
    their row counts (one sequential read of the object, in ranges of 8 MB)."""
    chunk_bytes = max(1, chunk_bytes)
    items: list[ChunkItem] = []
    header = ""
    position = 0
    start = -1  # where the current chunk starts (-1: still in the header)
    rows_before, rows = 1, 0
    pending = b""
    while True:
        block = store.get_range(job.bucket, job.key, position, position + _SCAN, job.version_id)
        if not block:
            break
        data = pending + block
        base = position - len(pending)
        position += len(block)
        if start < 0:
            end = data.find(b"\n")
            if end < 0:
                pending = data
                continue
            header = data[:end].decode("utf-8", errors="replace").rstrip("\r").removeprefix("\ufeff")
            start = base + end + 1
            data, base = data[end + 1 :], start
        last = data.rfind(b"\n")
        if last < 0:
            pending = data
            continue
        counted = 0  # rows are counted in data[:counted] already
        while start + chunk_bytes - base - 1 <= last:  # a cut fits in this block: at the first line end past the size
            cut = data.find(b"\n", max(start + chunk_bytes - base - 1, counted))
            rows += data.count(b"\n", counted, cut + 1)
            items.append(_csv_item(job, len(items), start, base + cut + 1, rows_before, rows, header))
            start, rows_before, rows, counted = base + cut + 1, rows_before + rows, 0, cut + 1
        rows += data.count(b"\n", counted, last + 1)
        pending = data[last + 1 :]
    if pending.strip():  # a last line without a newline
        rows += 1
    if start >= 0 and (rows or not items):
        items.append(_csv_item(job, len(items), start, position, rows_before, rows, header))
    return items


def _csv_item(job: BatchJob, part: int, start: int, end: int, first_row: int, rows: int, header: str) -> ChunkItem:
    return {
        "job": job.to_dict(),
        "part": part,
        "format": "csv",
        "start": start,
        "end": end,
        "row_group": -1,
        "first_row": first_row,
        "rows": rows,
        "header": header,
    }


def _parquet_chunks(store: ObjectStore, job: BatchJob) -> list[ChunkItem]:
    """One chunk per row group, from the footer alone (two ranged reads)."""
    import pyarrow.parquet as pq

    from conveyor.batch.ranged import RangedFile

    metadata = pq.ParquetFile(RangedFile(store, job.bucket, job.key, job.version_id)).metadata
    items: list[ChunkItem] = []
    first = 1
    for group in range(metadata.num_row_groups):
        rows = metadata.row_group(group).num_rows
        items.append(
            {
                "job": job.to_dict(),
                "part": group,
                "format": "parquet",
                "start": 0,
                "end": 0,
                "row_group": group,
                "first_row": first,
                "rows": rows,
                "header": "",
            }
        )
        first += rows
    return items


def read_chunk_bytes(store: ObjectStore, item: ChunkItem) -> io.BytesIO:
    """A CSV chunk as a file of its own: the header line, then its rows."""
    job = item["job"]
    body = store.get_range(job["bucket"], job["key"], item["start"], item["end"], job.get("version_id"))
    return io.BytesIO(item["header"].encode() + b"\n" + body)
