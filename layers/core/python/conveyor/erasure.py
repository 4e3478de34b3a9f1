"""Deletion requests: keep a data object out of all future training and retrain without it now;
erase it (every stored version, its parts and reports, the capture records tied to its entities).

``conveyor impact URI --retrain`` calls :func:`retrain_without`; it works on the ports (the registry
table and an execution starter), so the same code runs against the cloud and the memory adapters.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from conveyor import layout
from conveyor.ports import ExecutionStarter, Table
from conveyor.registry import Registry, RegistryError, model_pk

ERASURE_SK = "ERASURE#"

_EXECUTION_NAME_LIMIT = 80  # Step Functions' limit on execution names


class NoSuchDataObject(RegistryError):
    """The model has no accepted data object stored at (or dropped as) the given location."""


class NothingLeftToTrain(RegistryError):
    """Excluding the object would leave the model no accepted data: nothing is excluded then."""


@dataclass(frozen=True)
class Retrain:
    """A retrain without some data objects: the execution started and the sha256 of what it leaves out."""

    execution: str
    excluded: list[str]
    started: bool  # False if an execution of that name existed already

    def to_dict(self) -> dict[str, Any]:
        return {"execution": self.execution, "excluded": self.excluded, "started": self.started}


def retrain_without(
    registry: Registry,
    starter: ExecutionStarter,
    model: str,
    bucket: str,
    key: str,
    *,
    reason: str,
    clock: Callable[[], float] = time.time,
) -> Retrain:
    """Exclude the accepted data object at s3://bucket/key from ``model``'s training, then start a retrain.

    The pipeline receives ``{"retrain": {"model", "reason", "excluded"}}`` and trains on every accepted
    data object still included. ``reason`` is recorded with each exclusion and in the retrain's reason.

    Raises
    ------
    NoSuchDataObject
        If no accepted data object of ``model`` is stored at (or was dropped as) that location.
    NothingLeftToTrain
        If it is the model's only accepted data (nothing is excluded and no retrain starts).
    """
    uri = f"s3://{bucket}/{key}"
    datasets, _ = registry.impact(model, bucket, key)
    if not datasets:
        raise NoSuchDataObject(f"no accepted data object of model {model!r} at {uri}")
    excluded = sorted({str(d["sha256"]) for d in datasets})
    if not [d for d in registry.datasets(model) if str(d["sha256"]) not in excluded]:
        raise NothingLeftToTrain(
            f"nothing left to train {model!r} on without {uri}: it is the model's only accepted data; "
            "nothing was excluded and no retrain started"
        )
    for sha256 in excluded:
        registry.exclude_dataset(model, sha256, reason)
    digest = "-".join(sha256[:8] for sha256 in excluded)
    execution = f"{model}-retrain-{digest}-{int(clock())}"[:_EXECUTION_NAME_LIMIT]
    payload = {"retrain": {"model": model, "reason": f"{reason}: retrain without {uri}", "excluded": excluded}}
    return Retrain(execution, excluded, starter.start(execution, payload))


# --- erasure: `conveyor impact URI --erase` ---------------------------------------------------------
#
# What an erasure deletes (every version of each, in a versioned bucket):
# - the accepted object, the drop it came from (incoming/), a split drop's original and quarantined
#   part, and the reports beside each (``{key}.report.json``, ``{key}.drift.json``);
# - capture records of requests about the object's entities: a record is tied to a data row only
#   through its ``routing_key`` (the entity key a client sends), since capture masks identifier
#   columns. Records of requests routed by request id cannot be tied to a row; they expire with the
#   capture bucket's retention.
# The object is excluded from training first (a retrain never reads it again); versions already
# trained on it keep its influence until retrained without it (``--retrain``).


def erased_keys(dataset: Mapping[str, Any]) -> list[str]:
    """The data bucket keys an erasure deletes for an accepted data object (each with what lies beside it)."""
    keys = [dataset.get("key"), dataset.get("source_key")]
    for part in ("original", "quarantined"):
        keys.append((dataset.get(part) or {}).get("key"))
    return sorted({str(key) for key in keys if key})


def belongs_to(key: str, erased: str) -> bool:
    """``key`` is ``erased`` itself or a report beside it (``{erased}.report.json``, ``{erased}.drift.json``)."""
    return key == erased or key in (layout.validation_report_key(erased), layout.drift_report_key(erased))


def without_entities(lines: bytes, entities: set[str]) -> tuple[bytes, int]:
    """A capture file's JSON lines without the records whose ``routing_key`` is one of ``entities``;
    and how many were removed."""
    kept: list[bytes] = []
    removed = 0
    for line in lines.splitlines(keepends=True):
        if not line.strip():
            continue
        try:
            routing_key = json.loads(line).get("routing_key")
        except (ValueError, AttributeError):
            kept.append(line)
            continue
        if routing_key is not None and str(routing_key) in entities:
            removed += 1
        else:
            kept.append(line)
    return b"".join(kept), removed


def entity_values(frame_columns: Mapping[str, Any], identifiers: list[str]) -> set[str]:
    """The values of the first identifier column present (the spec's order), as capture's routing keys."""
    for column in identifiers:
        if column in frame_columns:
            return {_entity(value) for value in frame_columns[column] if not _missing(value)}
    return set()


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _entity(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def erasure_record(
    model: str, uri: str, *, reason: str, by: str, objects: Mapping[str, int], capture: Mapping[str, int], at: float
) -> dict[str, Any]:
    """The registry item that says an erasure happened: what was deleted, by whom and why (no data)."""
    return {
        "pk": model_pk(model),
        "sk": f"{ERASURE_SK}{at:017.6f}",
        "model": model,
        "uri": uri,
        "reason": reason,
        "by": by,
        "at": at,
        "object_versions": dict(objects),
        "capture": dict(capture),
    }


def erasures(table: Table, model: str) -> list[dict[str, Any]]:
    """Every erasure recorded for ``model``, oldest first."""
    return table.query(model_pk(model), ERASURE_SK)
