"""The model registry and the routing record, over the ``Table`` port (the routing record, its reader,
the table's keys and artifact verification are defined in ``conveyor.routing``, re-exported here).

Layout of the registry table (one table, keys ``pk``/``sk``):

- ``MODEL#{model}`` / ``VERSION#{000001}``: one model version (status, artifact, metrics, gates, lineage)
- ``ROUTING#{model}`` / ``ROUTING``: what the endpoint serves, with a ``revision`` bumped by every change
- ``MODEL#{model}`` / ``DATASET#{sha256}``: one accepted data object

The routing record has a partition of its own so that IAM can say who may change what serves:
``dynamodb:LeadingKeys`` conditions partition keys only, so the functions that write versions,
datasets and deployment records may write ``MODEL#*`` partitions and nothing else, while the
promotion, trial and rollback functions and the operator role may write ``ROUTING#*`` too
(infra/constructs/registry.py). Routing records written before (``MODEL#{model}`` / ``ROUTING``) are
read when a model has no new one, and the next change writes the new one (read both, write new);
:meth:`Registry.migrate_routing` (``conveyor migrate-routing``) copies them all at once.

Every write that can race is conditional: versions are claimed with ``attribute_not_exists``
(so concurrent pipelines get consecutive numbers, no gaps, no duplicates) and the routing
record is replaced only if its revision is the one that was read.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from conveyor.errors import ConditionFailed
from conveyor.routing import (  # noqa: F401  (re-exported: the registry's names, defined with the routing record)
    MODEL_PARTITION,
    ROUTING_PARTITION,
    ROUTING_SK,
    RegistryError,
    Routing,
    RoutingReader,
    UnknownModel,
    load_verified,
    model_pk,
    routing_pk,
    sha256_hex,
    traffic_share,
)

if TYPE_CHECKING:
    from conveyor.ports import Table

# superseded: the champion the candidate was evaluated against was replaced before it could be promoted.
STATUSES = ("candidate", "approved", "rejected", "production", "archived", "superseded")
PROMOTABLE = ("approved", "production", "archived")
_VERSION_ATTEMPTS = 50


class ChampionChanged(RegistryError):
    """A promotion's compare-and-set lost: the champion is no longer the version it was compared with."""


def model_partitions(model: str) -> tuple[str, str]:
    """Every partition holding an item of ``model``."""
    return model_pk(model), routing_pk(model)


def version_sk(version: int) -> str:
    return f"VERSION#{version:06d}"


@dataclass
class ModelVersion:
    model: str
    version: int
    status: str
    artifact_key: str
    sha256: str
    metrics: dict[str, Any] = field(default_factory=dict)
    gates: list[dict[str, Any]] = field(default_factory=list)
    lineage: dict[str, Any] = field(default_factory=dict)
    decision: str = ""
    created_at: float = 0.0
    # The serving contract (conveyor.contract) written beside the version; empty for versions
    # registered before contracts existed (serving then derives one from the ONNX inputs).
    contract_key: str = ""
    contract_sha256: str = ""
    # Every status change: {"status", "reason", "at", "champion"} (the version serving at that moment).
    history: list[dict[str, Any]] = field(default_factory=list)

    def to_item(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "pk": model_pk(self.model),
            "sk": version_sk(self.version),
            "model": self.model,
            "version": self.version,
            "status": self.status,
            "artifact_key": self.artifact_key,
            "sha256": self.sha256,
            "metrics": self.metrics,
            "gates": self.gates,
            "lineage": self.lineage,
            "decision": self.decision,
            "created_at": self.created_at,
            "history": self.history[-30:],
        }
        if self.contract_key:
            item["contract"] = {"key": self.contract_key, "sha256": self.contract_sha256}
        return item

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> ModelVersion:
        return cls(
            model=item["model"],
            version=int(item["version"]),
            status=item["status"],
            artifact_key=item["artifact_key"],
            sha256=item["sha256"],
            metrics=item.get("metrics", {}),
            gates=item.get("gates", []),
            lineage=item.get("lineage", {}),
            decision=item.get("decision", ""),
            created_at=float(item.get("created_at", 0.0)),
            contract_key=str((item.get("contract") or {}).get("key", "")),
            contract_sha256=str((item.get("contract") or {}).get("sha256", "")),
            history=list(item.get("history", [])),
        )


