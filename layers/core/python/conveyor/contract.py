"""The serving contract: what the predict function needs of a model's spec, as a small JSON document.

The register stage writes it beside each version (content-addressed, its sha256 in the registry
item and in the routing record), so the predict path validates requests, masks captured inputs
and samples captures without parsing YAML or importing pydantic: this module imports the
standard library only. ``contract_from_spec`` reads an already-parsed ``ModelSpec``.

Validation (``ServingContract.columns``), per feature type:

- ``number``: a JSON number (or a boolean, as 1/0) that fits in float32;
- ``integer``: a number with no fractional part;
- ``boolean``: ``true``/``false``, 0/1, or one of the strings the data gate reads as booleans;
- ``category``: a string, or an integer / boolean written as the data gate writes it (``3``, ``"1"``);
  renamed codes (``mapping``) are replaced, then ``allowed`` is checked;
- ``datetime``: an ISO 8601 string (naive means UTC) or epoch seconds.

A missing or null value is refused unless the feature is ``nullable``. A declared sentinel (the
spec's ``sentinels``: codes meaning "unknown", compared as ``conveyor.tabular.sentinel_mask`` does)
is a missing value: scored exactly as a null, with a warning naming the row and the field (and
refused, as a null is, when the feature is not nullable). ``allowed`` values outside the list are
refused (400); numbers outside ``range`` are served, with a warning naming the row and the field. Columns the spec names but the model does not use (identifiers,
time, sensitive, ignored...) may be sent and are ignored; any other field is refused.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from conveyor.breaker import BreakerSettings
from conveyor.errors import ConveyorError

if TYPE_CHECKING:
    from conveyor.spec import ModelSpec

CONTRACT_FORMAT = 1
MASK = "***"
FEATURE_TYPES = ("number", "integer", "boolean", "category", "datetime")
# The same spellings conveyor.tabular reads as booleans (a unit test keeps the two equal).
BOOLEAN_TRUE = frozenset({"true", "t", "yes", "y", "1", "1.0"})
BOOLEAN_FALSE = frozenset({"false", "f", "no", "n", "0", "0.0"})
FLOAT32_MAX = 3.4028234663852886e38
MAX_DETAILS = 100


def category_key(value: Any) -> str:
    """A value as the category string the model sees (``3`` and ``3.0`` -> ``"3"``, ``True`` -> ``"1"``).

    The same rule as ``conveyor.spec.category_key`` and ``conveyor.tabular.category_strings``.
    """
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclass(frozen=True)
class FeatureRule:
    """One model input: its spec type and the rules a request's value must follow."""

    type: str
    nullable: bool = True
    range: tuple[float, float] | None = None
    allowed: frozenset[str] | None = None  # category keys
    mapping: Mapping[str, str] = field(default_factory=dict)  # renamed codes, old -> new (category keys)
    sentinels: frozenset[str] = frozenset()  # category keys of values that mean "unknown"

    @property
    def is_text(self) -> bool:
        """Whether the ONNX input is a string tensor (categories) rather than float32."""
        return self.type == "category"

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "nullable": self.nullable,
            "range": list(self.range) if self.range is not None else None,
            "allowed": sorted(self.allowed) if self.allowed is not None else None,
            "mapping": dict(sorted(self.mapping.items())),
            "sentinels": sorted(self.sentinels),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureRule:
        kind = str(data["type"])
        if kind not in FEATURE_TYPES:
            raise ValueError(f"unknown feature type {kind!r}")
        bounds = data.get("range")
        allowed = data.get("allowed")
        return cls(
            type=kind,
            nullable=bool(data.get("nullable", True)),
            range=(float(bounds[0]), float(bounds[1])) if bounds is not None else None,
            allowed=frozenset(str(v) for v in allowed) if allowed is not None else None,
            mapping={str(k): str(v) for k, v in (data.get("mapping") or {}).items()},
            sentinels=frozenset(str(v) for v in data.get("sentinels") or []),
        )


