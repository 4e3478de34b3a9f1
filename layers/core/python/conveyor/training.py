"""Build, split and train the scikit-learn pipeline a spec describes.

Seeds come from ``spec.split.seed``: the same data and spec give the same model.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from conveyor.errors import DataError, TrainingError
from conveyor.spec import ModelSpec
from conveyor.tabular import MISSING_CATEGORY, feature_frame, missing_sentinels, target_vector

if TYPE_CHECKING:
    from conveyor.onnx_export import ParityReport

logger = logging.getLogger(__name__)

CATEGORY_FILL = "__missing__"
ESTIMATORS: dict[tuple[str, str], type[Any]] = {
    ("logistic_regression", "classification"): LogisticRegression,
    ("linear_regression", "regression"): LinearRegression,
    ("random_forest", "classification"): RandomForestClassifier,
    ("random_forest", "regression"): RandomForestRegressor,
    ("hist_gradient_boosting", "classification"): HistGradientBoostingClassifier,
    ("hist_gradient_boosting", "regression"): HistGradientBoostingRegressor,
}
LIBRARIES = ("scikit-learn", "skl2onnx", "onnx", "onnxruntime", "numpy", "pandas", "pyarrow")
SCALED_ESTIMATORS = frozenset({"logistic_regression", "linear_regression"})
# Defaults that keep training small and fast in a Lambda; spec params override them.
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "logistic_regression": {"max_iter": 1000},
    "random_forest": {"n_estimators": 100, "max_depth": 10, "n_jobs": 1},
    "hist_gradient_boosting": {"early_stopping": False},
}


@dataclass
class TrainResult:
    """A trained pipeline with the split it was trained and measured on."""

    pipeline: Pipeline
    train_df: pd.DataFrame
    holdout_df: pd.DataFrame
    metrics: dict[str, float]
    n_train: int
    n_holdout: int
    classes: list[Any] | None
    seconds: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)


def _estimator(spec: ModelSpec) -> Any:
    key = (spec.estimator.type, spec.task)
    if key not in ESTIMATORS:
        raise TrainingError(
            f"estimator.type: {spec.estimator.type} is not supported for {spec.task}",
            details={"estimator": spec.estimator.type, "task": spec.task},
        )
    cls = ESTIMATORS[key]
    params = {**DEFAULT_PARAMS.get(spec.estimator.type, {}), **spec.estimator.params}
    if spec.estimator.class_weight is not None:
        if spec.task != "classification":
            raise TrainingError("estimator.class_weight: only for classification", details={"task": spec.task})
        params["class_weight"] = spec.estimator.class_weight
    if "random_state" in inspect.signature(cls).parameters:
        params.setdefault("random_state", spec.split.seed)
    try:
        return cls(**params)
    except TypeError as exc:
        raise TrainingError(f"estimator.params: {exc}", details={"params": spec.estimator.params}) from None


def build_pipeline(spec: ModelSpec) -> Pipeline:
    """ColumnTransformer (numbers: median [+ scale]; categories: constant + one-hot) then the estimator.

    Only linear models get a StandardScaler. Trees are invariant to scaling, and scaling
    breaks their ONNX parity: sklearn scales in float64, onnxruntime in float32, and a 1-ulp
    difference flips samples sitting exactly on a split threshold (seen: 0.24 max abs diff in
    probabilities for hist_gradient_boosting on the demo data).
    """
    numeric = [name for name, f in spec.features.items() if not f.is_category]
    categories = [name for name, f in spec.features.items() if f.is_category]
    transformers: list[tuple[str, Any, list[str]]] = []
    if numeric:
        steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy="median"))]
        if spec.estimator.type in SCALED_ESTIMATORS:
            steps.append(("scale", StandardScaler()))
        transformers.append(("num", Pipeline(steps), numeric))
    if categories:
        encode = Pipeline(
            [
                (
                    "impute",
                    SimpleImputer(strategy="constant", missing_values=MISSING_CATEGORY, fill_value=CATEGORY_FILL),
                ),
                ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
            ]
        )
        transformers.append(("cat", encode, categories))
    prepare = ColumnTransformer(transformers, remainder="drop", sparse_threshold=0.0)
    return Pipeline([("prepare", prepare), ("model", _estimator(spec))])


def _group_column(df: pd.DataFrame, spec: ModelSpec) -> str | None:
    for name in spec.identifiers:
        if name in df.columns:
            return name
    return None


def _stable_fraction(keys: pd.Series, seed: int) -> np.ndarray:
    """A number in [0, 1) per key that depends only on the key and the seed."""
    hashed = pd.util.hash_pandas_object(keys.astype(str), index=False, hash_key=f"conveyor{seed:08d}"[:16])
    return hashed.to_numpy(dtype=np.uint64) / float(2**64)


def split_strategy(df: pd.DataFrame, spec: ModelSpec) -> str:
    """The split a spec asks for; ``auto`` is grouped when an identifier is in the data, else temporal
    when the time column is, else random (by row content)."""
    strategy = spec.split.strategy
    if strategy != "auto":
        return strategy
    group = _group_column(df, spec)
    if group is not None and df[group].nunique() >= 2:
        return "grouped"
    if spec.time_column and spec.time_column in df.columns and df[spec.time_column].nunique() >= 2:
        return "temporal"
    return "random"


def _temporal_split(df: pd.DataFrame, spec: ModelSpec) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train on the past, hold out the latest rows (about ``holdout_fraction`` of them, whole time
    values kept together); entities of the holdout are removed from training, so none leaks across."""
    time_column = str(spec.time_column)
    if time_column not in df.columns:
        raise DataError(f"split.strategy temporal needs the time column {time_column!r} in the data")
    raw = df[time_column]
    times = raw if pd.api.types.is_numeric_dtype(raw) else pd.to_datetime(raw, errors="coerce", utc=True)
    if bool(times.isna().any()):
        raise DataError(f"time column {time_column!r} has values that are not times", details={"column": time_column})
    cutoff = times.quantile(1.0 - spec.split.holdout_fraction, interpolation="higher")
    holdout = (times >= cutoff).to_numpy()
    if holdout.all():  # a single time value at the top: hold out only the rows after the rest
        holdout = (times > times.min()).to_numpy()
    group = _group_column(df, spec)
    train = ~holdout
    if group is not None:
        train &= ~df[group].isin(set(df.loc[holdout, group])).to_numpy()
    if not train.any() or not holdout.any():
        raise DataError(
            f"the temporal split on {time_column!r} leaves one side empty; add data or change split.holdout_fraction",
            details={"rows": len(df)},
        )
    return df[train], df[holdout]


