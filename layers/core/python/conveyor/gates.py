"""Model gates beyond the primary metric: slices, robustness, agreement, explainability, latency, size.

The primary-metric gate lives in :mod:`conveyor.evaluation`; :func:`parity_gate` judges the ONNX
parity measured at training time; :func:`run_gates` adds the others. :func:`assess_candidate`
puts every gate together: the Evaluate stage and ``conveyor evaluate`` both call it. Every gate
is a :class:`conveyor.evaluation.Gate`.

Every model is scored through ONNX, with inputs built by :mod:`conveyor.tabular` from the
feature types the model was exported with, exactly as the serving path builds them.

Randomness (noise, category swaps, permutations) comes from one ``numpy`` generator seeded
with ``GateThresholds.seed``: the same models and holdout give the same report, except for
the latency numbers.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from conveyor.errors import ArtifactError, ConveyorError, DataError
from conveyor.evaluation import Evaluation, Gate, evaluate_candidate, primary_score
from conveyor.scoring import OnnxModel, Prediction
from conveyor.spec import HIGHER_IS_BETTER, ModelSpec
from conveyor.tabular import MISSING_CATEGORY, category_strings, inputs_from_frame, target_vector, typed_frame

logger = logging.getLogger(__name__)

MISSING_SLICE = "(missing)"
MAX_SLICE_VALUES = 10  # a numeric slice column with more distinct values is cut into quantile bins
SLICE_BINS = 4
REGRESSION_MOVE = 0.10  # a regression prediction "flips" when it moves by more than this share of std(target)
IMPORTANCE_MAX_ROWS = 2000  # permutation importance subsamples larger holdouts (seeded)
IMPORTANCE_REPEATS = 3
TOP_FEATURES = 5
SINGLE_RUNS = 200
BATCH_RUNS = 50
BATCH_ROWS = 100
WARMUP_RUNS = 10
_NUMERIC_TYPES = frozenset({"number", "integer"})


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
        p99 latency limits (ms) of a 1-row and a ``BATCH_ROWS``-row ONNX call.
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
    max_model_mb: float = 50.0
    seed: int = 0


@dataclass
class GateReport:
    """The gates of :func:`run_gates` and the evidence behind them; ``to_dict()`` is JSON-able."""

    gates: list[Gate]
    slices: dict[str, Any] = field(default_factory=dict)
    importance: dict[str, Any] = field(default_factory=dict)
    latency: dict[str, Any] = field(default_factory=dict)
    flip_rate: float | None = None
    agreement: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return all(gate.passed for gate in self.gates)

    @property
    def failed(self) -> list[str]:
        """Names of the gates that failed."""
        return [gate.name for gate in self.gates if not gate.passed]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["passed"] = self.passed
        data["seconds"] = round(self.seconds, 3)
        return json_safe(data)


def json_safe(value: Any) -> Any:
    """A copy of ``value`` that ``json.dumps`` accepts: numpy scalars unwrapped, NaN/inf -> None."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return [json_safe(v) for v in value.tolist()]
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# --- scoring helpers -------------------------------------------------------------------------


def _typed(model: OnnxModel, frame: pd.DataFrame) -> pd.DataFrame:
    return typed_frame(frame, model.feature_types)


def _predict_typed(model: OnnxModel, typed: pd.DataFrame) -> Prediction:
    return model.predict(inputs_from_frame(typed, model.feature_types))


def _predict(model: OnnxModel, frame: pd.DataFrame) -> Prediction:
    """Score raw rows as the serving path does. Raises DataError/ArtifactError on missing inputs."""
    return _predict_typed(model, _typed(model, frame))


def _is_binary(model: OnnxModel) -> bool:
    return model.task == "classification" and model.classes is not None and len(model.classes) == 2