def served_ref(version: ModelVersion) -> dict[str, Any]:
    """How the routing record names a version: enough to load and verify its artifact (and its
    serving contract, when it has one)."""
    ref: dict[str, Any] = {"version": version.version, "artifact_key": version.artifact_key, "sha256": version.sha256}
    if version.contract_key:
        ref.update(contract_key=version.contract_key, contract_sha256=version.contract_sha256)
    return ref


class Registry:
    def __init__(self, table: Table) -> None:
        self._table = table

    # versions ---------------------------------------------------------------------------
    def latest_version_number(self, model: str) -> int:
        items = self._table.query(model_pk(model), "VERSION#", newest_first=True, limit=1)
        return int(items[0]["version"]) if items else 0

    def register(self, version: ModelVersion) -> ModelVersion:
        """Claim the next version number for ``version.model`` and store it."""
        if version.status not in STATUSES:
            raise RegistryError(f"unknown status {version.status!r}; expected one of {', '.join(STATUSES)}")
        number = self.latest_version_number(version.model) + 1
        for _ in range(_VERSION_ATTEMPTS):
            version.version = number
            version.created_at = version.created_at or time.time()
            try:
                self._table.put(version.to_item(), if_absent=True)
                return version
            except ConditionFailed:
                number += 1
        raise RegistryError(f"could not claim a version number for {version.model} after {_VERSION_ATTEMPTS} attempts")

    def save(self, version: ModelVersion) -> None:
        """Replace a registered version's item (its artifact, hence its sha256, unchanged)."""
        self._table.put(version.to_item(), if_equals=("sha256", version.sha256))

    def get(self, model: str, version: int) -> ModelVersion:
        item = self._table.get(model_pk(model), version_sk(version))
        if item is None:
            raise UnknownModel(f"model {model} has no version {version}")
        return ModelVersion.from_item(item)

    def versions(self, model: str) -> list[ModelVersion]:
        return [ModelVersion.from_item(i) for i in self._table.query(model_pk(model), "VERSION#")]

    def set_status(
        self, model: str, version: int, status: str, *, decision: str | None = None, reason: str | None = None
    ) -> None:
        """Change a version's status; ``decision`` replaces the sentence that decided its fate, and the
        change is recorded in its history with ``reason`` (default: the decision) and the champion then."""
        if status not in STATUSES:
            raise RegistryError(f"unknown status {status!r}; expected one of {', '.join(STATUSES)}")
        current = self.get(model, version)
        current.status = status
        if decision is not None:
            current.decision = decision
        routing = self.routing(model)
        champion = routing.champion["version"] if routing and routing.champion else None
        entry = {"status": status, "reason": reason or decision or current.decision, "at": time.time()}
        current.history = [*current.history, {**entry, "champion": champion}]
        self._table.put(current.to_item(), if_equals=("sha256", current.sha256))

    # routing ----------------------------------------------------------------------------
    def routing(self, model: str) -> Routing | None:
        return RoutingReader(self._table).routing(model)

    def _write_routing(self, routing: Routing, read: Routing | None) -> None:
        """Replace the routing record ``read`` (None: there was none) by ``routing``, if no one changed it since."""
        if read is None or read.legacy:
            self._table.put(routing.to_item(), if_absent=True)
        else:
            self._table.put(routing.to_item(), if_equals=("revision", read.revision))

    def migrate_routing(self, model: str) -> bool:
        """Copy ``model``'s routing record from its old place to its own partition; False if there was nothing to move."""
        routing = self.routing(model)
        if routing is None or not routing.legacy:
            return False
        try:
            self._table.put(routing.to_item(), if_absent=True)
        except ConditionFailed:  # a writer got there first: its record is newer
            return False
        return True

    def promote(
        self, model: str, version: int, *, action: str = "promote", expected_champion: int | bool | None = True
    ) -> Routing:
        """Send all traffic to ``version`` (all-at-once), by a conditional write of the routing record.

        ``expected_champion`` (a version, or None for a model that serves nothing yet) makes it a
        compare-and-set: ChampionChanged unless that version is still the champion when the routing
        record is replaced (the write is conditional on the revision that was read). True: any champion.
        """
        target = self.get(model, version)
        if target.status not in PROMOTABLE:
            raise RegistryError(
                f"{model} v{version} is {target.status}; only approved (or earlier production) versions can serve"
            )
        current = self.routing(model)
        previous = current.champion if current else None
        serving = int(previous["version"]) if previous else None
        if expected_champion is not True and serving != expected_champion:
            raise ChampionChanged(
                f"{model} v{version} was compared with {_named(expected_champion)}, but {_named(serving)} serves now",
                details={"expected": expected_champion, "champion": serving},
            )
        routing = Routing(
            model=model,
            champion=served_ref(target),
            revision=(current.revision if current else 0) + 1,
            killed=False,
            updated_at=time.time(),
            history=[
                *(current.history if current else []),
                {"action": action, "version": version, "at": time.time()},
            ],
        )  # all traffic to the target: any challenger or shadow of the previous deployment ends here
        self._write_routing(routing, current)
        self.set_status(model, version, "production", reason=f"{action}: serves all traffic (was {_named(serving)})")
        if previous and int(previous["version"]) != version:
            self.set_status(model, int(previous["version"]), "archived", reason=f"replaced by v{version} ({action})")
        return routing

    def _change_routing(self, model: str, action: str, change: dict[str, Any], version: int | None = None) -> Routing:
        current = self.routing(model)
        if current is None or current.champion is None:
            raise UnknownModel(f"no model named {model!r} is deployed")
        read = replace(current)
        for name, value in change.items():
            setattr(current, name, value)
        now = time.time()
        entry = {
            "action": action,
            "version": version if version is not None else current.champion["version"],
            "at": now,
        }
        current.history = [*current.history, entry]
        current.updated_at = now
        current.revision = read.revision + 1
        self._write_routing(current, read)
        current.legacy = False
        return current

    def previous_champion(self, model: str) -> ModelVersion | None:
        """The version that served before the current champion (for rollback and kill fallbacks)."""
        routing = self.routing(model)
        if routing is None or routing.champion is None:
            return None
        current = int(routing.champion["version"])
        served = [int(h["version"]) for h in routing.history if h.get("action") in {"promote", "rollback"}]
        earlier = [v for v in reversed(served) if v != current]
        return self.get(model, earlier[0]) if earlier else None

    def kill(self, model: str, mode: str = "previous", static_prediction: Any = None) -> Routing:
        """Switch the champion off; requests get the previous version, a static answer, or 503."""
        fallback: dict[str, Any]
        if mode == "previous":
            previous = self.previous_champion(model)
            if previous is None:
                raise RegistryError(f"{model} has no previous version to fall back to; use --fallback static or none")
            fallback = {"mode": "previous", "version": served_ref(previous)}
        elif mode == "static":
            if static_prediction is None:
                raise RegistryError("a static fallback needs the prediction to answer with")
            fallback = {"mode": "static", "prediction": static_prediction}
        elif mode == "none":
            fallback = {"mode": "none"}
        else:
            raise RegistryError(f"unknown fallback {mode!r}; expected previous, static or none")
        return self._change_routing(model, "kill", {"killed": True, "fallback": fallback})

    def _servable(self, model: str, version: int) -> ModelVersion:
        target = self.get(model, version)
        if target.status not in PROMOTABLE:
            raise RegistryError(
                f"{model} v{version} is {target.status}; only approved (or earlier production) versions can serve"
            )
        return target

    def set_challenger(self, model: str, version: int, weight: float) -> Routing:
        """Send ``weight`` (0..1) of the traffic to ``version`` beside the champion (canary, linear steps)."""
        if not 0.0 <= weight <= 1.0:
            raise RegistryError(f"a challenger's weight is between 0 and 1, not {weight}")
        target = self._servable(model, version)
        return self._change_routing(
            model, f"challenger {weight:.0%}", {"challenger": served_ref(target), "challenger_weight": weight}, version
        )

    def set_shadow(self, model: str, version: int | None) -> Routing:
        """Score every request with ``version`` too, capturing its answers and never returning them."""
        if version is None:
            return self._change_routing(model, "shadow off", {"shadow": None})
        target = self._servable(model, version)
        return self._change_routing(model, "shadow", {"shadow": served_ref(target)}, version)

    def end_trial(self, model: str, reason: str) -> Routing:
        """Take the challenger and the shadow out (a breach during the bake, or a rejection): the champion
        gets all traffic again."""
        current = self.routing(model)
        trial = current.challenger or current.shadow if current else None
        routing = self._change_routing(
            model,
            f"rollback: {reason}",
            {"challenger": None, "challenger_weight": 0.0, "shadow": None},
            int(trial["version"]) if trial else None,
        )
        return routing

    def revive(self, model: str) -> Routing:
        return self._change_routing(model, "revive", {"killed": False, "fallback": None})

    def rollback(self, model: str, to: int | None = None) -> Routing:
        """Serve ``to`` (default: the version that served before) again, all traffic at once."""
        target = self.get(model, to) if to is not None else self.previous_champion(model)
        if target is None:
            raise RegistryError(f"{model} has no earlier version to roll back to")
        return self.promote(model, target.version, action="rollback")

    def champion(self, model: str) -> ModelVersion | None:
        routing = self.routing(model)
        if routing is None or routing.champion is None:
            return None
        return self.get(model, int(routing.champion["version"]))

    # datasets ---------------------------------------------------------------------------
    def record_dataset(self, model: str, dataset: Mapping[str, Any]) -> bool:
        """Record an accepted data object; False if the same content was accepted before."""
        try:
            self._table.put({"pk": model_pk(model), "sk": f"DATASET#{dataset['sha256']}", **dataset}, if_absent=True)
        except ConditionFailed:
            return False
        return True

    def datasets(self, model: str, *, include_excluded: bool = False) -> list[dict[str, Any]]:
        """Accepted data objects, oldest first; those excluded (e.g. by a deletion request) left out."""
        items = self._table.query(model_pk(model), "DATASET#")
        if not include_excluded:
            items = [i for i in items if not i.get("excluded")]
        return sorted(items, key=lambda i: float(i.get("accepted_at", 0.0)))

    def exclude_dataset(self, model: str, sha256: str, reason: str) -> dict[str, Any]:
        """Keep a data object out of every future training (the object itself is not touched)."""
        item = self._table.get(model_pk(model), f"DATASET#{sha256}")
        if item is None:
            raise UnknownModel(f"model {model} has no accepted data object with sha256 {sha256}")
        item.update(excluded=True, excluded_reason=reason, excluded_at=time.time())
        self._table.put(item)
        return item

    def impact(self, model: str, bucket: str, key: str) -> tuple[list[dict[str, Any]], list[ModelVersion]]:
        """The accepted data objects stored at (or dropped as, or split from) s3://bucket/key, and every
        version trained on them."""
        matches = [
            d
            for d in self.datasets(model, include_excluded=True)
            if d.get("bucket") == bucket
            and key in {d.get("key"), d.get("source_key"), (d.get("original") or {}).get("key")}
        ]
        hashes = {d["sha256"] for d in matches}
        versions = [v for v in self.versions(model) if hashes & {d.get("sha256") for d in v.lineage.get("data", [])}]
        return matches, versions


def _named(version: int | bool | None) -> str:
    return "no champion" if version is None or version is True else f"v{version}"