def split_holdout(df: pd.DataFrame, spec: ModelSpec) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Holdout split by ``split_strategy``. Grouped and random splits are stable: an entity (the first
    identifier present) or, without one, a row's content lands on the same side in every training run.

    Stability is what makes champion and challenger comparable: when v2 is trained on more data than v1,
    v2's holdout holds only entities that were in v1's holdout too, so the champion is never scored on
    rows it was trained on. Without an identifier, identical rows are kept on one side.

    Raises
    ------
    DataError
        If the frame is too small to split, or the split leaves one side empty.
    """
    if len(df) < 2:
        raise DataError(f"need at least 2 rows to split, got {len(df)}", details={"rows": len(df)})
    fraction, seed = spec.split.holdout_fraction, spec.split.seed
    strategy = split_strategy(df, spec)
    if strategy == "temporal":
        return _temporal_split(df, spec)
    group = _group_column(df, spec)
    if strategy == "grouped" and (group is None or df[group].nunique() < 2):
        raise DataError("split.strategy grouped needs an identifier column with at least two values in the data")
    keys = df[group] if strategy == "grouped" else pd.util.hash_pandas_object(df, index=False).astype(str)
    holdout = _stable_fraction(keys, seed) < fraction
    if holdout.all() or not holdout.any():
        raise DataError(
            f"the holdout split of {len(df)} rows leaves one side empty; add data or change split.holdout_fraction",
            details={"rows": len(df), "holdout_fraction": fraction},
        )
    return df[~holdout], df[holdout]


def check_before_training(df: pd.DataFrame, spec: ModelSpec) -> None:
    """The checks that stop a training run before any fitting time is spent.

    Raises
    ------
    TrainingError
        If the estimator is unsupported, a feature or the target column is missing from the data,
        or a classification target has a single class; the message names the problem.
    """
    _estimator(spec)
    missing = [name for name in spec.features if name not in df.columns]
    if missing:
        raise TrainingError(f"feature column(s) missing from data: {', '.join(missing)}", details={"columns": missing})
    if spec.target.column not in df.columns:
        raise TrainingError(
            f"target column {spec.target.column!r} missing from data", details={"column": spec.target.column}
        )
    if spec.task == "classification":
        try:
            classes = np.unique(target_vector(df, spec))
        except DataError as exc:
            raise TrainingError(exc.message, details=exc.details) from None
        if len(classes) < 2:
            raise TrainingError(
                f"target {spec.target.column!r} has a single class ({classes.tolist()}); need at least two",
                details={"classes": classes.tolist()},
            )


def _float32_floor(thresholds: np.ndarray) -> np.ndarray:
    """The largest float32 not above each value."""
    rounded = thresholds.astype(np.float32)
    above = rounded.astype(np.float64) > thresholds
    rounded[above] = np.nextafter(rounded[above], np.float32(-np.inf))
    return rounded.astype(np.float64)


def align_split_thresholds_to_float32(estimator: Any) -> None:
    """Make a fitted tree ensemble decide float32 inputs exactly as its ONNX export does.

    ONNX tree ensembles compare float32 inputs with float32 thresholds (skl2onnx 1.20 writes
    ``nodes_values`` even at ai.onnx.ml 3). A threshold fitted between two adjacent float32 values
    (0.53739997744 between 0.53739994764 and 0.53740000725) rounds onto one of them, and rows
    with exactly that value go left in onnxruntime and right in scikit-learn: parity fails (seen
    at 1,000,000 rows: one row off by 0.12). Lowering every threshold to the largest float32 not
    above it changes no decision for float32 data (x <= t and x <= floor32(t) agree for float32 x)
    and makes the exported float32 threshold exact. Linear models have no thresholds: no-op.
    """
    for stage in getattr(estimator, "_predictors", None) or []:  # HistGradientBoosting
        for predictor in stage:
            nodes = predictor.nodes
            splits = ~nodes["is_leaf"].astype(bool)
            nodes["num_threshold"][splits] = _float32_floor(nodes["num_threshold"][splits])
    for tree in getattr(estimator, "estimators_", None) or []:  # random forest: one tree_ each
        thresholds = tree.tree_.threshold  # a writable view of the tree's nodes
        splits = tree.tree_.children_left >= 0
        thresholds[splits] = _float32_floor(thresholds[splits])


def train_model(df: pd.DataFrame, spec: ModelSpec) -> TrainResult:
    """Split, fit on the train part and measure on the holdout.

    Raises
    ------
    TrainingError
        Before any fitting, if features are missing, the target has one class, or the
        estimator is unsupported; after, if fitting fails.
    """
    from conveyor.evaluation import metrics_from_arrays

    check_before_training(df, spec)
    started = time.perf_counter()
    try:
        train_df, holdout_df = split_holdout(df, spec)
        x_train, y_train = feature_frame(train_df, spec), target_vector(train_df, spec)
        x_holdout, y_holdout = feature_frame(holdout_df, spec), target_vector(holdout_df, spec)
    except DataError as exc:
        raise TrainingError(exc.message, details=exc.details) from None
    if spec.task == "classification" and len(np.unique(y_train)) < 2:
        raise TrainingError("the training split has a single class; more data is needed")
    pipeline = build_pipeline(spec)
    try:
        pipeline.fit(x_train, y_train)
    except (ValueError, TypeError) as exc:
        raise TrainingError(f"fitting {spec.estimator.type} failed: {str(exc)[:300]}") from None
    align_split_thresholds_to_float32(pipeline.named_steps["model"])
    classes: list[Any] | None = None
    if spec.task == "classification":
        classes = [c.item() if isinstance(c, np.generic) else c for c in pipeline.classes_]
        metrics = metrics_from_arrays(
            spec.task, y_holdout, pipeline.predict(x_holdout), pipeline.predict_proba(x_holdout), classes
        )
    else:
        metrics = metrics_from_arrays(spec.task, y_holdout, pipeline.predict(x_holdout), None, None)
    seconds = time.perf_counter() - started
    logger.info("trained", extra={"estimator": spec.estimator.type, "rows": len(train_df), "seconds": seconds})
    return TrainResult(
        pipeline=pipeline,
        train_df=train_df,
        holdout_df=holdout_df,
        metrics=metrics,
        n_train=len(train_df),
        n_holdout=len(holdout_df),
        classes=classes,
        seconds=seconds,
        params=pipeline.named_steps["model"].get_params(),
    )


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape a model (recorded in its lineage)."""
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


