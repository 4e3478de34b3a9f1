"""The routing record (what the endpoint serves for a model) and its reader, the registry table's
keys, and artifact verification: what the predict function needs of the registry, apart from the
registry itself (``conveyor.registry``, which re-exports all of it), so its cold start imports no
more. Standard library only.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from conveyor.errors import ArtifactError, ConveyorError

if TYPE_CHECKING:
    from conveyor.ports import ItemReader, ObjectReader


class RegistryError(ConveyorError):
    pass


class UnknownModel(RegistryError):
    pass


MODEL_PARTITION = "MODEL#"  # versions, datasets, deployment records
ROUTING_PARTITION = "ROUTING#"  # the routing record: what serves
ROUTING_SK = "ROUTING"


def model_pk(model: str) -> str:
    return f"{MODEL_PARTITION}{model}"


def routing_pk(model: str) -> str:
    return f"{ROUTING_PARTITION}{model}"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_verified(store: ObjectReader, bucket: str, key: str, expected_sha256: str) -> bytes:
    """Read an artifact and refuse it unless its sha256 is the one the registry recorded."""
    data = store.get(bucket, key)
    actual = sha256_hex(data)
    if actual != expected_sha256:
        raise ArtifactError(
            f"artifact s3://{bucket}/{key} has sha256 {actual}, registry expects {expected_sha256}",
            details={"key": key, "expected": expected_sha256, "actual": actual},
        )
    return data


def traffic_share(key: str) -> float:
    """A stable number in [0, 1) for a routing key (entity key or request id): the same key always
    lands on the same side of a traffic split, so a user sees one model during a canary."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64


@dataclass
class Routing:
    """What the endpoint serves for one model.

    ``champion`` takes the traffic that ``challenger`` (if any) does not: ``challenger_weight`` of
    it, chosen by a stable hash of the entity key or request id. ``shadow`` scores every request
    beside the served version; its answers are captured, never returned.
    """

    model: str
    champion: dict[str, Any] | None  # {"version", "artifact_key", "sha256"}
    revision: int = 0
    killed: bool = False
    updated_at: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)
    # While killed: {"mode": "previous", "version": {...}} | {"mode": "static", "prediction": v} | {"mode": "none"}
    fallback: dict[str, Any] | None = None
    challenger: dict[str, Any] | None = None
    challenger_weight: float = 0.0
    shadow: dict[str, Any] | None = None
    # Read from the routing record's old place (MODEL#{model}); the next write creates the new one.
    legacy: bool = field(default=False, compare=False)

    def choose(self, routing_key: str) -> tuple[dict[str, Any], str]:
        """The version that answers a request with this routing key, and its role."""
        if self.champion is None:
            raise UnknownModel(f"no model named {self.model!r} is deployed")
        if self.challenger is not None and traffic_share(routing_key) < self.challenger_weight:
            return self.challenger, "challenger"
        return self.champion, "champion"

    def traffic(self) -> dict[str, float]:
        """Share of requests per version, as ``GET /models/{model}`` shows it."""
        if self.champion is None:
            return {}
        if self.challenger is None or self.challenger_weight <= 0:
            return {str(self.champion["version"]): 1.0}
        weight = round(float(self.challenger_weight), 6)
        return {str(self.champion["version"]): round(1.0 - weight, 6), str(self.challenger["version"]): weight}

    def to_item(self) -> dict[str, Any]:
        return {
            "pk": routing_pk(self.model),
            "sk": ROUTING_SK,
            "model": self.model,
            "champion": self.champion,
            "revision": self.revision,
            "killed": self.killed,
            "updated_at": self.updated_at,
            "history": self.history[-20:],
            "fallback": self.fallback,
            "challenger": self.challenger,
            # A string: DynamoDB stores numbers as Decimal, and a weight is compared as a float.
            "challenger_weight": repr(float(self.challenger_weight)),
            "shadow": self.shadow,
        }

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Routing:
        return cls(
            model=item["model"],
            champion=item.get("champion"),
            revision=int(item.get("revision", 0)),
            killed=bool(item.get("killed", False)),
            updated_at=float(item.get("updated_at", 0.0)),
            history=list(item.get("history", [])),
            fallback=item.get("fallback"),
            challenger=item.get("challenger"),
            challenger_weight=float(item.get("challenger_weight") or 0.0),
            shadow=item.get("shadow"),
        )


class RoutingReader:
    """The routing records alone (the predict function's one registry read), from any ``get(pk, sk)``."""

    def __init__(self, table: ItemReader) -> None:
        self._table = table

    def routing(self, model: str) -> Routing | None:
        item = self._table.get(routing_pk(model), ROUTING_SK)
        if item:
            return Routing.from_item(item)
        legacy = self._table.get(model_pk(model), ROUTING_SK)  # written before routing had its own partition
        if not legacy:
            return None
        routing = Routing.from_item(legacy)
        routing.legacy = True
        return routing
