"""What the board reads, as ports: metric series, alarm states and the pipeline's runs, beside the
registry (``conveyor.registry.Registry``) and the deployment records (``conveyor.deployment.Deployments``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from conveyor.board.panels import Panel
from conveyor.registry import model_pk

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


class ItemsTable:
    """A read-only ``conveyor.ports.Table`` over a snapshot of the registry table's items (one scan), so a
    view of every model costs one round trip instead of several per model."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self._items = {(item["pk"], item["sk"]): item for item in items}
        self._by_pk: dict[str, list[dict[str, Any]]] = {}
        for item in sorted(items, key=lambda i: i["sk"]):
            self._by_pk.setdefault(item["pk"], []).append(item)

    def get(self, pk: str, sk: str) -> dict[str, Any] | None:
        return self._items.get((pk, sk))

    def put(self, item: dict[str, Any], *, if_absent: bool = False, if_equals: tuple[str, Any] | None = None) -> None:
        raise TypeError("a registry snapshot is read-only")

    def query(
        self, pk: str, sk_prefix: str, *, newest_first: bool = False, limit: int | None = None
    ) -> list[dict[str, Any]]:
        found = [item for item in self._by_pk.get(pk, []) if item["sk"].startswith(sk_prefix)]
        if newest_first:
            found.reverse()
        return found[:limit] if limit is not None else found

    def model_names(self) -> list[str]:
        prefix = model_pk("")
        return sorted(pk[len(prefix) :] for pk in self._by_pk if pk.startswith(prefix))


@dataclass
class BoardSources:
    registry_items: Callable[[], list[dict[str, Any]]]  # every item of the registry table (a scan)
    metrics: MetricReader
    alarms: AlarmReader
    runs: RunHistory
    stack: str = "Conveyor"
