"""The domain classifier: can a classifier tell reference rows from current rows? Its cross-validated
AUC with a Mann-Whitney p-value, and the features that separate the two most (``docs/drift.md``)."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from conveyor.drift.report import DomainClassifierResult, format_p
from conveyor.drift.settings import DriftSettings
from conveyor.profile import OTHER, NumericProfile, Profile, categorical_values, numeric_values, typed_features
from conveyor.stats import auc_pvalue

TOP_IMPORTANT = 5
CV_FOLDS = 3
MIN_ROWS_PER_SIDE = 2 * CV_FOLDS

# the tested features: their names, kinds ("numeric" | "categorical") and spec types
_Columns = tuple[list[str], dict[str, str], dict[str, str]]


def _encode_categorical(values: np.ndarray, vocabulary: dict[str, int]) -> np.ndarray:
    series = pd.Series(values, dtype=object)
    mapped = series.map(vocabulary)
    other = float(vocabulary.get(OTHER, len(vocabulary)))
    result = np.array(mapped.astype("float64").to_numpy(), dtype=np.float64, copy=True)
    unknown = np.isnan(result) & series.notna().to_numpy()
    result[unknown] = other
    return result


def _sample_reference(profile: Profile, names: list[str], rows: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Rows drawn from the profile: each feature independently (inverse CDF / category frequencies)."""
    columns: dict[str, np.ndarray] = {}
    for name in names:
        feature = profile.features[name]
        if isinstance(feature, NumericProfile):
            column = feature.inverse_cdf(rng.random(rows))
            column[rng.random(rows) < feature.null_share] = np.nan
        else:
            labels = [*feature.frequencies, None]
            weights = np.asarray([*feature.frequencies.values(), feature.nulls], dtype=np.float64)
            picks = rng.choice(len(labels), size=rows, p=weights / weights.sum())
            column = np.asarray(labels, dtype=object)[picks]
        columns[name] = column
    return columns


def _rows(
    frame: pd.DataFrame, rows: np.ndarray, names: list[str], kinds: dict[str, str], types: dict[str, str]
) -> dict[str, np.ndarray]:
    """Typed columns of the given rows only (cheap: the classifier sees at most ``max_rows``)."""
    typed = typed_features(frame.iloc[np.sort(rows)], {name: types[name] for name in names})
    return {
        name: numeric_values(typed[name]) if kinds[name] == "numeric" else categorical_values(typed[name], types[name])
        for name in names
    }


def _columns(
    profile: Profile,
    current: pd.DataFrame,
    reference_frame: pd.DataFrame | None,
    columns: _Columns,
    s: DriftSettings,
    rng: np.random.Generator,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], str]:
    """The reference and current columns the classifier sees, and where the reference came from.

    The order of ``rng`` draws is part of the result (reports are reproducible from the seed)."""
    names, kinds, types = columns
    cur_idx = rng.permutation(len(current))[: s.max_rows]
    if reference_frame is not None:
        ref_cols = _rows(reference_frame, rng.permutation(len(reference_frame))[: s.max_rows], names, kinds, types)
        return ref_cols, _rows(current, cur_idx, names, kinds, types), "rows"
    ref_cols = _sample_reference(profile, names, min(s.max_rows, profile.rows), rng)
    # decorrelate the current rows as the sampled reference rows are (docs/drift.md)
    cur_cols = {name: rng.permutation(column) for name, column in _rows(current, cur_idx, names, kinds, types).items()}
    return ref_cols, cur_cols, "profile_sample"


