"""Scoring one chunk of a batch job: every row gets a ``request_id``, the ``model_version``, its
``prediction`` and ``probabilities`` (classification: ``{"class": p}`` as JSON, as capture writes
them), or an ``error`` (a value that does not parse as its type, a null in a non-nullable
feature, a category not allowed, a missing column): a bad row never fails the chunk. The rows
are captured like online traffic (``docs/capture.md``: ``role: "batch"``, one record per row,
its request_id), so the monitor and the labels join them.

Nothing is done per row in Python: the checks parse whole columns, the good rows are scored by one
onnxruntime run, and the output columns and the capture lines are built by pyarrow's kernels
(``conveyor.batch.records``); only the rows that fail a check are visited one by one.

The worker runs in the training image (pandas, pyarrow, onnxruntime, the spec parser): the
predict layer has no pyarrow to read CSV or Parquet, and a batch chunk of 64 MB pays an image's
cold start once for minutes of work, where a request could not.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from conveyor import layout
from conveyor.batch.plan import BatchJob, ChunkItem, read_chunk_bytes
from conveyor.batch.records import (
    QUOTE,
    CaptureLines,
    json_column,
    json_strings,
    lines_bytes,
    object_fragments,
    text,
)
from conveyor.capture import captured
from conveyor.contract import ServingContract, contract_from_spec
from conveyor.errors import ConveyorError
from conveyor.ports import ObjectStore
from conveyor.scoring import OnnxModel
from conveyor.spec import ModelSpec
from conveyor.tabular import feature_frame, onnx_inputs
from conveyor.validation.schema import parse_feature

OUTPUT_COLUMNS = ("request_id", "model_version", "prediction", "probabilities", "error")
ROW_COLUMN = "row"  # the row's 1-based number in the batch file
REQUEST_ID = "request_id"  # a column of the batch file with this name gives each row its request_id


@dataclass
class Scorer:
    """A version ready to score: its ONNX session, spec and serving contract."""

    model: OnnxModel
    spec: ModelSpec
    version: int
    contract: ServingContract

    @classmethod
    def of(cls, onnx: bytes, spec: ModelSpec, version: int) -> Scorer:
        return cls(OnnxModel(onnx), spec, version, contract_from_spec(spec))


@dataclass
class ScoredChunk:
    """The scored rows (the output table), their capture records, and counts."""

    table: pd.DataFrame
    records: CaptureLines  # the capture records, one per sampled row (capture_lines writes them)
    rows: int
    errors: int
    seconds: float
    timestamp: float  # when the chunk was scored: its capture object's hour


def _row_problems(frame: pd.DataFrame, spec: ModelSpec) -> dict[int, list[str]]:
    """Why each row that cannot be scored cannot (rows absent from the dict can be)."""
    problems: dict[int, list[str]] = {}

    def flag(mask: np.ndarray, message: str) -> None:
        for i in np.flatnonzero(mask).tolist():
            problems.setdefault(i, []).append(message)

    for name, feature in spec.features.items():
        if name not in frame.columns:
            flag(np.ones(len(frame), dtype=bool), f"{name}: missing column")
            continue
        parsed = parse_feature(frame[name], feature)
        flag(parsed.bad, f"{name}: not {feature.type}")
        if not feature.nullable:
            flag(parsed.nulls, f"{name}: null in a non-nullable feature")
        allowed = feature.allowed_categories()
        if allowed is not None and parsed.categories is not None:
            present = ~parsed.nulls & (parsed.categories != "").to_numpy(dtype=bool)
            flag(present & ~parsed.categories.isin(allowed).to_numpy(dtype=bool), f"{name}: not an allowed value")
    return problems


def _predict(scorer: Scorer, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
    prediction = scorer.model.predict(onnx_inputs(feature_frame(frame, scorer.spec), scorer.spec))
    return prediction.labels, prediction.probabilities


def _predict_rows(scorer: Scorer, frame: pd.DataFrame, problems: dict[int, list[str]], good: np.ndarray) -> Any:
    """Predictions of the good rows; a row the model's input conversion refuses becomes an error."""
    try:
        return good, *_predict(scorer, frame if len(good) == len(frame) else frame.iloc[good])
    except ConveyorError:  # isolate the row(s) at fault, one by one (rare)
        kept = []
        for position in good:
            try:
                feature_frame(frame.iloc[[position]], scorer.spec)
                kept.append(position)
            except ConveyorError as error:
                problems.setdefault(int(position), []).append(str(error)[:200])
        good = np.asarray(kept, dtype=np.int64)
        return good, *_predict(scorer, frame.iloc[good])