def _same_labels(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # classes may come back as int64 from one model and str from another: compare as text
    return np.asarray(a).astype(str) == np.asarray(b).astype(str)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


# --- slices ----------------------------------------------------------------------------------


def _slice_keys(column: pd.Series) -> pd.Series:
    """Slice label per row: the value as text, or a quantile bin for a many-valued numeric column."""
    numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
    if numeric and column.nunique(dropna=True) > MAX_SLICE_VALUES:
        binned = pd.qcut(column, q=SLICE_BINS, duplicates="drop")
        keys = binned.astype("string").fillna(MISSING_SLICE)
        return pd.Series(keys.to_numpy(dtype=object), index=column.index)
    keys = category_strings(column)
    return keys.where(keys != MISSING_CATEGORY, MISSING_SLICE)


def _rate(mask: np.ndarray, within: np.ndarray) -> float | None:
    total = int(within.sum())
    return float((mask & within).sum() / total) if total else None


def _slice_row(model: OnnxModel, y_true: np.ndarray, prediction: Prediction, scale: float) -> dict[str, Any]:
    rows = len(y_true)
    if _is_binary(model):
        assert model.classes is not None and prediction.probabilities is not None
        positive_class = str(model.classes[1])
        actual = np.asarray(y_true).astype(str) == positive_class
        predicted = np.asarray(prediction.labels).astype(str) == positive_class
        auc = None
        if actual.any() and not actual.all():
            auc = float(skm.roc_auc_score(actual, prediction.probabilities[:, 1]))
        return {
            "rows": rows,
            "positive_rate": float(predicted.mean()),
            "base_rate": float(actual.mean()),
            "tpr": _rate(predicted, actual),
            "fpr": _rate(predicted, ~actual),
            "auc": auc,
        }
    if model.task == "classification":
        return {"rows": rows, "accuracy": float(_same_labels(y_true, prediction.labels).mean())}
    errors = np.abs(np.asarray(y_true, dtype=np.float64) - prediction.values)
    mae = float(errors.mean())
    return {"rows": rows, "mae": mae, "nmae": mae / scale if scale > 0 else None}


def _gap_metrics(model: OnnxModel) -> tuple[str, ...]:
    if _is_binary(model):
        return ("positive_rate", "tpr", "fpr", "auc")
    if model.task == "classification":
        return ("accuracy",)
    return ("nmae",)  # MAE over std(target): comparable with max_slice_gap whatever the target's unit


def slice_metrics(
    model: OnnxModel,
    frame: pd.DataFrame,
    y_true: np.ndarray,
    columns: Sequence[str],
    *,
    min_slice_rows: int = 30,
) -> dict[str, Any]:
    """Per column, per slice value: rows and metrics; per metric, the largest gap between slices.

    A slice column is read from ``frame`` and need not be a model feature. A numeric column with
    more than ``MAX_SLICE_VALUES`` distinct values is cut into ``SLICE_BINS`` quantile bins; nulls
    form the slice ``"(missing)"``.

    Per slice, binary classification reports ``rows``, ``positive_rate`` (share predicted
    positive), ``base_rate`` (share actually positive), ``tpr``, ``fpr`` and ``auc`` (None when the
    slice holds one class); multiclass reports ``accuracy``; regression reports ``mae`` and
    ``nmae`` (MAE divided by the std of the whole ``y_true``).

    Returns
    -------
    dict
        ``{column: {"slices": {value: {...}}, "gaps": {metric: {"gap", "low", "high",
        "low_value", "high_value"}}, "small_slices": [value, ...]}}``. Gaps only use slices with
        at least ``min_slice_rows`` rows and a defined metric; a column missing from ``frame``
        gets ``{"error": ...}`` instead.
    """
    y_true = np.asarray(y_true)
    prediction = _predict(model, frame)
    scale = float(np.std(np.asarray(y_true, dtype=np.float64))) if model.task == "regression" else 0.0
    result: dict[str, Any] = {}
    for column in columns:
        if column not in frame.columns:
            result[column] = {"error": f"column {column!r} is not in the holdout"}
            continue
        keys = _slice_keys(frame[column]).to_numpy(dtype=object)
        slices: dict[str, dict[str, Any]] = {}
        for value in sorted(set(keys.tolist()), key=str):
            mask = keys == value
            part = Prediction(
                labels=prediction.labels[mask],
                probabilities=None if prediction.probabilities is None else prediction.probabilities[mask],
            )
            slices[str(value)] = _slice_row(model, y_true[mask], part, scale)
        large = {name: row for name, row in slices.items() if row["rows"] >= min_slice_rows}
        gaps: dict[str, dict[str, Any]] = {}
        for metric in _gap_metrics(model):
            defined = {name: row[metric] for name, row in large.items() if row.get(metric) is not None}
            if len(defined) < 2:
                continue
            low = min(defined, key=lambda name: defined[name])
            high = max(defined, key=lambda name: defined[name])
            gaps[metric] = {
                "gap": defined[high] - defined[low],
                "low": low,
                "high": high,
                "low_value": defined[low],
                "high_value": defined[high],
            }
        result[column] = {
            "slices": slices,
            "gaps": gaps,
            "small_slices": sorted(name for name in slices if name not in large),
        }
    return result


def _slice_gate(slices: dict[str, Any], thresholds: GateThresholds) -> Gate:
    name, limit = "slice_gap", thresholds.max_slice_gap
    if not slices:
        return Gate(
            name, None, limit, True, "no slice columns (spec.sensitive and spec.slices are empty): gaps not measured"
        )
    worst: tuple[float, str, str, dict[str, Any]] | None = None
    for column, entry in slices.items():
        for metric, gap in entry.get("gaps", {}).items():
            if worst is None or gap["gap"] > worst[0]:
                worst = (gap["gap"], column, metric, gap)
    missing = [column for column, entry in slices.items() if "error" in entry]
    note = f"; not in the holdout: {', '.join(missing)}" if missing else ""
    if worst is None:
        return Gate(name, None, limit, True, f"no slice gap measurable (fewer than two large slices){note}")
    value, column, metric, gap = worst
    passed = value <= limit
    sign = "<=" if passed else ">"
    message = (
        f"largest gap: {column} {metric} {value:.3f} {sign} {limit:.3f} "
        f"(slice {gap['low']!r} {gap['low_value']:.3f} vs {gap['high']!r} {gap['high_value']:.3f}){note}"
    )
    return Gate(name, value, limit, passed, message)


# --- noise robustness ------------------------------------------------------------------------


def _perturb(typed: pd.DataFrame, feature_types: Mapping[str, str], thresholds: GateThresholds) -> pd.DataFrame:
    """Gaussian noise on number/integer features (integers rounded back), swaps on category/boolean ones."""
    rng = np.random.default_rng(thresholds.seed)
    noisy = typed.copy()
    for name, kind in feature_types.items():
        values = typed[name].to_numpy()
        if kind in _NUMERIC_TYPES:
            numbers = values.astype(np.float64)
            std = float(np.nanstd(numbers)) if np.isfinite(numbers).any() else 0.0
            moved = numbers + rng.normal(0.0, thresholds.noise_scale * std, size=len(numbers))
            if kind == "integer":
                moved = np.round(moved)
            noisy[name] = moved.astype(np.float32)  # NaN stays NaN
            continue
        observed = pd.unique(values[pd.notna(values)])
        swap = rng.random(len(values)) < thresholds.swap_rate
        if len(observed) < 2 or not swap.any():
            continue
        swapped = values.copy()
        for i in np.flatnonzero(swap):
            others = observed[observed != values[i]]
            swapped[i] = others[rng.integers(len(others))]
        noisy[name] = pd.Series(swapped, index=typed.index).astype(typed[name].dtype)
    return noisy


def noise_flip_rate(
    model: OnnxModel, frame: pd.DataFrame, spec: ModelSpec, thresholds: GateThresholds | None = None
) -> float:
    """Share of rows whose prediction changes under small, seeded input noise.

    Numeric features get Gaussian noise with std ``noise_scale * std(feature)`` (integers are
    rounded back); each category or boolean value is swapped, with probability ``swap_rate``, to
    another value observed in that column. Classification counts changed labels. Regression
    counts predictions that move by more than ``REGRESSION_MOVE`` (10%) of the target's std in
    ``frame`` (of the predictions' std when the target column is absent).
    """
    thresholds = thresholds or GateThresholds()
    if frame.empty:
        return 0.0
    typed = _typed(model, frame)
    before = _predict_typed(model, typed)
    after = _predict_typed(model, _perturb(typed, model.feature_types, thresholds))
    if model.task == "classification":
        return float(np.mean(~_same_labels(before.labels, after.labels)))
    if spec.target.column in frame.columns:
        scale = float(np.std(target_vector(frame, spec).astype(np.float64)))
    else:
        scale = float(np.std(before.values))
    moved = np.abs(after.values - before.values)
    return float(np.mean(moved > REGRESSION_MOVE * scale))


def _noise_gate(flip_rate: float, thresholds: GateThresholds) -> Gate:
    limit = thresholds.max_flip_rate
    passed = flip_rate <= limit
    sign = "<=" if passed else ">"
    message = (
        f"{flip_rate:.1%} of predictions change under noise "
        f"({thresholds.noise_scale:g} std, {thresholds.swap_rate:.0%} category swaps) {sign} {limit:.1%}"
    )
    return Gate("noise_robustness", flip_rate, limit, passed, message)


# --- agreement with the champion -------------------------------------------------------------


def agreement(candidate: OnnxModel, champion: OnnxModel, rows: pd.DataFrame | Sequence[Mapping[str, Any]]) -> float:
    """How often candidate and champion agree on the same rows (a holdout frame or live instance dicts).

    Classification: the share of identical labels. Regression: ``1 - mean|a - b| / std`` clipped
    to [0, 1], where ``std`` is that of both models' predictions pooled (identical constant
    predictions give 1.0). Empty input gives 1.0.

    Raises
    ------
    DataError, ArtifactError
        If either model cannot score the rows (e.g. a feature column is missing).
    """
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    if frame.empty:
        return 1.0
    ours, theirs = _predict(candidate, frame), _predict(champion, frame)
    if candidate.task == "classification":
        return float(np.mean(_same_labels(ours.labels, theirs.labels)))
    difference = float(np.mean(np.abs(ours.values - theirs.values)))
    scale = float(np.std(np.concatenate([ours.values, theirs.values])))
    if scale == 0.0:
        return 1.0 if difference == 0.0 else 0.0
    return float(min(1.0, max(0.0, 1.0 - difference / scale)))


def _agreement_evidence(
    candidate: OnnxModel,
    champion: OnnxModel | None,
    holdout: pd.DataFrame,
    live_instances: Sequence[Mapping[str, Any]] | None,
) -> dict[str, Any]:
    evidence: dict[str, Any] = {"holdout": None, "live": None, "live_rows": len(live_instances or [])}
    if champion is None:
        return evidence
    try:
        evidence["holdout"] = agreement(candidate, champion, holdout)
    except (ConveyorError, ValueError) as exc:
        evidence["holdout_error"] = str(exc)[:300]
    if live_instances:
        try:
            evidence["live"] = agreement(candidate, champion, live_instances)
        except (ConveyorError, ValueError) as exc:
            evidence["live_error"] = str(exc)[:300]
    return evidence


def _agreement_gate(evidence: dict[str, Any], has_champion: bool, thresholds: GateThresholds) -> Gate:
    name, limit = "inference_agreement", thresholds.min_agreement
    if not has_champion:
        return Gate(name, None, limit, True, "no champion: agreement not measured")
    measured = {key: evidence[key] for key in ("holdout", "live") if evidence.get(key) is not None}
    errors = "; ".join(
        f"{key}: {evidence[key + '_error']}" for key in ("holdout", "live") if key + "_error" in evidence
    )
    if not measured:
        return Gate(name, None, limit, True, f"champion cannot score these rows, agreement not measured ({errors})")
    value = min(measured.values())
    passed = value >= limit
    sign = ">=" if passed else "<"
    parts = [f"{key} {score:.1%}" for key, score in measured.items()]
    if "live" in measured:
        parts[-1] += f" of {evidence['live_rows']} live requests"
    message = f"agreement with the champion {', '.join(parts)}: lowest {value:.1%} {sign} {limit:.1%}"
    if errors:
        message += f"; not measured: {errors}"
    return Gate(name, value, limit, passed, message)


# --- permutation importance ------------------------------------------------------------------


def permutation_importance(
    model: OnnxModel,
    frame: pd.DataFrame,
    y_true: np.ndarray,
    spec: ModelSpec,
    *,
    metric: str | None = None,
    n_repeats: int = IMPORTANCE_REPEATS,
    seed: int = 0,
) -> dict[str, float]:
    """Drop of ``metric`` (default: the spec's primary metric) when one feature column is shuffled.

    Computed through ONNX on the model's own inputs: each feature is shuffled ``n_repeats`` times
    (seeded) and the mean drop recorded, signed so that a positive value always means "the model
    needs this feature" (for lower-is-better metrics the drop is ``permuted - baseline``). A
    negative value means shuffling helped, i.e. noise. :func:`importance_shares` normalizes.
    """
    metric = metric or spec.primary_metric
    higher = metric in HIGHER_IS_BETTER
    y_true = np.asarray(y_true)
    typed = _typed(model, frame)
    baseline = primary_score(metric, y_true, _predict_typed(model, typed), model.classes)
    rng = np.random.default_rng(seed)
    importance: dict[str, float] = {}
    for name in model.feature_types:
        original = typed[name].to_numpy()
        drops = []
        for _ in range(n_repeats):
            shuffled = typed.copy()
            shuffled[name] = pd.Series(rng.permutation(original), index=typed.index).astype(typed[name].dtype)
            score = primary_score(metric, y_true, _predict_typed(model, shuffled), model.classes)
            drops.append(baseline - score if higher else score - baseline)
        importance[name] = float(np.nanmean(drops)) if not np.isnan(drops).all() else math.nan
    return importance


def importance_shares(importance: Mapping[str, float]) -> dict[str, float]:
    """Each feature's share of the total positive importance (negative and NaN count as 0)."""
    clipped = {name: max(0.0, value) if math.isfinite(value) else 0.0 for name, value in importance.items()}
    total = sum(clipped.values())
    return {name: (value / total if total > 0 else 0.0) for name, value in clipped.items()}


def _importance_evidence(
    model: OnnxModel, holdout: pd.DataFrame, y_true: np.ndarray, spec: ModelSpec, seed: int
) -> dict[str, Any]:
    frame, labels = holdout, y_true
    if len(holdout) > IMPORTANCE_MAX_ROWS:
        rows = np.sort(np.random.default_rng(seed).choice(len(holdout), IMPORTANCE_MAX_ROWS, replace=False))
        frame, labels = holdout.iloc[rows], y_true[rows]
    metric = spec.primary_metric
    importance = permutation_importance(
        model, frame, labels, spec, metric=metric, n_repeats=IMPORTANCE_REPEATS, seed=seed
    )
    shares = importance_shares(importance)
    ranked = sorted(importance, key=lambda name: shares[name], reverse=True)
    return {
        "metric": metric,
        "rows": len(frame),
        "n_repeats": IMPORTANCE_REPEATS,
        "features": [{"name": name, "importance": importance[name], "share": shares[name]} for name in ranked],
        "top": ranked[:TOP_FEATURES],
    }


def _explainability_gate(evidence: dict[str, Any], spec: ModelSpec, thresholds: GateThresholds) -> Gate:
    name, limit = "explainability", thresholds.max_importance_share
    shares = {row["name"]: row["share"] for row in evidence["features"]}
    top = ", ".join(f"{feature} {shares[feature]:.0%}" for feature in evidence["top"])
    watched = [column for column in dict.fromkeys([*spec.sensitive, *spec.identifiers]) if column in shares]
    if not watched:
        return Gate(name, None, limit, True, f"no sensitive or identifier column is a feature; top: {top}")
    worst = max(watched, key=lambda column: shares[column])
    value = shares[worst]
    passed = value <= limit
    kind = "sensitive" if worst in spec.sensitive else "identifier"
    sign = "<=" if passed else ">"
    message = f"{kind} feature {worst!r} carries {value:.0%} of permutation importance {sign} {limit:.0%}; top: {top}"
    return Gate(name, value, limit, passed, message)


# --- latency and size ------------------------------------------------------------------------


def _timed_ms(call: Callable[[], Any], runs: int) -> np.ndarray:
    for _ in range(WARMUP_RUNS):
        call()
    times = np.empty(runs)
    for i in range(runs):
        started = time.perf_counter()
        call()
        times[i] = (time.perf_counter() - started) * 1000.0
    return times


def latency(
    model: OnnxModel,
    frame: pd.DataFrame,
    *,
    model_bytes: bytes | None = None,
    single_runs: int = SINGLE_RUNS,
    batch_runs: int = BATCH_RUNS,
    batch_rows: int = BATCH_ROWS,
) -> dict[str, Any]:
    """p50/p99 wall time (ms) of ONNX inference on 1 row and on ``batch_rows`` rows, and the model size.

    After ``WARMUP_RUNS`` untimed calls, ``single_runs`` (200) one-row calls cycle through the
    rows of ``frame`` and ``batch_runs`` (50) calls score consecutive ``batch_rows`` (100)-row
    blocks (wrapping around). Only ``OnnxModel.predict`` is timed: input parsing is excluded.
    ``model_mb`` is ``len(model_bytes) / 10**6`` (None without bytes).

    Raises
    ------
    DataError
        If ``frame`` is empty or lacks a model input.
    """
    if frame.empty:
        raise DataError("latency needs at least one row")
    inputs = inputs_from_frame(_typed(model, frame), model.feature_types)
    n = len(frame)
    repeat = math.ceil(batch_rows / n) + 1
    wrapped = {name: np.concatenate([values] * repeat) for name, values in inputs.items()}
    counter = iter(range(10**9))

    def single() -> Any:
        i = next(counter) % n
        return model.predict({name: values[i : i + 1] for name, values in inputs.items()})

    def batch() -> Any:
        start = (next(counter) * batch_rows) % n
        return model.predict({name: values[start : start + batch_rows] for name, values in wrapped.items()})

    single_ms, batch_ms = _timed_ms(single, single_runs), _timed_ms(batch, batch_runs)
    return {
        "single": {"p50_ms": float(np.percentile(single_ms, 50)), "p99_ms": float(np.percentile(single_ms, 99))},
        "batch": {"p50_ms": float(np.percentile(batch_ms, 50)), "p99_ms": float(np.percentile(batch_ms, 99))},
        "single_runs": single_runs,
        "batch_runs": batch_runs,
        "batch_rows": batch_rows,
        "warmup_runs": WARMUP_RUNS,
        "model_mb": None if model_bytes is None else len(model_bytes) / 1e6,
    }


def _latency_gates(evidence: dict[str, Any], thresholds: GateThresholds) -> list[Gate]:
    gates = []
    for name, key, limit, what in (
        ("latency_single", "single", thresholds.max_p99_ms_single, "1 row"),
        ("latency_batch", "batch", thresholds.max_p99_ms_batch, f"{evidence['batch_rows']} rows"),
    ):
        p99, p50 = evidence[key]["p99_ms"], evidence[key]["p50_ms"]
        passed = p99 <= limit
        sign = "<=" if passed else ">"
        gates.append(Gate(name, p99, limit, passed, f"p99 {p99:.2f} ms {sign} {limit:g} ms for {what} (p50 {p50:.2f})"))
    size, limit = evidence["model_mb"], thresholds.max_model_mb
    if size is None:
        gates.append(Gate("model_size", None, limit, False, "model bytes not given: size not measured"))
    else:
        passed = size <= limit
        sign = "<=" if passed else ">"
        gates.append(Gate("model_size", size, limit, passed, f"ONNX model {size:.2f} MB {sign} {limit:g} MB"))
    return gates


# --- all together ----------------------------------------------------------------------------


def run_gates(
    candidate: OnnxModel,
    champion: OnnxModel | None,
    holdout: pd.DataFrame,
    spec: ModelSpec,
    *,
    candidate_bytes: bytes,
    thresholds: GateThresholds | None = None,
    live_instances: Sequence[Mapping[str, Any]] | None = None,
    slice_columns: Sequence[str] = (),
) -> GateReport:
    """Run the slice, robustness, agreement, explainability, latency and size gates on a holdout.

    Gates, in order: ``slice_gap`` (columns ``spec.sensitive`` + ``spec.slices`` + ``slice_columns``),
    ``noise_robustness``, ``inference_agreement`` (holdout, plus ``live_instances`` when given;
    passes with a message without a champion or when the champion cannot score the rows),
    ``explainability`` (on at most ``IMPORTANCE_MAX_ROWS`` rows), ``latency_single``,
    ``latency_batch``, ``model_size``.

    Raises
    ------
    DataError, ArtifactError
        If the candidate cannot score the holdout or the target is missing.
    """
    thresholds = thresholds or GateThresholds()
    started = time.perf_counter()
    y_true = target_vector(holdout, spec)
    columns = list(dict.fromkeys([*spec.sensitive, *spec.slices, *slice_columns]))
    try:
        slices = slice_metrics(candidate, holdout, y_true, columns, min_slice_rows=thresholds.min_slice_rows)
        flip_rate = noise_flip_rate(candidate, holdout, spec, thresholds)
        importance = _importance_evidence(candidate, holdout, y_true, spec, thresholds.seed)
        timing = latency(candidate, holdout, model_bytes=candidate_bytes)
    except ValueError as exc:  # sklearn metric errors, e.g. labels the model does not know
        raise DataError(f"candidate cannot score the holdout: {str(exc)[:300]}") from None
    except ArtifactError as exc:
        raise DataError(f"candidate cannot score the holdout: {exc}") from None
    agreed = _agreement_evidence(candidate, champion, holdout, live_instances)
    gates = [
        _slice_gate(slices, thresholds),
        _noise_gate(flip_rate, thresholds),
        _agreement_gate(agreed, champion is not None, thresholds),
        _explainability_gate(importance, spec, thresholds),
        *_latency_gates(timing, thresholds),
    ]
    report = GateReport(
        gates=gates,
        slices=slices,
        importance=importance,
        latency=timing,
        flip_rate=flip_rate,
        agreement=agreed,
        seconds=time.perf_counter() - started,
    )
    logger.info(
        "gates run",
        extra={"model": spec.name, "passed": report.passed, "failed": report.failed, "seconds": report.seconds},
    )
    return report


# --- every gate, for the Evaluate stage and `conveyor evaluate` -------------------------------


def thresholds_of(spec: ModelSpec) -> GateThresholds:
    """The spec's gate thresholds, over the defaults for anything it leaves out."""
    fields = GateThresholds.__dataclass_fields__
    given = {k: v for k, v in spec.gates.model_dump().items() if k in fields and v is not None}
    return GateThresholds(**given)


PARITY_GATE = "onnx_parity"
LABEL_AGREEMENT_GATE = "onnx_label_agreement"


def parity_gates(parity: Mapping[str, Any] | None, *, missing_reason: str = "") -> list[Gate]:
    """Gates on the scikit-learn / onnxruntime parity measured on the holdout at training time.

    ``parity`` is :meth:`conveyor.onnx_export.ParityReport.to_dict` (the Train stage's
    ``$.training.parity``, or ``training.json`` of ``conveyor train``), with the tolerances it was
    measured with. Classification gives two gates: ``onnx_parity`` (largest probability difference
    against ``tolerance``) and ``onnx_label_agreement`` (share of identical labels, which must be 1).
    Regression gives one: ``onnx_parity`` with the worst value's share of its allowed difference
    ``tolerance + rtol * |value|`` (at most 1), the largest absolute and relative differences in
    its message.

    Without a measurement (no scikit-learn model at hand, e.g. ``conveyor evaluate`` on ONNX files
    alone) ``onnx_parity`` passes with no value and ``missing_reason`` as its message: it was not
    measured, and says so.
    """
    if parity is None:
        reason = missing_reason or "no parity measurement"
        return [Gate(PARITY_GATE, None, None, True, f"not measured: {reason}")]
    diff, rows = float(parity["max_abs_diff"]), int(parity.get("rows", 0))
    agreement = float(parity.get("label_agreement", 1.0))
    tolerance = float(parity.get("tolerance", 1e-5))
    if parity.get("task") == "regression":
        rtol = float(parity.get("rtol", 0.0))
        used = parity.get("tolerance_used")
        used = float(used) if used is not None else diff / tolerance
        passed = used <= 1.0 and agreement == 1.0
        sign = "<=" if passed else ">"
        relative = parity.get("max_rel_diff")
        message = (
            f"{agreement:.2%} of {rows} holdout values within {tolerance:.0e} + {rtol:.0e} x |value|; "
            f"worst at {used:.2f} of its allowance {sign} 1 (max |sklearn - onnx| {diff:.2e}"
            + (f", max relative {float(relative):.2e})" if relative is not None else ")")
        )
        return [Gate(PARITY_GATE, used, 1.0, passed, message)]
    passed = diff <= tolerance
    sign = "<=" if passed else ">"
    probability = Gate(
        PARITY_GATE,
        diff,
        tolerance,
        passed,
        f"max |sklearn - onnx| probability {diff:.2e} {sign} {tolerance:.0e} on {rows} holdout rows",
    )
    agreed = agreement == 1.0
    labels = Gate(
        LABEL_AGREEMENT_GATE,
        agreement,
        1.0,
        agreed,
        f"sklearn and onnx labels agree on {agreement:.2%} of {rows} holdout rows" + ("" if agreed else " (< 100%)"),
    )
    return [probability, labels]


@dataclass
class CandidateAssessment:
    """Every gate of one candidate on one holdout, and the evidence behind them."""

    evaluation: Evaluation
    report: GateReport
    gates: list[Gate]

    @property
    def passed(self) -> bool:
        return all(gate.passed for gate in self.gates)

    @property
    def failed(self) -> list[Gate]:
        return [gate for gate in self.gates if not gate.passed]

    @property
    def reason(self) -> str:
        """The primary metric's verdict when every gate passes, else every failed gate's message."""
        failed = self.failed
        return "; ".join(gate.message for gate in failed) if failed else self.evaluation.reason

    def to_dict(self) -> dict[str, Any]:
        """The evaluation (metric, candidate and champion metrics...) with every gate, ``passed`` and ``reason``."""
        result = self.evaluation.to_dict()
        result["gates"] = [json_safe(asdict(gate)) for gate in self.gates]
        result["passed"] = self.passed
        result["reason"] = self.reason
        return result

    def details(self) -> dict[str, Any]:
        """Slices, importance, latency, flip rate and agreement (the gate list is in :meth:`to_dict`)."""
        return {key: value for key, value in self.report.to_dict().items() if key != "gates"}


def assess_candidate(
    candidate: OnnxModel,
    champion: OnnxModel | None,
    holdout: pd.DataFrame,
    spec: ModelSpec,
    *,
    candidate_bytes: bytes,
    parity: Mapping[str, Any] | None,
    parity_missing_reason: str = "",
    live_instances: Sequence[Mapping[str, Any]] | None = None,
) -> CandidateAssessment:
    """Run every gate: the primary metric against the champion, ONNX parity, then :func:`run_gates`
    (slices over ``spec.sensitive`` and ``spec.slices``, noise robustness, agreement with the
    champion, explainability, latency, size), with the spec's thresholds.

    Raises
    ------
    DataError
        If the candidate cannot score the holdout (missing target or feature columns).
    """
    evaluation = evaluate_candidate(candidate, champion, holdout, spec)
    report = run_gates(
        candidate,
        champion,
        holdout,
        spec,
        candidate_bytes=candidate_bytes,
        thresholds=thresholds_of(spec),
        live_instances=live_instances,
    )
    gates = [*evaluation.gates, *parity_gates(parity, missing_reason=parity_missing_reason), *report.gates]
    return CandidateAssessment(evaluation=evaluation, report=report, gates=gates)