def _design(
    profile: Profile, names: list[str], ref_cols: dict[str, np.ndarray], cur_cols: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The classifier's matrix (reference rows first), its categorical-column mask and the labels."""
    n_ref, n_cur = len(ref_cols[names[0]]), len(cur_cols[names[0]])
    matrix = np.empty((n_ref + n_cur, len(names)), dtype=np.float64)
    categorical = np.zeros(len(names), dtype=bool)
    for j, name in enumerate(names):
        feature = profile.features[name]
        if isinstance(feature, NumericProfile):
            matrix[:n_ref, j] = ref_cols[name]
            matrix[n_ref:, j] = cur_cols[name]
        else:
            vocabulary = {label: i for i, label in enumerate(feature.frequencies)}
            matrix[:n_ref, j] = _encode_categorical(ref_cols[name], vocabulary)
            matrix[n_ref:, j] = _encode_categorical(cur_cols[name], vocabulary)
            categorical[j] = True
    y = np.concatenate([np.zeros(n_ref, dtype=np.int64), np.ones(n_cur, dtype=np.int64)])
    return matrix, categorical, y


def _out_of_fold_scores(
    matrix: np.ndarray, y: np.ndarray, categorical: np.ndarray, seed: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold scores of a ``CV_FOLDS``-fold classifier, and the permutation importance of each
    column (the AUC lost when it is shuffled) on the first held-out fold."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold
    from threadpoolctl import threadpool_limits

    # One OpenMP thread: on a busy host (parallel test workers, a shared Lambda vCPU) the default
    # spin-waiting threads of HistGradientBoosting slow down 10-100x; one thread never does.
    with threadpool_limits(limits=1, user_api="openmp"):
        scores = np.zeros(y.size)
        importance = np.zeros(matrix.shape[1])
        folds = StratifiedKFold(n_splits=CV_FOLDS, shuffle=True, random_state=seed)
        for fold, (train, test) in enumerate(folds.split(matrix, y)):
            model = HistGradientBoostingClassifier(
                max_iter=50,
                learning_rate=0.1,
                max_leaf_nodes=15,
                min_samples_leaf=20,
                categorical_features=categorical if categorical.any() else None,
                early_stopping=False,
                random_state=seed,
            )
            model.fit(matrix[train], y[train])
            held_out = matrix[test]
            fold_scores = model.predict_proba(held_out)[:, 1]
            scores[test] = fold_scores
            if fold == 0:  # permutation importance on one held-out fold: enough to rank, a third of the cost
                fold_auc = roc_auc_score(y[test], fold_scores)
                for j in range(matrix.shape[1]):
                    shuffled = held_out.copy()
                    shuffled[:, j] = rng.permutation(shuffled[:, j])
                    importance[j] = fold_auc - roc_auc_score(y[test], model.predict_proba(shuffled)[:, 1])
    return scores, importance


def _judge(
    result: DomainClassifierResult,
    names: list[str],
    y: np.ndarray,
    scores: np.ndarray,
    importance: np.ndarray,
    s: DriftSettings,
) -> None:
    """The AUC, its p-value, the verdict, the top features and the message, into ``result``."""
    from sklearn.metrics import roc_auc_score

    auc = float(roc_auc_score(y, scores))
    pvalue = auc_pvalue(scores[y == 1], scores[y == 0])
    result.auc, result.pvalue = auc, pvalue
    result.drifted = auc > s.auc_threshold and pvalue < s.alpha
    ranked = np.argsort(-importance, kind="stable")
    result.top_features = [
        {"name": names[j], "importance": round(float(importance[j]), 4)}
        for j in ranked[:TOP_IMPORTANT]
        if importance[j] > 0
    ]
    op = ">" if auc > s.auc_threshold else "<="
    result.message = f"domain classifier AUC {auc:.3f} {op} {s.auc_threshold:.2f} (p={format_p(pvalue)})"
    if result.top_features:
        result.message += "; separates most on " + ", ".join(str(t["name"]) for t in result.top_features[:3])


def domain_classifier(
    profile: Profile,
    current: pd.DataFrame,
    reference_frame: pd.DataFrame | None,
    columns: _Columns,
    s: DriftSettings,
    seed: int,
) -> DomainClassifierResult:
    """Whether a classifier tells reference rows (``reference_frame``, or rows sampled from the
    profile) from ``current`` rows; ``columns`` are the tested features' names, kinds and spec types."""
    started = time.perf_counter()
    names = columns[0]
    result = DomainClassifierResult(enabled=True, threshold=s.auc_threshold)
    rng = np.random.default_rng(seed)
    ref_cols, cur_cols, result.reference_source = _columns(profile, current, reference_frame, columns, s, rng)
    n_ref = len(next(iter(ref_cols.values()))) if names else 0
    n_cur = min(len(current), s.max_rows)
    result.rows_reference, result.rows_current = int(n_ref), int(n_cur)
    if not names or min(n_ref, n_cur) < MIN_ROWS_PER_SIDE:
        result.message = f"skipped: needs at least {MIN_ROWS_PER_SIDE} rows per side and one feature"
    else:
        matrix, categorical, y = _design(profile, names, ref_cols, cur_cols)
        scores, importance = _out_of_fold_scores(matrix, y, categorical, seed, rng)
        _judge(result, names, y, scores, importance, s)
    result.seconds = time.perf_counter() - started
    return result
