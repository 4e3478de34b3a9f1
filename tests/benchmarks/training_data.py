"""Data for the training benchmark: the bundled German health data, and ``rows`` rows shaped like it.

The large set resamples the bundled data by patient, with noise: each synthetic patient is a
copy of one real patient's whole history (1 to 5 yearly rows, drawn with replacement, seeded)
under a new ``id``, with that patient's ``age`` moved by -2..+2 years (one draw per patient, so
age still grows by one a year; clipped to 25..64) and every ``hhninc`` multiplied by
``exp(N(0, 0.1))`` (clipped to 0..40). Every other column (years, education, booleans, the
one-hot columns, ``docvis`` and ``hospvis``) is copied, so the columns, types, joint
distributions, panel structure and the real relation between the features and the target are
those of the bundled file. The row-index column is renumbered 1..rows.

Caveat: at 1,000,000 rows each real patient is copied about 140 times under different ids, so
near-copies of every holdout patient are in the training part and the holdout metrics are
optimistic (ROC AUC 0.669 against 0.607 on the bundled data). Resampled from the bundled
training patients only, 800,000 rows give 0.607 on the bundled holdout, exactly the bundled
model's: the target is as learnable as the real one, no more. The benchmark is about time and
memory, which the leak does not change (the model's size is fixed by the spec: 100 rounds of 15 leaves).

Both sets get a champion file: the rows of 1984 and 1985, as the demo's first model is trained.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = ROOT / "events" / "data" / "german_health_1984_1988.csv"
SPEC = ROOT / "events" / "specs" / "doctor-visits.yaml"
INDEX = "Unnamed: 0"  # the bundled CSV's unnamed first column, as read
CHAMPION_YEARS = (1984, 1985)
# The spec slices nothing; the benchmark adds these so the slice gate does its work (see the doc).
SLICES = ["female", "age", "edlevel"]
SEED = 7


def bench_spec_text() -> str:
    """doctor-visits.yaml unchanged, plus a ``slices:`` line (the slice gate has nothing to do without it)."""
    return SPEC.read_text() + f"\n# added by the training benchmark\nslices: [{', '.join(SLICES)}]\n"


def read_bundled() -> pd.DataFrame:
    return pd.read_csv(BUNDLED)


def resampled(rows: int, seed: int = SEED) -> pd.DataFrame:
    """``rows`` rows resampled from the bundled data by patient, with noise (see the module docstring)."""
    base = read_bundled()
    rng = np.random.default_rng(seed)
    by_patient = base.groupby("id", sort=True).indices  # id -> row positions, in year order
    patients = list(by_patient.values())
    sizes = np.array([len(p) for p in patients])
    draws = rng.integers(len(patients), size=int(rows / sizes.mean() * 1.1) + 10)
    while sizes[draws].sum() < rows:  # never for the sizes used, but cheap to guarantee
        draws = np.concatenate([draws, rng.integers(len(patients), size=len(draws))])
    needed = int(np.searchsorted(np.cumsum(sizes[draws]), rows)) + 1
    draws = draws[:needed]
    positions = np.concatenate([patients[d] for d in draws])[:rows]
    new_id = np.repeat(np.arange(1, needed + 1), sizes[draws])[:rows]
    frame = base.iloc[positions].reset_index(drop=True)
    frame["id"] = new_id
    shift = rng.integers(-2, 3, size=needed + 1)[new_id]
    frame["age"] = (frame["age"].to_numpy() + shift).clip(25, 64)
    income = frame["hhninc"].to_numpy() * np.exp(rng.normal(0.0, 0.1, rows))
    frame["hhninc"] = np.round(income, 4).clip(0.0, 40.0)
    frame[INDEX] = np.arange(1, rows + 1)
    return frame[base.columns]


def write_sets(directory: Path, rows: int) -> dict[str, dict[str, Path]]:
    """``bundled`` and ``resampled`` sets, each ``{"data", "champion"}`` CSV paths, plus ``spec.yaml``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "spec.yaml").write_text(bench_spec_text())
    sets: dict[str, dict[str, Path]] = {}
    for name, frame in (("bundled", read_bundled()), ("resampled", resampled(rows))):
        folder = directory / name
        folder.mkdir(exist_ok=True)
        paths = {"data": folder / "data.csv", "champion": folder / "champion.csv"}
        if name == "bundled":
            paths["data"].write_bytes(BUNDLED.read_bytes())
        else:
            frame.to_csv(paths["data"], index=False)
        frame[frame["year"].isin(CHAMPION_YEARS)].to_csv(paths["champion"], index=False)
        sets[name] = paths
    return sets
