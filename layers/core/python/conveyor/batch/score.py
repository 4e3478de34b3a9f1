"""Scoring one chunk of a batch job: every row gets a ``request_id``, the ``model_version``, its
``prediction`` and ``probabilities`` (classification: ``{"class": p}`` as JSON, as capture writes
them), or an ``error`` (a value that does not parse as its type, a null in a non-nullable
feature, a category not allowed, a missing column): a bad row never fails the chunk. The rows
are captured like online traffic (``docs/capture.md``: ``role: "batch"``, one record per row,
its request_id), so the monitor and the labels join them.

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

from conveyor import layout
from conveyor.batch.plan import BatchJob, ChunkItem, read_chunk_bytes
from conveyor.capture import captured
from conveyor.contract import MASK, ServingContract, contract_from_spec
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
    records: pd.DataFrame  # the capture records, one per sampled row (capture_lines writes them)
    rows: int
    errors: int
    seconds: float


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
        return good, *_predict(scorer, frame.iloc[good])
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
    """Score the rows of ``frame`` (rows ``first_row``... of the batch file)."""
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
    prediction = np.full(n, None, dtype=object)
    prediction[good] = labels.tolist()
    shown = np.full(n, None, dtype=object)
    classes = [str(c) for c in (scorer.model.classes or [])]
    by_class: dict[int, list[float]] = {}  # row -> its rounded probabilities, for the capture records
    if probabilities is not None and classes:
        names = (json.dumps(c).replace("{", "{{").replace("}", "}}") for c in classes)
        template = "{{" + ", ".join(f"{name}: {{!r}}" for name in names) + "}}"  # JSON, as json.dumps writes it
        rounded = np.round(probabilities, 6).tolist()
        shown[good] = [template.format(*row) for row in rounded]
        by_class = dict(zip(good.tolist(), rounded, strict=True))
    rows = np.arange(first_row, first_row + n)
    if REQUEST_ID in frame.columns:
        request_ids = frame[REQUEST_ID].astype("string").fillna("").to_numpy(dtype=object)
    else:
        request_ids = np.array([f"{batch_id}-{r}" for r in rows.tolist()], dtype=object)
    errors = np.full(n, None, dtype=object)
    for position, reasons in problems.items():
        errors[position] = "; ".join(reasons)
    table = pd.DataFrame(
        {
            "request_id": pd.Series(request_ids, dtype="string"),
            "model_version": np.full(n, scorer.version, dtype=np.int64),
            "prediction": _typed_predictions(prediction, scorer.model),
            "probabilities": pd.Series(shown, dtype="string"),
            "error": pd.Series(errors, dtype="string"),
            ROW_COLUMN: rows,
        }
    )
    for name in scorer.spec.identifiers:  # so a result joins back to its row
        if name in frame.columns and name not in table.columns:
            table[name] = frame[name].to_numpy()
    seconds = time.perf_counter() - started
    records = _capture_records(
        frame, table, scorer, batch_id, seconds, now if now is not None else time.time(), by_class
    )
    return ScoredChunk(table, records, n, len(problems), seconds)


def _typed_predictions(prediction: np.ndarray, model: OnnxModel) -> pd.Series:
    """One dtype whatever the chunk holds (every part of a job has the same schema): the classes'
    (integers or text), or float for regression; a missing prediction is null."""
    if model.task == "regression":
        return pd.Series(prediction, dtype="Float64")
    classes = model.classes or []
    if classes and all(isinstance(c, int) and not isinstance(c, bool) for c in classes):
        return pd.Series(prediction, dtype="Int64")
    return pd.Series([None if p is None else str(p) for p in prediction], dtype="string")


def _capture_records(
    frame: pd.DataFrame,
    table: pd.DataFrame,
    scorer: Scorer,
    batch_id: str,
    seconds: float,
    now: float,
    probabilities: dict[int, list[float]],
) -> pd.DataFrame:
    """One capture record per sampled row (``capture.sample_rate``, by request_id as online), a row
    of a frame each (``capture_lines`` writes them as JSON lines): the format of ``docs/capture.md``."""
    request_ids = table["request_id"].astype(object).tolist()
    rate = scorer.contract.sample_rate
    sampled = (
        list(range(len(request_ids)))
        if rate >= 1.0
        else [i for i, rid in enumerate(request_ids) if captured(str(rid), rate)]
    )
    if not sampled:
        return pd.DataFrame()
    classes = [str(c) for c in (scorer.model.classes or [])]
    inputs = _masked_rows(frame.iloc[sampled], scorer.contract)
    errors = table["error"].iloc[sampled].astype(object).where(lambda e: e.notna(), None).tolist()
    labels = table["prediction"].iloc[sampled].astype(object).where(lambda p: p.notna(), None).tolist()
    failed = [e is not None for e in errors]
    return pd.DataFrame(
        {
            "model": scorer.spec.name,
            "model_version": scorer.version,
            "role": "batch",
            "served": True,
            "request_id": [str(request_ids[i]) for i in sampled],
            "batch_id": batch_id,
            "timestamp": now,
            "latency_ms": round(seconds * 1000 / max(len(frame), 1), 4),
            "status": [400 if bad else 200 for bad in failed],
            "error_code": ["invalid_input" if bad else None for bad in failed],
            "inputs": [[row] for row in inputs],
            "predictions": [[] if bad else [label] for bad, label in zip(failed, labels, strict=True)],
            "probabilities": [
                [dict(zip(classes, probabilities[i], strict=True))] if i in probabilities else None for i in sampled
            ],
            "warnings": [[] for _ in sampled],
        },
        index=pd.RangeIndex(len(sampled)),
    )


def capture_lines(records: pd.DataFrame) -> bytes:
    """The capture records as JSON lines (pandas' C writer: a chunk's rows in one call)."""
    if records.empty:
        return b""
    return records.to_json(orient="records", lines=True, double_precision=15).encode()


def _masked_rows(rows: pd.DataFrame, contract: ServingContract) -> list[dict[str, Any]]:
    """The rows as capture records them (``ServingContract.mask``): ``"***"`` for masked and unknown
    columns, null for a missing or non-finite number, JSON scalars otherwise."""
    columns: dict[str, list[Any]] = {}
    for name in rows.columns:
        key = str(name)
        column = rows[name]
        if contract.masks(key):
            columns[key] = [MASK] * len(rows)
        elif pd.api.types.is_float_dtype(column):
            values = column.to_numpy(dtype=np.float64)
            finite = np.isfinite(values)
            columns[key] = [v if ok else None for v, ok in zip(values.tolist(), finite.tolist(), strict=True)]
        elif pd.api.types.is_bool_dtype(column) or pd.api.types.is_integer_dtype(column):
            columns[key] = column.astype(object).where(column.notna(), None).tolist()
        else:
            columns[key] = [
                v if v is None or isinstance(v, str | bool | int) else (None if pd.isna(v) else MASK)
                for v in column.astype(object).where(column.notna(), None).tolist()
            ]
    keys = list(columns)
    return [dict(zip(keys, values, strict=True)) for values in zip(*columns.values(), strict=True)]


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
        timestamp = float(scored.records["timestamp"].iloc[0])
        body = capture_lines(scored.records)
        store.put(job.capture_bucket, layout.capture_key(job.model, timestamp), body, "application/x-ndjson")
    return {
        "part": item["part"],
        "key": key,
        "rows": scored.rows,
        "errors": scored.errors,
        "captured": len(scored.records),
        "seconds": round(scored.seconds, 3),
    }
