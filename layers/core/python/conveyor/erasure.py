"""Deletion requests: keep a data object out of all future training and retrain without it now.

``conveyor impact URI --retrain`` calls :func:`retrain_without`; it works on the ports (the registry
table and an execution starter), so the same code runs against the cloud and the memory adapters.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from conveyor.ports import ExecutionStarter
from conveyor.registry import Registry, RegistryError

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
