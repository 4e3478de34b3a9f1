"""The model spec (``model.yaml``): pydantic models, YAML loading and a stable hash.

Unknown keys are rejected (``extra="forbid"``) so a typo is named instead of ignored.
Every error message starts with the dotted path of the bad key, e.g.
``features.age.type: must be one of number, integer, category, boolean``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from conveyor.errors import SpecError

Task = Literal["classification", "regression"]
FeatureType = Literal["number", "integer", "category", "boolean"]
EstimatorType = Literal["logistic_regression", "linear_regression", "random_forest", "hist_gradient_boosting"]
Metric = Literal["roc_auc", "accuracy", "log_loss", "rmse", "mae", "r2"]

CLASSIFICATION_METRICS: frozenset[str] = frozenset({"roc_auc", "accuracy", "log_loss"})
REGRESSION_METRICS: frozenset[str] = frozenset({"rmse", "mae", "r2"})
HIGHER_IS_BETTER: frozenset[str] = frozenset({"roc_auc", "accuracy", "r2"})
ESTIMATOR_TASKS: dict[str, frozenset[str]] = {
    "logistic_regression": frozenset({"classification"}),
    "linear_regression": frozenset({"regression"}),
    "random_forest": frozenset({"classification", "regression"}),
    "hist_gradient_boosting": frozenset({"classification", "regression"}),
}
DEFAULT_METRIC: dict[str, str] = {"classification": "roc_auc", "regression": "rmse"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Condition(_Strict):
    """Binarizes a numeric target: positive (1) when ``target <op> value``."""

    op: Literal["gt", "ge", "lt", "le", "eq", "ne"]
    value: float


class Target(_Strict):
    column: Annotated[str, Field(min_length=1)]
    positive_when: Condition | None = None


class Feature(_Strict):
    type: FeatureType
    nullable: bool = False
    range: tuple[float, float] | None = None
    allowed: list[str | int | float | bool] | None = None

    @model_validator(mode="after")
    def _range_ordered(self) -> Feature:
        if self.range is not None and self.range[0] > self.range[1]:
            raise ValueError(f"range: min {self.range[0]} is greater than max {self.range[1]}")
        return self

    @property
    def is_category(self) -> bool:
        return self.type == "category"


class Estimator(_Strict):
    type: EstimatorType
    params: dict[str, Any] = Field(default_factory=dict)


class Split(_Strict):
    holdout_fraction: Annotated[float, Field(gt=0.0, le=0.9)] = 0.2
    seed: int = 42


class Gates(_Strict):
    primary_metric: Metric | None = None  # filled from the task by ModelSpec
    max_degradation: Annotated[float, Field(ge=0.0)] = 0.0
    parity_tolerance: Annotated[float, Field(gt=0.0)] = 1e-5


class Deployment(_Strict):
    strategy: Literal["all_at_once"] = "all_at_once"
    approval: Literal["auto", "manual"] = "auto"


class ModelSpec(_Strict):
    """One model's contract: data, task, estimator, split, gates and deployment."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9-]{1,63}$")]
    task: Task
    target: Target
    features: Annotated[dict[Annotated[str, Field(min_length=1)], Feature], Field(min_length=1)]
    identifiers: list[str] = Field(default_factory=list)
    time_column: str | None = None
    sensitive: list[str] = Field(default_factory=list)
    estimator: Estimator
    split: Split = Field(default_factory=Split)
    gates: Gates = Field(default_factory=Gates)
    deployment: Deployment = Field(default_factory=Deployment)

    @model_validator(mode="after")
    def _cross_checks(self) -> ModelSpec:
        if self.target.column in self.features:
            raise ValueError(f"target.column: {self.target.column!r} is also listed in features")
        if self.task not in ESTIMATOR_TASKS[self.estimator.type]:
            raise ValueError(f"estimator.type: {self.estimator.type} cannot be used for {self.task}")
        if self.target.positive_when is not None and self.task != "classification":
            raise ValueError("target.positive_when: only valid for classification")
        if self.gates.primary_metric is None:
            self.gates.primary_metric = DEFAULT_METRIC[self.task]  # type: ignore[assignment]
        valid = CLASSIFICATION_METRICS if self.task == "classification" else REGRESSION_METRICS
        if self.gates.primary_metric not in valid:
            raise ValueError(
                f"gates.primary_metric: {self.gates.primary_metric} is not a {self.task} metric "
                f"(use one of {', '.join(sorted(valid))})"
            )
        return self

    @property
    def primary_metric(self) -> str:
        return self.gates.primary_metric or DEFAULT_METRIC[self.task]

    def metric_higher_is_better(self) -> bool:
        """Whether a larger value of the primary metric is better."""
        return self.primary_metric in HIGHER_IS_BETTER

    def feature_types(self) -> dict[str, str]:
        """Feature name -> spec type, in spec order."""
        return {name: feature.type for name, feature in self.features.items()}


def _error_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif not str(part).startswith("function-"):
            path += f".{part}" if path else str(part)
    return path


def _error_message(error: Any) -> str:
    kind = error["type"]
    if kind == "literal_error":
        expected = str(error.get("ctx", {}).get("expected", ""))
        return "must be one of " + expected.replace("'", "").replace(" or ", ", ")
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def _format_errors(exc: ValidationError) -> list[dict[str, str]]:
    found = []
    for error in exc.errors():
        path = _error_path(tuple(error["loc"]))
        message = _error_message(error)
        if not path and ": " in message:  # cross-field checks carry their own path
            path, message = message.split(": ", 1)
        found.append({"path": path or "(root)", "message": message})
    return found


def parse_spec(data: Any) -> ModelSpec:
    """Validate an already-parsed mapping as a ModelSpec, raising SpecError."""
    if not isinstance(data, dict):
        raise SpecError(f"spec must be a mapping of keys, got {type(data).__name__}")
    try:
        return ModelSpec.model_validate(data)
    except ValidationError as exc:
        errors = _format_errors(exc)
        message = "; ".join(f"{e['path']}: {e['message']}" for e in errors[:10])
        raise SpecError(message, details={"errors": errors}) from None


def load_spec(source: str | bytes | Path) -> ModelSpec:
    """Load a spec from YAML text, YAML bytes, or a file path.

    Raises
    ------
    SpecError
        On unreadable YAML or any invalid key; the message names the key path.
    """
    if isinstance(source, Path):
        try:
            text: str | bytes = source.read_bytes()
        except OSError as exc:
            raise SpecError(f"cannot read spec file {source}: {exc.strerror}") from None
    else:
        text = source
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"spec is not valid YAML: {exc}") from None
    return parse_spec(data)


def spec_hash(spec: ModelSpec) -> str:
    """Sha256 (hex) of the spec's canonical JSON, defaults included."""
    canonical = json.dumps(spec.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