# Steps of build_candidate, in order (reported through its on_step callback).
CANDIDATE_STEPS = ("check", "train", "export", "parity", "profile")


@dataclass
class Candidate:
    """A trained candidate, exported to ONNX, checked for parity and profiled: what the Train stage
    and ``conveyor train`` both produce from the same data and spec."""

    spec: ModelSpec
    result: TrainResult
    onnx: bytes
    sha256: str
    spec_hash: str
    split: str
    parity: ParityReport
    profile: dict[str, Any]
    seconds: dict[str, float]

    def summary(self) -> dict[str, Any]:
        """JSON-able facts about the candidate (metrics, parity, split, sizes, libraries)."""
        from conveyor.jsonsafe import json_safe

        return json_safe(
            {
                "model": self.spec.name,
                "task": self.spec.task,
                "estimator": self.spec.estimator.type,
                "params": self.spec.estimator.params,
                "spec_hash": self.spec_hash,
                "sha256": self.sha256,
                "split": self.split,
                "n_train": self.result.n_train,
                "n_holdout": self.result.n_holdout,
                "metrics": self.result.metrics,
                "parity": self.parity.to_dict(),
                "size_bytes": len(self.onnx),
                "seconds": {name: round(value, 3) for name, value in self.seconds.items()},
                "libraries": library_versions(),
            }
        )


