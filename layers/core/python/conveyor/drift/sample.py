"""The rows the drift stage compares, read from a file on disk in bounded memory: the file is
streamed in chunks (``conveyor.validation.stream``, the readers the Validate stage uses), only the
spec's feature columns are kept, and beyond ``max_rows`` rows a uniform random sample of
``max_rows`` of them (seeded: the same file gives the same sample) is kept, in file order. A file
of ``max_rows`` rows or fewer is compared whole, as read whole.

Why by hand: a reservoir over pyarrow's record batches is a few lines of numpy (each row gets a
random key; the ``max_rows`` smallest keys seen so far are kept), and neither pyarrow nor pandas
samples a stream.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path, PurePath

import numpy as np
import pandas as pd

from conveyor.errors import DataError
from conveyor.tabular import CSV_SUFFIXES, PARQUET_SUFFIXES, pandas_names
from conveyor.validation.stream import CSV_BLOCK, CsvSource, Escalate, ParquetSource

MAX_ROWS = 1_000_000  # rows compared at most: the tests' power is flat long before this


@dataclass(frozen=True)
class Sample:
    """The rows kept (feature columns only) and how many the file has."""

    frame: pd.DataFrame
    rows: int

    @property
    def sampled(self) -> bool:
        return len(self.frame) < self.rows


def read_sample(
    path: Path,
    filename: str,
    columns: Collection[str],
    *,
    max_rows: int = MAX_ROWS,
    seed: int = 0,
    block_size: int = CSV_BLOCK,
) -> Sample:
    """The file's rows of ``columns`` (those it has), all of them or a uniform sample of ``max_rows``;
    a CSV is read ``block_size`` bytes at a time.

    Raises
    ------
    DataError
        If the file is not CSV or Parquet, or cannot be read.
    """
    suffix = PurePath(filename).suffix.lower()
    if suffix in CSV_SUFFIXES:
        source: CsvSource | ParquetSource = CsvSource(path, block_size)
    elif suffix in PARQUET_SUFFIXES:
        source = ParquetSource(path)
    else:
        raise DataError(f"{filename}: not a CSV or Parquet file", details={"file": filename, "reason": "suffix"})
    while True:
        try:
            return _reservoir(source, columns, max_rows, seed)
        except Escalate as wider:  # a later CSV block needs a wider type: read again with it
            if not isinstance(source, CsvSource):
                raise
            source.widen(wider)


def _reservoir(source: CsvSource | ParquetSource, columns: Collection[str], max_rows: int, seed: int) -> Sample:
    rng = np.random.default_rng(seed)
    kept: pd.DataFrame | None = None
    keys = np.zeros(0)  # each kept row's random key; the kept rows stay in file order
    total = 0
    for chunk in source.chunks():
        frame = chunk.frame[[c for c in chunk.frame.columns if c in columns]]
        total += len(frame)
        kept = frame if kept is None else pd.concat([kept, frame], ignore_index=True)
        keys = np.concatenate([keys, rng.random(len(frame))])
        if len(kept) > max_rows:
            best = np.sort(np.argpartition(keys, max_rows - 1)[:max_rows])
            kept, keys = kept.iloc[best].reset_index(drop=True), keys[best]
    if kept is None:  # a header and no rows
        kept = pd.DataFrame(columns=[c for c in pandas_names(source.header) if c in columns])
    return Sample(kept, total)
