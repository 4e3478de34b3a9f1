"""Score with an exported ONNX model: the predict Lambda's hot path.

Imports numpy, onnxruntime and the standard library only (no pandas, scikit-learn or
pydantic): a unit test checks the import graph in a fresh interpreter.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime as ort

from conveyor.errors import ArtifactError, MalformedOutput  # MalformedOutput: re-exported here

META_TASK = "conveyor.task"
META_CLASSES = "conveyor.classes"
META_FEATURES = "conveyor.features"
META_SPEC_HASH = "conveyor.spec_hash"
META_TARGET = "conveyor.target"


@dataclass(frozen=True)
class Prediction:
    """What a model returns for n rows.

    Attributes
    ----------
    labels
        Shape (n,). The predicted class for classification; the predicted value for
        regression (so callers can always read ``labels``).
    probabilities
        Shape (n, n_classes), columns in ``OnnxModel.classes`` order; None for regression.
    """

    labels: np.ndarray
    probabilities: np.ndarray | None = None

    @property
    def values(self) -> np.ndarray:
        """Regression outputs as float64 (same as ``labels``)."""
        return np.asarray(self.labels, dtype=np.float64)


class OnnxModel:
    """An ONNX model exported by Conveyor, loaded once and scored many times.

    Parameters
    ----------
    data
        The ONNX model bytes.
    """

    def __init__(self, data: bytes) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors on bad bytes
            raise ArtifactError(f"cannot load ONNX model: {str(exc)[:200]}") from None
        # onnxruntime's run() checks the feed's names, then calls its binding's run: predict builds the
        # feed from the input names itself, so it calls the binding (2 us of a 1-row request's ~60)
        binding = getattr(self._session, "_sess", None)
        self._run: Callable[[list[str], dict[str, np.ndarray]], list[Any]] = (
            (lambda names, feed: binding.run(names, feed, None)) if binding is not None else self._session.run
        )
        meta = self._session.get_modelmeta().custom_metadata_map
        self._metadata: dict[str, str] = dict(meta)
        self._input_names = [i.name for i in self._session.get_inputs()]
        self._features = {
            i.name: ("category" if i.type == "tensor(string)" else "number") for i in self._session.get_inputs()
        }
        outputs = [o.name for o in self._session.get_outputs()]
        self._task = meta.get(META_TASK) or ("classification" if len(outputs) > 1 else "regression")
        classes = meta.get(META_CLASSES)
        self._classes: list[Any] | None = json.loads(classes) if classes else None
        spec_types = meta.get(META_FEATURES)
        self._spec_types: dict[str, str] = json.loads(spec_types) if spec_types else dict(self._features)
        if self._task == "classification":
            if len(outputs) < 2:
                raise ArtifactError("classification model must output labels and probabilities")
            self._output_names = outputs[:2]
        else:
            self._output_names = outputs[:1]

    @property
    def features(self) -> dict[str, str]:
        """Input name -> ``"number"`` (float32) or ``"category"`` (string), in input order."""
        return dict(self._features)

    @property
    def feature_types(self) -> dict[str, str]:
        """Input name -> spec type (number, integer, boolean, category) as written at export."""
        return dict(self._spec_types)

    @property
    def classes(self) -> list[Any] | None:
        return self._classes

    @property
    def task(self) -> str:
        return self._task

    @property
    def spec_hash(self) -> str | None:
        return self._metadata.get(META_SPEC_HASH)

    @property
    def target(self) -> str | None:
        return self._metadata.get(META_TARGET)

    @property
    def metadata(self) -> dict[str, str]:
        return dict(self._metadata)

    def predict(self, columns: Mapping[str, np.ndarray]) -> Prediction:
        """Score rows given one (n, 1) array per input: float32, or object/str for categories.

        Raises
        ------
        ArtifactError
            If an input is missing (the message names it).
        MalformedOutput
            If the outputs do not hold one finite prediction per row (and one probability per class).
        """
        try:
            feed = {name: columns[name] for name in self._input_names}
        except KeyError as exc:
            raise ArtifactError(f"missing model input {exc.args[0]!r}", details={"input": exc.args[0]}) from None
        rows = len(next(iter(feed.values()))) if feed else 0
        results = self._run(self._output_names, feed)
        if self._task == "classification":
            labels = np.asarray(results[0]).reshape(-1)
            probabilities = np.asarray(results[1], dtype=np.float64)
            width = len(self._classes) if self._classes is not None else probabilities.shape[-1]
            if probabilities.shape != (rows, width) or not np.isfinite(probabilities).all():
                raise MalformedOutput(
                    f"probabilities of shape {probabilities.shape} for {rows} rows and {width} classes"
                )
            prediction = Prediction(labels=labels, probabilities=probabilities)
        else:
            prediction = Prediction(labels=np.asarray(results[0], dtype=np.float64).reshape(-1))
            if not np.isfinite(prediction.labels).all():
                raise MalformedOutput("a prediction is not a finite number")
        if len(prediction.labels) != rows:
            raise MalformedOutput(f"{len(prediction.labels)} predictions for {rows} rows")
        return prediction