def build_candidate(
    frame: pd.DataFrame, spec: ModelSpec, *, on_step: Callable[[str, str, float], None] | None = None
) -> Candidate:
    """Check, train, export to ONNX, measure parity on the holdout and build the reference profile.

    ``on_step(step, "started" | "done", seconds)`` is called around each of ``CANDIDATE_STEPS``.

    Raises
    ------
    TrainingError
        Before any fitting when the data or spec cannot train (see :func:`check_before_training`).
    ArtifactError
        If the pipeline cannot be exported to ONNX.
    """
    from conveyor.onnx_export import export_onnx, parity
    from conveyor.registry import sha256_hex
    from conveyor.spec import spec_hash

    seconds: dict[str, float] = {}
    hashed = spec_hash(spec)
    # Declared sentinels are missing values: the holdout, the profile and the model all see them as such.
    frame = missing_sentinels(frame, spec)

    def step(name: str, run: Callable[[], Any]) -> Any:
        if on_step is not None:
            on_step(name, "started", 0.0)
        started = time.perf_counter()
        value = run()
        seconds[name] = time.perf_counter() - started
        if on_step is not None:
            on_step(name, "done", seconds[name])
        return value

    step("check", lambda: check_before_training(frame, spec))
    result: TrainResult = step("train", lambda: train_model(frame, spec))
    onnx_bytes: bytes = step(
        "export", lambda: export_onnx(result.pipeline, spec, classes=result.classes, spec_hash=hashed)
    )
    check: ParityReport = step("parity", lambda: parity(result.pipeline, onnx_bytes, result.holdout_df, spec))
    # The reference profile of what this candidate learned from: drift checks read it, never the data.
    profile: dict[str, Any] = step("profile", lambda: _reference_profile(result, spec))
    return Candidate(
        spec=spec,
        result=result,
        onnx=onnx_bytes,
        sha256=sha256_hex(onnx_bytes),
        spec_hash=hashed,
        split=split_strategy(frame, spec),
        parity=check,
        profile=profile,
        seconds=seconds,
    )


def holdout_scores(result: TrainResult, spec: ModelSpec) -> list[float | str]:
    """The holdout's scores as the live monitor reads them from capture (``conveyor.monitoring.scores``):
    the probability of the last class (as text) for binary classifiers, the label for more classes,
    the prediction for regression."""
    x_holdout = feature_frame(result.holdout_df, spec)
    if spec.task == "classification" and result.classes is not None and len(result.classes) == 2:
        positive = max(range(2), key=lambda i: str(result.classes[i]) if result.classes else "")
        return [float(p) for p in result.pipeline.predict_proba(x_holdout)[:, positive]]
    predictions = result.pipeline.predict(x_holdout)
    if spec.task == "classification":
        return [str(p.item() if isinstance(p, np.generic) else p) for p in predictions]
    return [float(p) for p in predictions]


def _reference_profile(result: TrainResult, spec: ModelSpec) -> dict[str, Any]:
    """The training data's profile, with the holdout's score distribution (the live monitor's reference)."""
    from conveyor.monitoring.scores import distribution
    from conveyor.profile import build_profile

    profile = build_profile(result.train_df, spec)
    profile.scores = distribution(holdout_scores(result, spec))
    return profile.to_dict()