def score_frame(
    frame: pd.DataFrame, scorer: Scorer, *, first_row: int, batch_id: str, now: float | None = None
) -> ScoredChunk:
    """Score the rows of ``frame`` (rows ``first_row``... of the batch file): the checks column by
    column, one onnxruntime run for the good rows, the output columns and capture lines built whole."""
    started = time.perf_counter()
    n = len(frame)
    problems = _row_problems(frame, scorer.spec)
    bad = np.zeros(n, dtype=bool)
    bad[list(problems)] = True
    good = np.flatnonzero(~bad)
    labels: np.ndarray = np.zeros(0)
    probabilities: np.ndarray | None = None
    if good.size:
        good, labels, probabilities = _predict_rows(scorer, frame, problems, good)
    scored = np.zeros(n, dtype=bool)
    scored[good] = True
    rows = np.arange(first_row, first_row + n)
    if REQUEST_ID in frame.columns:
        request_ids = pa.array(frame[REQUEST_ID].astype("string").fillna(""), type=pa.string(), from_pandas=True)
    else:
        request_ids = pc.binary_join_element_wise(f"{batch_id}-", pa.array(rows).cast(pa.string()), "")
    shown = _probabilities_json(scorer, probabilities, good, n)
    errors = np.full(n, None, dtype=object)
    for position, reasons in problems.items():
        errors[position] = "; ".join(reasons)
    error_text = pa.array(errors, pa.large_string()) if problems else pa.nulls(n, pa.large_string())
    table = pd.DataFrame(
        {
            "request_id": pd.Series(pd.arrays.ArrowStringArray(request_ids.cast(pa.large_string()))),
            "model_version": np.full(n, scorer.version, dtype=np.int64),
            "prediction": _typed_predictions(labels, good, n, scorer.model),
            "probabilities": pd.Series(pd.arrays.ArrowStringArray(shown.cast(pa.large_string()))),
            "error": pd.Series(pd.arrays.ArrowStringArray(error_text)),
            ROW_COLUMN: rows,
        }
    )
    for name in scorer.spec.identifiers:  # so a result joins back to its row
        if name in frame.columns and name not in table.columns:
            table[name] = frame[name].to_numpy()
    seconds = time.perf_counter() - started
    timestamp = now if now is not None else time.time()
    chunk = _Chunk(frame, request_ids, scored, labels, good, shown, batch_id, seconds, timestamp)
    return ScoredChunk(table, _capture_records(chunk, scorer), n, len(problems), seconds, timestamp)


def _probabilities_json(scorer: Scorer, probabilities: np.ndarray | None, good: np.ndarray, n: int) -> pa.Array:
    """``{"class": p, ...}`` per scored row (rounded to 6 places), null for the others and for regression."""
    classes = [str(c) for c in (scorer.model.classes or [])]
    if probabilities is None or not classes:
        return pa.nulls(n, pa.string())
    rounded = np.full((n, len(classes)), np.nan)
    rounded[good] = np.round(probabilities, 6)
    pieces: list[Any] = []
    for j, name in enumerate(classes):
        pieces += [("{" if j == 0 else ", ") + json.dumps(name) + ": ", pa.array(rounded[:, j], from_pandas=True)]
    # a row without probabilities is NaN, so null: the whole object is null there
    return pc.binary_join_element_wise(*[p if isinstance(p, str) else p.cast(pa.string()) for p in pieces], "}", "")


def _typed_predictions(labels: np.ndarray, good: np.ndarray, n: int, model: OnnxModel) -> pd.Series:
    """One dtype whatever the chunk holds (every part of a job has the same schema): the classes'
    (integers or text), or float for regression; a missing prediction is null."""
    missing = np.ones(n, dtype=bool)
    missing[good] = False
    if model.task == "regression":
        values = np.zeros(n, dtype=np.float64)
        values[good] = labels
        return pd.Series(pd.arrays.FloatingArray(values, missing))
    classes = model.classes or []
    if classes and all(isinstance(c, int) and not isinstance(c, bool) for c in classes):
        integers = np.zeros(n, dtype=np.int64)
        integers[good] = labels
        return pd.Series(pd.arrays.IntegerArray(integers, missing))
    text = np.full(n, None, dtype=object)
    text[good] = [str(p) for p in labels.tolist()]
    return pd.Series(text, dtype="string")


@dataclass
class _Chunk:
    """What the capture lines of a scored chunk are made of."""

    frame: pd.DataFrame
    request_ids: pa.Array
    scored: np.ndarray  # bool per row: it has a prediction
    labels: np.ndarray  # the predictions of the scored rows, in order
    good: np.ndarray  # the scored rows' positions
    probabilities: pa.Array  # JSON objects (null where none)
    batch_id: str
    seconds: float
    now: float


