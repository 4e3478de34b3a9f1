"""What the board reads, as ports: metric series, alarm states and the pipeline's runs, beside the
registry (``conveyor.registry.Registry``) and the deployment records (``conveyor.deployment.Deployments``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from conveyor.board.panels import Panel
from conveyor.deployment.records import Deployments
from conveyor.registry import Registry

Points = list[tuple[float, float]]  # (epoch seconds at the period's start, value), oldest first


class MetricReader(Protocol):
    def read(
        self, panels: tuple[Panel, ...], start: float, end: float, period: int
    ) -> dict[str, dict[str, dict[str, Points]]]:
        """Every panel's series: ``{panel.key: {model: {label: points}}}``, the label being the version
        for per-version panels and ``""`` for per-model ones (every model and version with data)."""
        ...


class AlarmReader(Protocol):
    def alarms(self) -> list[dict[str, Any]]:
        """Conveyor's alarms: ``{name, model, signal, state, reason, updated}`` (``model`` is None for a
        system alarm)."""
        ...


class RunHistory(Protocol):
    def recent(self, limit: int) -> list[dict[str, Any]]:
        """The pipeline's latest executions, newest first: ``{name, status, started, stopped}`` (epoch s)."""
        ...


@dataclass
class BoardSources:
    registry: Registry
    deployments: Deployments
    model_names: Callable[[], list[str]]
    metrics: MetricReader
    alarms: AlarmReader
    runs: RunHistory
    stack: str = "Conveyor"