class ContractViolation(ConveyorError):
    """A request does not satisfy the contract: ``details`` lists each bad field."""

    def __init__(self, message: str, details: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.details = details


@dataclass(frozen=True)
class Scoring:
    """What a valid request becomes: one (n, 1) column per model input, and the warnings to return."""

    columns: dict[str, list[Any]]
    warnings: list[dict[str, Any]]
    rows: int


@dataclass(frozen=True)
class ServingContract:
    """What serving needs of one model version's spec (see the module docstring)."""

    model: str
    task: str
    features: Mapping[str, FeatureRule]
    ignored: frozenset[str] = frozenset()  # columns a request may carry that the model does not use
    masked: frozenset[str] = frozenset()  # columns captured as "***": capture.pii and identifiers
    sample_rate: float = 1.0
    spec_hash: str = ""
    complete: bool = True  # False: derived from the ONNX model alone (a version registered without one)
    breaker: BreakerSettings = field(default_factory=BreakerSettings)  # the spec's serving.breaker

    # construction ---------------------------------------------------------------------------
    @classmethod
    def from_model_inputs(cls, model: str, task: str, feature_types: Mapping[str, str]) -> ServingContract:
        """The contract of a version registered without one: types from the ONNX metadata, every
        feature nullable (as the service behaved before contracts), nothing sampled out."""
        return cls(
            model=model,
            task=task,
            features={
                name: FeatureRule(type=kind if kind in FEATURE_TYPES else "number")
                for name, kind in feature_types.items()
            },
            complete=False,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": CONTRACT_FORMAT,
            "model": self.model,
            "task": self.task,
            "spec_hash": self.spec_hash,
            "features": {name: rule.to_dict() for name, rule in self.features.items()},
            "ignored": sorted(self.ignored),
            "masked": sorted(self.masked),
            "capture": {"sample_rate": self.sample_rate},
            "serving": {"breaker": self.breaker.to_dict()},
        }

    def to_json(self) -> bytes:
        """Canonical bytes: the same contract always has the same sha256."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServingContract:
        if int(data.get("format", 0)) != CONTRACT_FORMAT:
            raise ValueError(f"serving contract format {data.get('format')!r}; this code reads {CONTRACT_FORMAT}")
        return cls(
            model=str(data["model"]),
            task=str(data["task"]),
            features={str(name): FeatureRule.from_dict(rule) for name, rule in data["features"].items()},
            ignored=frozenset(str(c) for c in data.get("ignored", [])),
            masked=frozenset(str(c) for c in data.get("masked", [])),
            sample_rate=float(data.get("capture", {}).get("sample_rate", 1.0)),
            spec_hash=str(data.get("spec_hash", "")),
            breaker=BreakerSettings.from_dict((data.get("serving") or {}).get("breaker")),
        )

    @classmethod
    def from_json(cls, data: bytes) -> ServingContract:
        return cls.from_dict(json.loads(data))

    # requests -------------------------------------------------------------------------------
    def columns(self, instances: Any, max_rows: int) -> Scoring:
        """Validate ``instances`` and turn them into model inputs, or raise ContractViolation.

        Every bad field is reported with its path (``instances[2].age``), not just the first.
        Raises ``TooMany`` (a ContractViolation) beyond ``max_rows`` rows.
        """
        if not isinstance(instances, list) or not instances:
            raise ContractViolation(
                "'instances' must be a non-empty list of objects", [{"field": "instances", "message": "required"}]
            )
        if len(instances) > max_rows:
            raise TooMany(
                f"{len(instances)} instances in one request; the maximum is {max_rows}",
                [{"field": "instances", "message": f"at most {max_rows} rows"}],
            )
        errors: list[dict[str, Any]] = []
        warnings: list[dict[str, Any]] = []
        columns: dict[str, list[Any]] = {name: [] for name in self.features}
        for row_number, row in enumerate(instances):
            if not isinstance(row, dict):
                errors.append({"field": f"instances[{row_number}]", "message": "must be an object of feature: value"})
                continue
            for name, rule in self.features.items():
                value, problem, warning = _convert(rule, row.get(name))
                if problem is not None:
                    errors.append({"field": f"instances[{row_number}].{name}", "message": problem})
                else:
                    columns[name].append(value)
                if warning is not None:
                    warnings.append({"row": row_number, "field": name, "message": warning})
            if row.keys() <= self.features.keys():  # the usual row: every field a feature
                continue
            unknown = sorted(k for k in row if k not in self.features and k not in self.ignored)
            if unknown:
                errors.append(
                    {"field": f"instances[{row_number}]", "message": f"unknown fields: {', '.join(unknown[:10])}"}
                )
        if errors:
            raise ContractViolation(f"{len(errors)} invalid field(s) in 'instances'", errors[:MAX_DETAILS])
        return Scoring(columns=columns, warnings=warnings[:MAX_DETAILS], rows=len(instances))

    def mask(self, row: Any) -> Any:
        """A request row as capture records it, with ``"***"`` for: masked columns (``capture.pii``,
        identifiers), any field the spec does not name (it could hold anything), any value that is
        not a JSON scalar, and every value when the contract was derived from the ONNX inputs alone
        (nothing then says which columns are personal). Non-finite numbers become null."""
        if not isinstance(row, dict):
            return MASK
        return {str(key): self._captured_value(str(key), value) for key, value in row.items()}

    def masks(self, key: str) -> bool:
        """Whether capture writes ``"***"`` for every value of column ``key`` (see ``mask``)."""
        return not self.complete or key in self.masked or (key not in self.features and key not in self.ignored)

    def _captured_value(self, key: str, value: Any) -> Any:
        if self.masks(key):
            return MASK
        if value is None or isinstance(value, str | bool | int):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else None
        return MASK


class TooMany(ContractViolation):
    """More rows than one request may carry."""


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _finite_float32(value: int | float) -> float | None:
    try:
        number = float(value)
    except OverflowError:
        return None
    if -FLOAT32_MAX <= number <= FLOAT32_MAX:  # False for NaN and the infinities too
        return number
    return None


def _is_sentinel(rule: FeatureRule, value: Any) -> bool:
    """Whether a request value is one of the feature's declared sentinels: numbers compare as
    numbers (``-1``, ``-1.0`` and ``"-1"`` alike), other values as category keys."""
    if isinstance(value, bool):
        return category_key(value) in rule.sentinels
    if isinstance(value, str):
        text = value.strip()
        if text in rule.sentinels:
            return True
        number = _parsed_number(text)
    elif _is_number(value):
        number = _finite_float32(value)
    else:
        return False
    return number is not None and number in _sentinel_numbers(rule.sentinels)


@functools.lru_cache(maxsize=256)
def _sentinel_numbers(sentinels: frozenset[str]) -> frozenset[float]:
    """The sentinels that read as numbers, as numbers (parsed once per set, not per request value)."""
    return frozenset(number for key in sentinels if (number := _parsed_number(key)) is not None)


def _sentinel(rule: FeatureRule, value: Any) -> tuple[Any, str | None, str | None] | None:
    """A declared sentinel as the missing value it means (with a warning), or None for any other value."""
    if value is None or not rule.sentinels or not _is_sentinel(rule, value):
        return None
    shown = (repr(value) if isinstance(value, str) else str(value))[:50]
    if not rule.nullable:
        return None, f"{shown} is a declared sentinel (a missing value) and the field is not nullable", None
    missing = "" if rule.type == "category" else math.nan
    return missing, None, f"sentinel value {shown} (declared in the spec: means unknown): scored as missing"


def _parsed_number(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


Converted = tuple[Any, str | None, str | None]  # (model value, error, warning) of one field


def _convert(rule: FeatureRule, value: Any) -> Converted:
    """(model value, error, warning) for one field."""
    kind = rule.type
    if not rule.sentinels:  # the usual values first, without the general rules' calls (a hot path)
        cls = type(value)
        if kind == "boolean" and (cls is bool or (cls is int and value in (0, 1))):
            return (1.0 if value else 0.0), None, None
        if (cls is float or cls is int) and kind == "number":
            return _convert_number(rule, value)
    sentinel = _sentinel(rule, value)
    if sentinel is not None:
        return sentinel
    if value is None or (value == "" and kind == "category"):
        if not rule.nullable:
            return None, "required", None
        return ("" if kind == "category" else math.nan), None, None
    return _CONVERTERS.get(kind, _convert_number)(rule, value)


def _convert_category(rule: FeatureRule, value: Any) -> Converted:
    if isinstance(value, float) or not isinstance(value, str | int | bool):
        return None, f"must be a string, got {type(value).__name__}", None
    key = category_key(value)
    key = rule.mapping.get(key, key)
    if rule.allowed is not None and key not in rule.allowed:
        shown = ", ".join(sorted(rule.allowed)[:20])
        return None, f"must be one of {shown}; got {key[:50]!r}", None
    return key, None, None


def _convert_boolean(rule: FeatureRule, value: Any) -> Converted:
    if isinstance(value, bool):
        return (1.0 if value else 0.0), None, None
    if _is_number(value) and value in (0, 1):
        return float(value), None, None
    if isinstance(value, str) and value.strip().lower() in BOOLEAN_TRUE | BOOLEAN_FALSE:
        return (1.0 if value.strip().lower() in BOOLEAN_TRUE else 0.0), None, None
    return None, "must be true or false (or 1/0)", None


def _convert_datetime(rule: FeatureRule, value: Any) -> Converted:
    if isinstance(value, str):
        seconds = _epoch_seconds(value)
        if seconds is None:
            return None, "must be an ISO 8601 date-time or epoch seconds", None
        return seconds, None, None
    if not _is_number(value) or _finite_float32(value) is None:
        return None, "must be an ISO 8601 date-time or epoch seconds", None
    return float(value), None, None


def _convert_number(rule: FeatureRule, value: Any) -> Converted:
    """number and integer (booleans are numbers 1/0, as the data gate reads them)."""
    kind = rule.type
    number = _finite_float32(value) if isinstance(value, int | float) else None
    if number is None:
        return None, f"must be a finite number within float32 range, got {type(value).__name__}", None
    if kind == "integer" and not number.is_integer():
        return None, f"must be an integer, got {number}", None
    if kind == "integer" and rule.allowed is not None:  # compared as the data gate writes them: 3, not 3.0
        key = category_key(number)
        if key not in rule.allowed:
            shown = ", ".join(sorted(rule.allowed)[:20])
            return None, f"must be one of {shown}; got {key[:50]}", None
    if rule.range is not None and not rule.range[0] <= number <= rule.range[1]:
        return number, None, f"{number:g} is outside the training range [{rule.range[0]:g}, {rule.range[1]:g}]"
    return number, None, None


_CONVERTERS = {"category": _convert_category, "boolean": _convert_boolean, "datetime": _convert_datetime}


def _epoch_seconds(text: str) -> float | None:
    from datetime import UTC, datetime  # here: the predict path's cold start does not pay for it

    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()  # an aware time: its seconds since the epoch, exactly


def contract_from_spec(spec: ModelSpec) -> ServingContract:
    """The serving contract of a parsed spec (run where the spec is parsed: the CLI, the training
    image, or the register stage where pydantic is importable)."""
    from conveyor.spec import spec_hash

    features: dict[str, FeatureRule] = {}
    for name, feature in spec.features.items():
        allowed = feature.allowed_categories()
        features[name] = FeatureRule(
            type=str(feature.type),
            nullable=bool(feature.nullable),
            range=(float(feature.range[0]), float(feature.range[1])) if feature.range is not None else None,
            allowed=frozenset(allowed) if allowed is not None else None,
            mapping=feature.category_mapping(),
            sentinels=frozenset(category_key(v) for v in feature.sentinels),
        )
    time = [spec.time_column] if spec.time_column else []
    ignored: Sequence[str] = [
        spec.target.column,  # a client replaying labelled rows: the label is not a model input
        *spec.identifiers,
        *time,
        *spec.sensitive,
        *getattr(spec, "slices", []),  # slices: newer specs only
        *spec.deprecated,
        *spec.ignored,
        *spec.capture.pii,
    ]
    return ServingContract(
        model=spec.name,
        task=str(spec.task),
        features=features,
        ignored=frozenset(c for c in ignored if c not in features),
        masked=frozenset([*spec.capture.pii, *spec.identifiers]),
        sample_rate=float(spec.capture.sample_rate),
        spec_hash=spec_hash(spec),
        breaker=BreakerSettings(**spec.serving.breaker.model_dump()),
    )