def _capture_records(chunk: _Chunk, scorer: Scorer) -> CaptureLines:
    """One capture line per sampled row (``capture.sample_rate``, by request_id as online): the
    format of ``docs/capture.md``, as the fragments of ``conveyor.batch.records`` (a row each)."""
    rate = scorer.contract.sample_rate
    n = len(chunk.frame)
    if rate <= 0.0 or n == 0:
        return CaptureLines([], 0)
    keep = None
    if rate < 1.0:
        keep = np.array([captured(str(rid), rate) for rid in chunk.request_ids.to_pylist()], dtype=bool)
        if not keep.any():
            return CaptureLines([], 0)
    frame, failed = chunk.frame, pa.array(~chunk.scored)
    any_failed = not chunk.scored.all()
    head = {"model": scorer.spec.name, "model_version": scorer.version, "role": "batch", "served": True}
    latency = round(chunk.seconds * 1000 / max(n, 1), 4)
    tail = {"batch_id": chunk.batch_id, "timestamp": chunk.now, "latency_ms": latency}
    ok = text('"status": 200, "error_code": null')
    refused = text('"status": 400, "error_code": "invalid_input"')
    prediction = _prediction_json(chunk, scorer.model, n)
    probabilities = pc.binary_join_element_wise(
        "[", pc.replace_substring(chunk.probabilities, '"', QUOTE), "]", "", null_handling="emit_null"
    )
    names = [str(name) for name in frame.columns]
    inputs = [json_column(frame[c], scorer.contract.masks(k)) for c, k in zip(frame.columns, names, strict=True)]
    fragments = [
        text(json.dumps(head)[:-1] + ', "request_id":'),
        json_strings(chunk.request_ids),
        text(", " + json.dumps(tail)[1:-1] + ","),
        pc.if_else(failed, refused, ok) if any_failed else ok,
        text(', "inputs": ['),
        *object_fragments(names, inputs),
        text('], "predictions": ['),
        pc.if_else(failed, "", prediction) if any_failed else prediction,
        text('], "probabilities":'),
        probabilities,
        text(', "warnings": []}'),
    ]
    lines = CaptureLines(fragments, n)
    return lines if keep is None else lines.filter(keep)


def _prediction_json(chunk: _Chunk, model: OnnxModel, n: int) -> pa.Array:
    """Each row's prediction as a JSON fragment (text; anything where the row has none)."""
    if model.task == "regression":
        values = np.zeros(n)
        values[chunk.good] = chunk.labels
        return pa.array(values).cast(pa.string())
    classes = model.classes or []
    if classes and all(isinstance(c, int) and not isinstance(c, bool) for c in classes):
        integers = np.zeros(n, dtype=np.int64)
        integers[chunk.good] = chunk.labels
        return pa.array(integers).cast(pa.string())
    labels = np.full(n, "", dtype=object)
    labels[chunk.good] = [str(p) for p in chunk.labels.tolist()]
    return json_strings(pa.array(labels, pa.string()))


def capture_lines(lines: CaptureLines) -> bytes:
    """The capture records as JSON lines, one buffer."""
    return lines_bytes(lines)


def read_item(store: ObjectStore, item: ChunkItem) -> pd.DataFrame:
    """The rows of one chunk."""
    job = item["job"]
    if item["format"] == "parquet":
        import pyarrow.parquet as pq

        from conveyor.batch.ranged import RangedFile

        parquet = pq.ParquetFile(RangedFile(store, job["bucket"], job["key"], job.get("version_id")))
        return parquet.read_row_group(item["row_group"]).to_pandas()
    import pyarrow.csv as pacsv

    return pacsv.read_csv(read_chunk_bytes(store, item)).to_pandas()


def table_bytes(table: pd.DataFrame, fmt: str) -> bytes:
    """The scored rows in the input's format."""
    import pyarrow as pa

    arrow = pa.Table.from_pandas(table, preserve_index=False)
    buffer = io.BytesIO()
    if fmt == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(arrow, buffer)
    else:
        import pyarrow.csv as pacsv

        pacsv.write_csv(arrow, buffer)
    return buffer.getvalue()


def score_item(store: ObjectStore, item: ChunkItem, scorer: Scorer, *, now: float | None = None) -> dict[str, Any]:
    """Score one chunk: its part under ``{model}/scored/...`` and its capture records; what happened."""
    job = BatchJob.from_dict(item["job"])
    frame = read_item(store, item)
    scored = score_frame(frame, scorer, first_row=item["first_row"], batch_id=job.batch_id, now=now)
    key = layout.scored_part_key(job.key, item["part"])
    store.put(job.bucket, key, table_bytes(scored.table, item["format"]))
    if len(scored.records) and job.capture_bucket:
        body = capture_lines(scored.records)
        capture = layout.capture_key(job.model, scored.timestamp)
        store.put(job.capture_bucket, capture, body, "application/x-ndjson")
    return {
        "part": item["part"],
        "key": key,
        "rows": scored.rows,
        "errors": scored.errors,
        "captured": len(scored.records),
        "seconds": round(scored.seconds, 3),
    }
