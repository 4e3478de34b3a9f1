"""``conveyor score``: batch scoring of a local file, with the code the batch state machine runs
(``conveyor.batch``: the same chunks, the same scoring, the same output columns), no cloud."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Annotated, Any, cast

import typer

from conveyor.cli.common import ExitCode, JsonFlag, fail, json_text, out
from conveyor.errors import ConveyorError

MODEL_FILE = "model.onnx"
SPEC_FILE = "spec.yaml"


class _FileStore:
    """The object store calls batch planning and chunk reading make, on one local file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def get_range(self, bucket: str, key: str, start: int, end: int, version_id: str | None = None) -> bytes:
        with self.path.open("rb") as handle:
            handle.seek(start)
            return handle.read(max(0, end - start))

    def head(self, bucket: str, key: str, version_id: str | None = None) -> Any:
        from conveyor.ports import ObjectRef

        return ObjectRef(bucket, key, None, None, self.path.stat().st_size)

    def tags(self, bucket: str, key: str, version_id: str | None = None) -> dict[str, str]:
        return {}


def score(
    data: Annotated[Path, typer.Argument(help="The rows to score (CSV or Parquet).", exists=True, dir_okay=False)],
    model: Annotated[
        Path,
        typer.Option(
            "--model", "-m", help="ONNX model: model.onnx of `conveyor train`, or its --out folder.", exists=True
        ),
    ],
    spec: Annotated[
        Path | None,
        typer.Option("--spec", "-s", help="Model spec [default: spec.yaml beside the model].", dir_okay=False),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Where the scored rows go [default: FILE.scored.csv|parquet beside FILE].",
            dir_okay=False,
        ),
    ] = None,
    version: Annotated[int, typer.Option(help="The model_version written on every row.")] = 0,
    chunk_mb: Annotated[float, typer.Option(help="Rows are read and scored in chunks of about this many MB.")] = 64,
    as_json: JsonFlag = False,
) -> None:
    """Score FILE with MODEL in chunks, as a drop under {model}/batch/ is scored in the cloud.

    Writes the rows in FILE's format with request_id, model_version, prediction, probabilities (JSON,
    per class) and error (why a row could not be scored: a value that does not parse, a null in a
    non-nullable feature, a category not allowed, a missing column), the file's row number and its
    identifier columns. A bad row never stops the others. Offline, rows are not captured.

    Exit codes: 0 every row scored; 1 some rows have an error; 2 bad input (unreadable model, spec or file).
    """
    try:
        document = _score(data, model, spec, output, version, chunk_mb)
    except (ConveyorError, OSError, ValueError) as error:
        raise fail(f"cannot score {data}: {error}", ExitCode.BAD_INPUT, as_json=as_json) from None
    if as_json:
        typer.echo(json_text(document))
    else:
        out.print(
            f"scored {document['rows']} rows of {data.name} in {document['chunks']} chunk(s) "
            f"({document['rows_per_second']:.0f} rows/s): {document['errors']} with an error -> {document['out']}"
        )
    raise typer.Exit(ExitCode.FAILURE if document["errors"] else ExitCode.OK)


def _score(
    data: Path, model: Path, spec_path: Path | None, output: Path | None, version: int, chunk_mb: float
) -> dict[str, Any]:
    import time

    from conveyor.batch import Scorer, plan_chunks, score_frame
    from conveyor.batch.plan import BatchJob, batch_id
    from conveyor.batch.score import read_item, table_bytes
    from conveyor.ports import ObjectStore
    from conveyor.spec import load_spec

    onnx_path = model / MODEL_FILE if model.is_dir() else model
    spec = load_spec((spec_path or onnx_path.parent / SPEC_FILE).read_bytes())
    scorer = Scorer.of(onnx_path.read_bytes(), spec, version)
    stat = data.stat()
    job = BatchJob(
        spec.name,
        "",
        f"{spec.name}/batch/{data.name}",
        None,
        version,
        batch_id(str(data.resolve()), f"{stat.st_size}-{stat.st_mtime_ns}", None),
        "",
        "",
    )
    store = cast(ObjectStore, _FileStore(data))
    started = time.perf_counter()
    items = plan_chunks(store, job, chunk_bytes=int(chunk_mb * 1024 * 1024))
    target = output or data.with_name(f"{data.stem}.scored{data.suffix}")
    rows = errors = 0
    with _Writer(target, job.format) as writer:
        for item in items:
            scored = score_frame(read_item(store, item), scorer, first_row=item["first_row"], batch_id=job.batch_id)
            writer.write(scored.table, table_bytes)
            rows, errors = rows + scored.rows, errors + scored.errors
    seconds = time.perf_counter() - started
    return {
        "file": str(data),
        "out": str(target),
        "rows": rows,
        "errors": errors,
        "chunks": len(items),
        "seconds": round(seconds, 3),
        "rows_per_second": rows / seconds if seconds else 0.0,
        "model_version": version,
        "batch_id": job.batch_id,
    }


class _Writer:
    """The output file, one chunk at a time (CSV text appended; Parquet row groups)."""

    def __init__(self, path: Path, fmt: str) -> None:
        self.path, self.fmt = path, fmt
        self._parquet: Any = None
        self._handle: Any = None

    def __enter__(self) -> _Writer:
        if self.fmt == "csv":
            self._handle = self.path.open("wb")
        return self

    def write(self, table: Any, to_bytes: Any) -> None:
        if self.fmt == "csv":
            text = to_bytes(table, "csv")
            self._handle.write(text if self._handle.tell() == 0 else text.split(b"\n", 1)[1])
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        arrow = pa.Table.from_pandas(table, preserve_index=False)
        if self._parquet is None:
            self._parquet = pq.ParquetWriter(str(self.path), arrow.schema)
        self._parquet.write_table(arrow)

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            self._handle.close()
        if self._parquet is not None:
            self._parquet.close()
        if exc[0] is not None:
            with contextlib.suppress(OSError):
                os.remove(self.path)
