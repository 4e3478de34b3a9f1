"""Registry events that anyone can subscribe to (EventBridge, source ``conveyor.registry``).

Every event has the same typed envelope, so subscribers can filter and correlate without
knowing which stage sent it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

SOURCE = "conveyor.registry"
EventName = Literal[
    "ModelRegistered",
    "ModelRejected",
    "ModelApproved",
    "ModelPromoted",
    "ModelRolledBack",
    "DriftDetected",
    "AlarmActionTaken",
    "ModelSuperseded",
]


@dataclass(frozen=True)
class RegistryEvent:
    name: EventName
    model: str
    model_version: int | None
    correlation_id: str
    details: dict[str, Any] = field(default_factory=dict)
    source: str = SOURCE
    schema_version: str = "1"
    created_at: float = field(default_factory=time.time)

    def detail(self) -> dict[str, Any]:
        return asdict(self)
