"""Shared fixtures: a small, fixed sample of the real demo data and the demo spec."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from conveyor.spec import ModelSpec, parse_spec

ROOT = Path(__file__).resolve().parents[2]
DATA_NAME = "german_health_1984_1988.csv"
SPEC_PATH = ROOT / "events" / "specs" / "doctor-visits.yaml"
SAMPLE_ROWS = 2000


def data_path() -> Path:
    bundled = ROOT / "events" / "data" / DATA_NAME
    return bundled if bundled.exists() else Path("/work/shared/data") / DATA_NAME


@pytest.fixture(scope="session")
def full_df() -> pd.DataFrame:
    return pd.read_csv(data_path())


@pytest.fixture(scope="session")
def _sample(full_df: pd.DataFrame) -> pd.DataFrame:
    return full_df.sample(n=SAMPLE_ROWS, random_state=7).sort_index()


@pytest.fixture
def sample_df(_sample: pd.DataFrame) -> pd.DataFrame:
    """2,000 real rows (a copy: tests may modify it)."""
    return _sample.copy()


def _spec_dict() -> dict[str, Any]:
    return yaml.safe_load(SPEC_PATH.read_text())


def _make_spec(**overrides: Any) -> ModelSpec:
    data = _spec_dict()
    data.update(overrides)
    return parse_spec(data)


@pytest.fixture
def spec_path() -> Path:
    return SPEC_PATH


@pytest.fixture
def spec_dict() -> dict[str, Any]:
    """The demo spec as a fresh mapping (tests may modify it)."""
    return _spec_dict()


@pytest.fixture(scope="session")
def make_spec() -> Callable[..., ModelSpec]:
    """Build the demo spec with top-level keys replaced: ``make_spec(task=..., estimator=...)``."""
    return _make_spec


@pytest.fixture
def spec() -> ModelSpec:
    return _make_spec()
