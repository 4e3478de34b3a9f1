"""Synthetic data for the data-gate benchmark: 20 columns (numbers, integers, booleans,
categories and a 0/1 target), a reference and a current file with planted shifts.

Importable without conveyor (the Evidently runner reads the same column lists).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

NUMBERS = [f"num_{i}" for i in range(9)]
INTEGERS = ["int_age", "int_visits", "int_score"]
BOOLEANS = ["bool_a", "bool_b", "bool_c"]
CATEGORIES = ["cat_region", "cat_plan", "cat_device", "cat_city"]
TARGET = "label"
FEATURES = NUMBERS + INTEGERS + BOOLEANS + CATEGORIES
COLUMNS = [*FEATURES, TARGET]  # 20 columns
SHIFTED = ["num_0", "int_visits", "cat_plan"]  # planted in the current file

SPEC_YAML = "\n".join(
    [
        "name: bench-gate",
        "task: classification",
        f"target: {{column: {TARGET}}}",
        "features:",
        *[f"  {name}: {{type: number, nullable: true}}" for name in NUMBERS],
        *[f"  {name}: {{type: integer}}" for name in INTEGERS],
        *[f"  {name}: {{type: boolean}}" for name in BOOLEANS],
        *[f"  {name}: {{type: category}}" for name in CATEGORIES],
        "estimator: {type: hist_gradient_boosting}",
        "",
    ]
)


def make_frame(rows: int, *, shifted: bool, seed: int) -> pd.DataFrame:
    """``rows`` rows; ``shifted`` plants a 0.5-sd mean shift in num_0, more visits, another plan mix."""
    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {}
    for i, name in enumerate(NUMBERS):
        if i % 3 == 0:
            values = rng.normal(10.0 * i, 1.0 + i, rows)
        elif i % 3 == 1:
            values = rng.lognormal(1.0, 0.5, rows)
        else:
            values = rng.uniform(-5.0, 5.0, rows)
        if name == "num_0" and shifted:
            values = values + 0.5 * (1.0 + i)
        values = np.round(values, 4)
        values[rng.random(rows) < 0.01] = np.nan  # 1 % nulls
        data[name] = values
    data["int_age"] = rng.integers(18, 90, rows)
    data["int_visits"] = rng.poisson(3.0 if shifted else 2.0, rows)
    data["int_score"] = rng.integers(300, 850, rows)
    for i, name in enumerate(BOOLEANS):
        data[name] = (rng.random(rows) < 0.2 + 0.2 * i).astype(np.int64)
    data["cat_region"] = rng.choice(["north", "south", "east", "west", "center"], rows)
    plans = ["basic", "plus", "pro", "team", "enterprise"]
    weights = [0.2, 0.2, 0.2, 0.2, 0.2] if shifted else [0.4, 0.3, 0.15, 0.1, 0.05]
    data["cat_plan"] = rng.choice(plans, rows, p=weights)
    data["cat_device"] = rng.choice(["ios", "android", "web"], rows, p=[0.3, 0.5, 0.2])
    data["cat_city"] = np.char.add("city_", rng.zipf(1.5, rows).clip(max=5000).astype(str))
    data[TARGET] = (rng.random(rows) < 0.3).astype(np.int64)
    return pd.DataFrame(data)[COLUMNS]


def write_files(directory: Path, rows: int) -> dict[str, Path]:
    """reference/current as CSV and Parquet, plus spec.yaml; returns their paths."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    directory.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {"spec": directory / "spec.yaml"}
    paths["spec"].write_text(SPEC_YAML)
    for side, shifted, seed in (("reference", False, 1), ("current", True, 2)):
        table = pa.Table.from_pandas(make_frame(rows, shifted=shifted, seed=seed), preserve_index=False)
        paths[f"{side}_csv"] = directory / f"{side}.csv"
        paths[f"{side}_parquet"] = directory / f"{side}.parquet"
        pcsv.write_csv(table, paths[f"{side}_csv"])
        pq.write_table(table, paths[f"{side}_parquet"])
    return paths
