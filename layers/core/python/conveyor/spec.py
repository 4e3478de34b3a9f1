"""The model spec (``model.yaml``): pydantic models, YAML loading and a stable hash.

Unknown keys are rejected (``extra="forbid"``) so a typo is named instead of ignored.
Every error message starts with the dotted path of the bad key, e.g.
``features.age.type: must be one of number, integer, category, boolean, datetime``.

Besides the model (task, target, features, estimator, split, gates, deployment), a spec holds
the data gate's thresholds (``validation``), the drift thresholds read by ``conveyor.drift``
(``drift``) and the retrain policy (``retrain``); every one of them has a default.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from conveyor.compute import AUTO, ComputeSetting
from conveyor.errors import SpecError

# Sections that live in modules of their own, re-exported so that ``from conveyor.spec import X`` stays the way in.
from conveyor.spec_base import RATE_PATTERN, Strict, rate_seconds  # noqa: F401
from conveyor.spec_deployment import (  # noqa: F401
    MAX_APPROVAL_TIMEOUT_SECONDS,
    MAX_TOTAL_BAKE_SECONDS,
    BakeChecks,
    CanaryPlan,
    Deployment,
    LinearPlan,
    ShadowPlan,
)
from conveyor.spec_operations import (  # noqa: F401
    SIGNALS,
    AlarmAction,
    BreakerSpec,
    CaptureSettings,
    MonitoringSettings,
    ServingSettings,
    Signal,
)
from conveyor.spec_value import ValueSpec, check_value_fits

Task = Literal["classification", "regression"]
FeatureType = Literal["number", "integer", "category", "boolean", "datetime"]
Scalar = str | int | float | bool
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


_Strict = Strict


class Condition(_Strict):
    """Binarizes a numeric target: positive (1) when ``target <op> value``."""

    op: Literal["gt", "ge", "lt", "le", "eq", "ne"]
    value: float


class Target(_Strict):
    column: Annotated[str, Field(min_length=1)]
    positive_when: Condition | None = None


def category_key(value: Scalar) -> str:
    """A category value as the str the model sees (``3`` and ``3.0`` -> ``"3"``, ``True`` -> ``"1"``).

    Matches ``conveyor.tabular.category_strings``, so ``allowed`` and ``mapping`` written as
    numbers in YAML compare equal to the values read from a file.
    """
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class Feature(_Strict):
    """One input column of the model and the rules its values must follow."""

    type: FeatureType
    nullable: bool = False
    max_null_share: Annotated[float, Field(ge=0.0, le=1.0)] | None = None  # default: 0 or 1 by nullable
    range: tuple[float, float] | None = None
    allowed: list[Scalar] | None = None
    # Codes meaning "unknown" (e.g. -1): missing values wherever they appear (counted as nulls by the
    # data gate, NaN for training, a null at serving, with a warning); nullable/max_null_share govern them.
    sentinels: list[Scalar] = Field(default_factory=list)
    mapping: dict[Scalar, Scalar] = Field(default_factory=dict)  # renamed category codes, old -> new
    allow_sensitive: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> Feature:
        if self.range is not None and self.range[0] > self.range[1]:
            raise ValueError(f"range: min {self.range[0]} is greater than max {self.range[1]}")
        if self.max_null_share is None:
            self.max_null_share = 1.0 if self.nullable else 0.0
        elif self.max_null_share > 0 and not self.nullable:
            raise ValueError("max_null_share: set nullable: true to allow nulls")
        if self.mapping and self.type != "category":
            raise ValueError(f"mapping: only category features can map codes, not {self.type}")
        if self.allowed is not None and self.type not in ("category", "integer"):
            raise ValueError(f"allowed: only category and integer features list allowed values, not {self.type}")
        if self.range is not None and self.type not in ("number", "integer"):
            raise ValueError(f"range: only number and integer features have a range, not {self.type}")
        return self

    @property
    def is_category(self) -> bool:
        return self.type == "category"

    @property
    def null_share_limit(self) -> float:
        return float(self.max_null_share if self.max_null_share is not None else (1.0 if self.nullable else 0.0))

    def category_mapping(self) -> dict[str, str]:
        """``mapping`` with keys and values as category strings."""
        return {category_key(old): category_key(new) for old, new in self.mapping.items()}

    def allowed_categories(self) -> set[str] | None:
        """``allowed`` as category strings, or None when any value is allowed."""
        return None if self.allowed is None else {category_key(v) for v in self.allowed}


class Estimator(_Strict):
    type: EstimatorType
    params: dict[str, Any] = Field(default_factory=dict)
    class_weight: Literal["balanced"] | None = None  # classification: weight classes inversely to frequency


class Split(_Strict):
    # auto: grouped by the first identifier present, else temporal by time_column, else by row content.
    strategy: Literal["auto", "grouped", "temporal", "random"] = "auto"
    holdout_fraction: Annotated[float, Field(gt=0.0, le=0.9)] = 0.2
    seed: int = 42


DEFAULT_PARITY_TOLERANCE: dict[str, float] = {"classification": 1e-5, "regression": 1e-4}


class Gates(_Strict):
    primary_metric: Metric | None = None  # filled from the task by ModelSpec
    # Primary metric against the champion: the candidate may be worse by at most max_degradation,
    # or, with min_improvement, must be better by at least that much (set one of the two).
    max_degradation: Annotated[float, Field(ge=0.0)] = 0.0
    min_improvement: Annotated[float, Field(ge=0.0)] | None = None
    # ONNX parity with scikit-learn. Classification: max |probability difference| <= parity_tolerance
    # and identical labels. Regression (float32 in onnxruntime): every value within
    # parity_tolerance + parity_rtol * |sklearn value|. Default tolerance by task (filled by ModelSpec).
    parity_tolerance: Annotated[float, Field(gt=0.0)] | None = None
    parity_rtol: Annotated[float, Field(ge=0.0)] = 1e-5
    # The other gates (conveyor.gates.GateThresholds); unset keys keep its defaults.
    max_slice_gap: Annotated[float, Field(ge=0.0)] | None = None
    min_slice_rows: Annotated[int, Field(ge=1)] | None = None
    max_flip_rate: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    noise_scale: Annotated[float, Field(ge=0.0)] | None = None
    swap_rate: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    min_agreement: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    max_importance_share: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    max_p99_ms_single: Annotated[float, Field(gt=0.0)] | None = None
    max_p99_ms_batch: Annotated[float, Field(gt=0.0)] | None = None
    # The candidate's latency against the champion's, measured side by side (conveyor.gates.latency).
    max_latency_ratio: Annotated[float, Field(ge=1.0)] | None = None
    max_model_mb: Annotated[float, Field(gt=0.0)] | None = None
    # Business value on the holdout (needs a value: section): the candidate must earn at least this much.
    min_value_per_1000: float | None = None


class ValidationSettings(_Strict):
    """Thresholds of the data gate (``conveyor.validation``)."""

    max_file_mb: Annotated[float, Field(gt=0.0)] = 1024.0
    min_rows: Annotated[int, Field(ge=1)] = 1
    min_rows_ratio: Annotated[float, Field(ge=0.0, le=1.0)] = 0.2  # fewer rows than this share of usual -> warn
    max_duplicate_share: Annotated[float, Field(ge=0.0, le=1.0)] = 0.05  # duplicate rows above -> warn
    min_class_share: Annotated[float, Field(ge=0.0, lt=0.5)] = 0.01  # rarest class below -> warn
    leakage_auc: Annotated[float, Field(gt=0.5, le=1.0)] = 0.98  # one feature predicting the target this well -> error
    # Rows with row-level faults (a value that does not parse, an undeclared sentinel, a category not in
    # allowed, out-of-range values failing the file) up to this share of the rows are set aside in
    # quarantine and the rest accepted; above it (and always at 0) the whole file is rejected.
    max_bad_row_share: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0


class DomainClassifier(_Strict):
    enabled: bool = True
    auc_threshold: Annotated[float, Field(gt=0.5, le=1.0)] = 0.6
    max_rows: Annotated[int, Field(ge=100)] = 20000


class DriftSettings(_Strict):
    """Thresholds read by ``conveyor.drift``."""

    psi_threshold: Annotated[float, Field(gt=0.0)] = 0.2
    ks_threshold: Annotated[float, Field(gt=0.0, le=1.0)] = 0.1
    js_threshold: Annotated[float, Field(gt=0.0, le=1.0)] = 0.1
    alpha: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.01
    domain_classifier: DomainClassifier = Field(default_factory=DomainClassifier)
    max_drifted_share: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0  # verdict "drift" above this share


class RetrainPolicy(_Strict):
    on_drift: bool = True
    min_new_rows: Annotated[int, Field(ge=0)] = 1000
    # Retrain when the latest training is older than this, checked at each arrival: "rate(7 days)".
    schedule: Annotated[str, Field(pattern=r"^rate\(\s*\d+\s+(minute|hour|day|week)s?\s*\)$")] | None = None
    # A burst of drops (a folder of part files) trains once: the run that claims the model's retrain waits
    # until no drop joined it for this long (conveyor.bursts), then trains on everything accepted by then.
    batch_window_seconds: Annotated[int, Field(ge=0, le=3600)] = 60
    # A marker a multi-file export writes when it is complete ("_SUCCESS", or a manifest naming the parts,
    # e.g. "_manifest.json"): the retrain waits until it is beside the parts (at most an hour). Only drops in
    # a folder under incoming/ (an export's) wait for one; a file dropped straight into incoming/ does not.
    wait_for: Annotated[str, Field(pattern=r"^[^/]+$")] | None = None

    def schedule_seconds(self) -> float | None:
        if self.schedule is None:
            return None
        amount, unit = self.schedule[5:-1].split()
        seconds = {"minute": 60, "hour": 3600, "day": 86400, "week": 604800}[unit.rstrip("s")]
        return int(amount) * seconds


class TrainingWindow(_Strict):
    """What a retrain reads: only the newest accepted data, by one of ``rows`` (the last N rows),
    ``days`` (objects accepted in the last N days) or ``objects`` (the last N objects)."""

    rows: Annotated[int, Field(ge=1)] | None = None
    days: Annotated[float, Field(gt=0)] | None = None
    objects: Annotated[int, Field(ge=1)] | None = None

    @model_validator(mode="after")
    def _one_bound(self) -> TrainingWindow:
        given = [name for name in ("rows", "days", "objects") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"window: give exactly one of rows, days, objects (got {', '.join(given) or 'none'})")
        return self


class TrainingSettings(_Strict):
    """How Train reads its data (``window``: none means every accepted, non-excluded object) and where it
    runs (``compute``: ``auto`` picks by the rows and bytes to train on, see conveyor.compute)."""

    window: TrainingWindow | None = None
    compute: ComputeSetting = AUTO


class ModelSpec(_Strict):
    """One model's contract: data, task, estimator, split, gates and deployment."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9-]{1,63}$")]
    task: Task
    target: Target
    features: Annotated[dict[Annotated[str, Field(min_length=1)], Feature], Field(min_length=1)]
    identifiers: list[str] = Field(default_factory=list)
    time_column: str | None = None
    sensitive: list[str] = Field(default_factory=list)
    slices: list[str] = Field(default_factory=list)  # more columns to slice metrics by, beside sensitive
    deprecated: list[str] = Field(default_factory=list)  # columns that may still arrive: warned about, ignored
    ignored: list[str] = Field(default_factory=list)  # columns known and deliberately unused: no warning
    estimator: Estimator
    split: Split = Field(default_factory=Split)
    gates: Gates = Field(default_factory=Gates)
    deployment: Deployment = Field(default_factory=Deployment)
    validation: ValidationSettings = Field(default_factory=ValidationSettings)
    drift: DriftSettings = Field(default_factory=DriftSettings)
    retrain: RetrainPolicy = Field(default_factory=RetrainPolicy)
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    capture: CaptureSettings = Field(default_factory=CaptureSettings)
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    serving: ServingSettings = Field(default_factory=ServingSettings)
    value: ValueSpec | None = None  # what each prediction is worth (conveyor.spec_value)

    @model_validator(mode="after")
    def _value_fits_task(self) -> ModelSpec:
        check_value_fits(self.value, self.task, self.gates.min_value_per_1000)
        return self

    @model_validator(mode="after")
    def _cross_checks(self) -> ModelSpec:
        self._check_columns()
        self._check_task()
        self._check_gates()
        return self

    def _check_columns(self) -> None:
        if self.target.column in self.features:
            raise ValueError(f"target.column: {self.target.column!r} is also listed in features")
        for name, feature in self.features.items():
            if name in self.sensitive and not feature.allow_sensitive:
                raise ValueError(
                    f"features.{name}: {name!r} is listed in sensitive; set allow_sensitive: true to use it as a feature"
                )
            if name in self.identifiers:
                raise ValueError(f"features.{name}: {name!r} is an identifier and cannot be a feature")
            if name in self.deprecated:
                raise ValueError(f"features.{name}: {name!r} is deprecated and cannot be a feature")
        if self.target.column in self.deprecated:
            raise ValueError(f"deprecated: the target {self.target.column!r} cannot be deprecated")

    def _check_task(self) -> None:
        if self.task not in ESTIMATOR_TASKS[self.estimator.type]:
            raise ValueError(f"estimator.type: {self.estimator.type} cannot be used for {self.task}")
        if self.target.positive_when is not None and self.task != "classification":
            raise ValueError("target.positive_when: only valid for classification")
        if self.target.column in self.slices:
            raise ValueError(f"slices: the target {self.target.column!r} cannot be a slice column")

    def _check_gates(self) -> None:
        """Either threshold of the primary-metric gate, not both; defaults of the task filled in."""
        if self.gates.min_improvement is not None and self.gates.max_degradation > 0:
            raise ValueError(
                "gates.min_improvement: set either min_improvement (the candidate must be better by at least "
                "this much) or max_degradation (it may be worse by at most this much), not both"
            )
        if self.gates.primary_metric is None:
            self.gates.primary_metric = DEFAULT_METRIC[self.task]  # type: ignore[assignment]
        if self.gates.parity_tolerance is None:
            self.gates.parity_tolerance = DEFAULT_PARITY_TOLERANCE[self.task]
        valid = CLASSIFICATION_METRICS if self.task == "classification" else REGRESSION_METRICS
        if self.gates.primary_metric not in valid:
            raise ValueError(
                f"gates.primary_metric: {self.gates.primary_metric} is not a {self.task} metric "
                f"(use one of {', '.join(sorted(valid))})"
            )

    @property
    def primary_metric(self) -> str:
        return self.gates.primary_metric or DEFAULT_METRIC[self.task]

    @property
    def parity_tolerance(self) -> float:
        """Absolute ONNX parity tolerance (probabilities; for regression, the absolute part)."""
        tolerance = self.gates.parity_tolerance
        return float(tolerance if tolerance is not None else DEFAULT_PARITY_TOLERANCE[self.task])

    def metric_higher_is_better(self) -> bool:
        """Whether a larger value of the primary metric is better."""
        return self.primary_metric in HIGHER_IS_BETTER

    def known_columns(self) -> set[str]:
        """Every column the spec names: features, target, identifiers, time, sensitive, slices, deprecated, ignored."""
        time = [self.time_column] if self.time_column else []
        return {
            *self.features,
            self.target.column,
            *self.identifiers,
            *time,
            *self.sensitive,
            *self.slices,
            *self.deprecated,
            *self.ignored,
        }

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
        if error["type"] == "value_error" and re.match(r"^[A-Za-z_][\w.]*: ", message):
            # cross-field checks name their key: "features.age" + "range: ..." -> "features.age.range: ..."
            key, message = message.split(": ", 1)
            path = f"{path}.{key}" if path else key
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
    """Sha256 (hex) of the spec's canonical JSON, defaults included (but a default ``serving`` section,
    added later, is left out: a spec that does not set it keeps the hash it had before)."""
    dumped = spec.model_dump(mode="json")
    if dumped.get("serving") == ServingSettings().model_dump(mode="json"):
        dumped.pop("serving")
    canonical = json.dumps(dumped, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
