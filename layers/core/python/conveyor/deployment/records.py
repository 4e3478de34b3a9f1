"""The deployment records in the registry table: one per (model, version) deployment."""

from __future__ import annotations

import time
from typing import Any

from conveyor.deployment.errors import DeploymentError, DeploymentInProgress
from conveyor.ports import ConditionFailed, Table
from conveyor.registry import model_pk

# Deployment record states.
IN_PROGRESS = ("planned", "awaiting_approval", "approved", "trial")
FINISHED = ("promoted", "rolled_back", "rejected", "expired", "interrupted")


LOCK_SK = "DEPLOYING"


def deployment_sk(version: int) -> str:
    return f"DEPLOYMENT#{version:06d}"


class Deployments:
    """One record per (model, version) deployment in the registry table: its state, its phase, the
    approval token while a reviewer is awaited, and a short history. ``conveyor status`` and
    ``conveyor approve`` read it; only the deployment's own stages write it."""

    def __init__(self, table: Table) -> None:
        self._table = table

    def get(self, model: str, version: int) -> dict[str, Any] | None:
        return self._table.get(model_pk(model), deployment_sk(version))

    def start(self, plan: dict[str, Any], *, execution: str, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        item = {
            "pk": model_pk(plan["model"]),
            "sk": deployment_sk(int(plan["version"])),
            "model": plan["model"],
            "version": int(plan["version"]),
            "execution": execution,
            "strategy": plan["strategy"],
            "approval": plan["approval"],
            "phases": plan["phases"],
            "phase": -1,
            "state": "planned",
            "started_at": now,
            "updated_at": now,
            "history": [{"state": "planned", "at": now}],
        }
        self._table.put(item)
        return item

    def update(
        self, model: str, version: int, state: str, *, now: float | None = None, **fields: Any
    ) -> dict[str, Any]:
        now = time.time() if now is None else now
        item = self.get(model, version)
        if item is None:
            raise DeploymentError(f"{model} v{version} has no deployment record")
        item.update(fields)
        item["state"] = state
        item["updated_at"] = now
        entry = {"state": state, "at": now, **{k: v for k, v in fields.items() if k in {"phase", "reason", "by"}}}
        item["history"] = [*item.get("history", []), entry][-30:]
        if state not in ("awaiting_approval",):
            item.pop("token", None)  # a token is only kept while it can still be answered
        self._table.put(item)
        return item

    def for_model(self, model: str) -> list[dict[str, Any]]:
        return self._table.query(model_pk(model), "DEPLOYMENT#")

    def in_progress(self, model: str) -> list[dict[str, Any]]:
        return [d for d in self.for_model(model) if d.get("state") in IN_PROGRESS]

    # The per-model deployment lock: two deployments of one model never interleave. ----------------
    def acquire(self, model: str, version: int, execution: str, *, until: float, now: float | None = None) -> None:
        """Hold the model's deployment lock for ``execution`` (until it releases it, or ``until`` passes);
        DeploymentInProgress while another execution's deployment holds it."""
        now = time.time() if now is None else now
        lock = self._table.get(model_pk(model), LOCK_SK)
        held = lock is not None and lock.get("execution") not in (None, execution)
        if held and lock is not None and float(lock.get("until", 0)) > now:
            raise DeploymentInProgress(
                f"{model} v{lock.get('version')} is being deployed by {lock.get('execution')}; v{version} waits"
            )
        item = {
            "pk": model_pk(model),
            "sk": LOCK_SK,
            "model": model,
            "version": version,
            "execution": execution,
            "until": until,
            "revision": int(lock["revision"]) + 1 if lock else 1,
        }
        try:
            if lock is None:
                self._table.put(item, if_absent=True)
            else:
                self._table.put(item, if_equals=("revision", lock["revision"]))
        except ConditionFailed:
            raise DeploymentInProgress(f"{model}: another deployment took the lock first; v{version} waits") from None

    def release(self, model: str, execution: str) -> bool:
        """Free the lock if ``execution`` holds it; False if it did not."""
        lock = self._table.get(model_pk(model), LOCK_SK)
        if lock is None or lock.get("execution") != execution:
            return False
        freed = {**lock, "execution": None, "until": 0, "revision": int(lock["revision"]) + 1}
        try:
            self._table.put(freed, if_equals=("revision", lock["revision"]))
        except ConditionFailed:
            return False
        return True
