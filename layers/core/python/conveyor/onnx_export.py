"""Export a trained pipeline to ONNX with Conveyor's metadata, and check parity with sklearn."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import onnx
import pandas as pd
from skl2onnx import convert_sklearn
from skl2onnx.common import tree_ensemble
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.pipeline import Pipeline

from conveyor.errors import ArtifactError
from conveyor.scoring import META_CLASSES, META_FEATURES, META_SPEC_HASH, META_TARGET, META_TASK, OnnxModel
from conveyor.spec import ModelSpec
from conveyor.tabular import feature_frame, onnx_inputs

# Opset 21 is the newest skl2onnx 1.20 and onnxruntime 1.32 both handle. ai.onnx.ml 3 must be
# set explicitly for HistGradientBoosting (the default fails); skl2onnx 1.20 still writes float32
# tree thresholds there, which is why training.align_split_thresholds_to_float32 exists.
TARGET_OPSET: dict[str, int] = {"": 21, "ai.onnx.ml": 3}


def _patch_hist_gradient_boosting_leaves() -> None:
    """Work around skl2onnx 1.20 + onnx 1.20: HistGradientBoosting leaves carry a Python bool.

    skl2onnx passes ``missing_go_to_left=False`` for leaf nodes into an INTS attribute, which
    onnx 1.20's protobuf rejects ("Expected an int, got a boolean"). Coercing it to int is
    exactly what the library intends (its own default says "cannot use boolean in onnx").
    """
    if getattr(tree_ensemble.add_node, "_conveyor_patched", False):
        return
    original = tree_ensemble.add_node

    def add_node(*args: Any, **kwargs: Any) -> Any:
        if "nodes_missing_value_tracks_true" in kwargs:
            kwargs["nodes_missing_value_tracks_true"] = int(kwargs["nodes_missing_value_tracks_true"])
        return original(*args, **kwargs)

    add_node._conveyor_patched = True  # type: ignore[attr-defined]
    tree_ensemble.add_node = add_node


_patch_hist_gradient_boosting_leaves()


@dataclass(frozen=True)
class ParityReport:
    """sklearn versus onnxruntime on the same rows.

    Classification: ``max_abs_diff`` is the largest probability difference and ``label_agreement``
    the share of identical labels; parity holds when ``max_abs_diff <= tolerance`` and every label
    agrees. Regression: onnxruntime computes in float32, so an absolute tolerance alone is wrong for
    large values; a value agrees when ``|onnx - sklearn| <= tolerance + rtol * |sklearn|``
    (numpy.isclose), ``label_agreement`` is the share of values that agree, ``tolerance_used`` the
    largest ``|onnx - sklearn| / (tolerance + rtol * |sklearn|)`` (<= 1 passes) and ``max_rel_diff``
    the largest ``|onnx - sklearn| / |sklearn|``.
    """

    max_abs_diff: float
    label_agreement: float
    rows: int
    task: str = "classification"
    tolerance: float = 1e-5
    rtol: float = 0.0
    max_rel_diff: float | None = None
    tolerance_used: float | None = None

    def within(self, tolerance: float) -> bool:
        return self.max_abs_diff <= tolerance and self.label_agreement == 1.0

    @property
    def passed(self) -> bool:
        """Parity by the rule of the task, with the tolerances it was measured with."""
        if self.task == "regression":
            return self.label_agreement == 1.0 and (self.tolerance_used or 0.0) <= 1.0
        return self.within(self.tolerance)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


def _initial_types(spec: ModelSpec) -> list[tuple[str, Any]]:
    return [
        (name, StringTensorType([None, 1]) if feature.is_category else FloatTensorType([None, 1]))
        for name, feature in spec.features.items()
    ]


def export_onnx(pipeline: Pipeline, spec: ModelSpec, *, classes: list[Any] | None, spec_hash: str) -> bytes:
    """Convert ``pipeline`` to ONNX bytes: one (None, 1) input per feature, named as the feature.

    Classifiers output a label tensor and a probability tensor (no ZipMap). The custom
    metadata ``conveyor.*`` lets the serving side know the task, classes and feature types.

    Raises
    ------
    ArtifactError
        If skl2onnx cannot convert the pipeline.
    """
    options: dict[Any, Any] = {}
    model = pipeline.steps[-1][1]
    if spec.task == "classification":
        options = {id(model): {"zipmap": False}}
    try:
        proto = convert_sklearn(
            pipeline,
            name=spec.name,
            initial_types=_initial_types(spec),
            target_opset=TARGET_OPSET,
            options=options,
        )
    except Exception as exc:  # skl2onnx raises a variety of untyped errors
        raise ArtifactError(
            f"cannot export {spec.estimator.type} to ONNX: {str(exc)[:300]}", details={"estimator": spec.estimator.type}
        ) from None
    metadata = {
        META_TASK: spec.task,
        META_CLASSES: json.dumps(classes) if classes is not None else "",
        META_FEATURES: json.dumps(spec.feature_types()),
        META_SPEC_HASH: spec_hash,
        META_TARGET: spec.target.column,
    }
    onnx.helper.set_model_props(proto, {k: v for k, v in metadata.items() if v})
    proto.producer_name = "conveyor"
    return bytes(proto.SerializeToString())


def parity(pipeline: Pipeline, onnx_bytes: bytes, df: pd.DataFrame, spec: ModelSpec) -> ParityReport:
    """Compare sklearn (predict_proba / predict) with onnxruntime on the same rows of ``df``.

    Tolerances come from the spec: ``gates.parity_tolerance`` and, for regression, ``gates.parity_rtol``.
    """
    frame = feature_frame(df, spec)
    onnx_prediction = OnnxModel(onnx_bytes).predict(onnx_inputs(frame, spec))
    labels = pipeline.predict(frame)
    tolerance = spec.parity_tolerance
    if spec.task == "classification":
        expected = np.asarray(pipeline.predict_proba(frame), dtype=np.float64)
        actual = onnx_prediction.probabilities
    else:
        expected = np.asarray(labels, dtype=np.float64)
        actual = onnx_prediction.values
    if actual is None or actual.shape != expected.shape:
        shape = None if actual is None else actual.shape
        raise ArtifactError(f"ONNX output shape {shape} differs from sklearn {expected.shape}")
    difference = np.abs(expected - np.asarray(actual, dtype=np.float64))
    diff = float(np.max(difference)) if expected.size else 0.0
    if spec.task == "classification":
        agreement = (
            float(np.mean(np.asarray(labels).astype(str) == onnx_prediction.labels.astype(str))) if len(frame) else 1.0
        )
        return ParityReport(max_abs_diff=diff, label_agreement=agreement, rows=len(frame), tolerance=tolerance)
    rtol = spec.gates.parity_rtol
    allowed = tolerance + rtol * np.abs(expected)
    size = np.abs(expected)
    relative = np.divide(difference, size, out=np.zeros_like(difference), where=size > 0)
    return ParityReport(
        max_abs_diff=diff,
        label_agreement=float(np.mean(difference <= allowed)) if expected.size else 1.0,
        rows=len(frame),
        task="regression",
        tolerance=tolerance,
        rtol=rtol,
        max_rel_diff=float(np.max(relative)) if expected.size else 0.0,
        tolerance_used=float(np.max(difference / allowed)) if expected.size else 0.0,
    )
