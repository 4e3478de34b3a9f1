"""What every gate shares: the :class:`Gate` verdict, the thresholds, and scoring rows through ONNX
exactly as the serving path builds its inputs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from conveyor.scoring import OnnxModel, Prediction
from conveyor.tabular import inputs_from_frame, typed_frame


@dataclass
class Gate:
    """One gate's verdict: the measured ``value`` against its ``threshold``, and why."""

    name: str
    value: float | None
    threshold: float | None
    passed: bool
    message: str


@dataclass(frozen=True)
class GateThresholds:
    """Limits for the gates of :func:`run_gates` (the spec's ``gates:`` section maps onto these).

    Attributes
    ----------
    max_slice_gap
        Largest allowed gap of one metric between two slices of a column.
    min_slice_rows
        Slices with fewer rows are reported but left out of the gaps.
    max_flip_rate
        Largest allowed share of predictions that change under small input noise.
    noise_scale
        Std of the Gaussian noise added to a numeric feature, as a fraction of its std.
    swap_rate
        Share of categorical (and boolean) values swapped to another observed value.
    min_agreement
        Smallest allowed agreement of the candidate's predictions with the champion's.
    max_importance_share
        Largest share of total permutation importance a sensitive or identifier feature may carry.
    max_p99_ms_single, max_p99_ms_batch
        p99 latency ceilings (ms) of a 1-row and a ``BATCH_ROWS``-row ONNX call (thread CPU time,
        median of trials: conveyor.gates.latency).
    max_latency_ratio
        Largest allowed ratio of the candidate's p99 to the champion's, measured side by side.
    max_model_mb
        Largest ONNX model size in MB (10**6 bytes).
    seed
        Seeds noise, swaps, permutations and subsampling.
    """

    max_slice_gap: float = 0.25
    min_slice_rows: int = 30
    max_flip_rate: float = 0.10
    noise_scale: float = 0.05
    swap_rate: float = 0.05
    min_agreement: float = 0.70
    max_importance_share: float = 0.5
    max_p99_ms_single: float = 10.0
    max_p99_ms_batch: float = 50.0
    max_latency_ratio: float = 1.5
    max_model_mb: float = 50.0
    seed: int = 0


# --- scoring helpers -------------------------------------------------------------------------


def model_frame(model: OnnxModel, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the feature types the model was exported with (as the serving path types rows)."""
    return typed_frame(frame, model.feature_types)


def predict_frame(model: OnnxModel, typed: pd.DataFrame) -> Prediction:
    """Score rows already typed by :func:`model_frame` (gates that perturb rows type them once)."""
    return model.predict(inputs_from_frame(typed, model.feature_types))


def predict_rows(model: OnnxModel, frame: pd.DataFrame) -> Prediction:
    """Score raw rows as the serving path does. Raises DataError/ArtifactError on missing inputs."""
    return predict_frame(model, model_frame(model, frame))


def is_binary(model: OnnxModel) -> bool:
    return model.task == "classification" and model.classes is not None and len(model.classes) == 2


def same_labels(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # classes may come back as int64 from one model and str from another: compare as text
    return np.asarray(a).astype(str) == np.asarray(b).astype(str)
