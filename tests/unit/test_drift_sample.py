"""The drift stage's bounded read (``conveyor.drift.sample``): a file within ``max_rows`` is compared
whole, exactly as read whole; a longer one by a uniform, seeded sample of ``max_rows`` rows in file
order; a CSV column that widens after the first block is read again with the wider type."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest

from conveyor.drift.sample import read_sample
from conveyor.errors import DataError
from conveyor.tabular import read_table

COLUMNS = ["x", "plan"]


def _frame(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame(
        {
            "x": rng.normal(0, 1, rows),
            "plan": rng.choice(["basic", "plus", "pro"], rows),
            "id": np.arange(rows),
            "y": rng.integers(0, 2, rows),
        }
    )


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_file_within_max_rows_is_its_feature_columns_as_read_whole(tmp_path: Path, suffix: str) -> None:
    frame = _frame(5000)
    path = tmp_path / f"drop{suffix}"
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path, index=False)
    sample = read_sample(path, path.name, COLUMNS, max_rows=5000)
    assert sample.rows == 5000 and not sample.sampled
    pdt.assert_frame_equal(sample.frame, read_table(path.read_bytes(), path.name)[COLUMNS])


def test_a_longer_file_is_a_uniform_seeded_sample_in_file_order(tmp_path: Path) -> None:
    frame = _frame(60_000)
    path = tmp_path / "drop.csv"
    frame.to_csv(path, index=False)
    # small CSV blocks: many chunks, so the reservoir really carries rows across them
    sample = read_sample(path, path.name, [*COLUMNS, "id"], max_rows=3000, block_size=64 * 1024)
    again = read_sample(path, path.name, [*COLUMNS, "id"], max_rows=3000, block_size=64 * 1024)
    assert sample.rows == 60_000 and sample.sampled and len(sample.frame) == 3000
    pdt.assert_frame_equal(sample.frame, again.frame)  # seeded
    ids = sample.frame["id"].to_numpy()
    assert (np.diff(ids) > 0).all()  # file order, no row twice
    # every kept row is the file's row with that id, and the sample spans the file evenly
    pdt.assert_frame_equal(sample.frame, frame.iloc[ids][[*COLUMNS, "id"]].reset_index(drop=True))
    counts = np.histogram(ids, bins=10, range=(0, 60_000))[0]
    assert counts.min() > 200 and counts.max() < 400, counts  # 300 per tenth expected
    assert abs(sample.frame["x"].mean() - frame["x"].mean()) < 0.1


def test_a_csv_column_that_widens_after_the_first_block_is_read_again(tmp_path: Path) -> None:
    rows = ["x,plan"] + [f"{i},basic" for i in range(20_000)] + ["1.5,plus"]
    path = tmp_path / "drop.csv"
    path.write_text("\n".join(rows) + "\n")
    sample = read_sample(path, path.name, COLUMNS, max_rows=100_000, block_size=4096)
    assert sample.rows == 20_001 and sample.frame["x"].dtype == np.float64 and sample.frame["x"].iloc[-1] == 1.5


def test_a_file_that_is_neither_csv_nor_parquet_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "drop.json"
    path.write_text("{}")
    with pytest.raises(DataError, match="not a CSV or Parquet"):
        read_sample(path, path.name, COLUMNS)
