"""One retrain per burst: the per-model retrain lease in the registry table.

A Spark or Glue export lands as a folder of part files at once. Every file is validated on its
own (its own report, its own quarantine), but retraining is coalesced per model by one item,
``MODEL#{model}`` / ``RETRAIN``, changed only by conditional writes on its ``revision``:

- ``idle`` (or absent): the first accepted drop whose retrain policy fires *claims* it and becomes
  the **owner**: its execution will train (state ``queued``).
- ``queued``: a drop that wants a retrain is **folded** into the owner's run (its execution ends in
  "Folded into run", naming the owner). The owner waits until no drop joined for
  ``retrain.batch_window_seconds`` (and, with ``retrain.wait_for``, until each folder's marker is
  there), at most :data:`MAX_SETTLE_SECONDS`, then *starts*: the lease becomes ``running`` and Train
  reads every object accepted by then.
- ``running``: a drop is folded too, and sets ``pending``: when the owner's run ends (its deployment
  done, or its candidate rejected, or a failure), it *finishes* the lease; with ``pending`` set it
  goes back to ``queued`` and the same execution trains once more on everything accepted since.

So a burst of N files trains at most twice, whatever N. ``expires_at`` keeps a dead owner (an
execution stopped from outside) from holding the lease for ever: a claim takes an expired lease over.
The same item and the same state machine run on AWS and on the local cloud.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from conveyor.errors import ConveyorError
from conveyor.ports import ConditionFailed, Table
from conveyor.registry import model_pk

LEASE_SK = "RETRAIN"
IDLE, QUEUED, RUNNING = "idle", "queued", "running"
OWNER, FOLDED = "owner", "folded"
# The longest a run waits for its burst to settle (or for a wait_for marker) before it trains anyway.
MAX_SETTLE_SECONDS = 3600
# How long a queued lease lives without its owner starting (the owner checks at least every window).
QUEUED_GRACE_SECONDS = 600
_ATTEMPTS = 20
_KEPT_FOLDS = 50


class LeaseLost(ConveyorError):
    """The run's retrain lease expired and another run took it over."""


@dataclass(frozen=True)
class Claim:
    """What "Claim retrain" decided for one drop."""

    outcome: str  # owner | folded
    owner: str  # the execution that trains
    state: str  # the lease's state when the drop joined (queued | running)
    round: int  # the owner's training round (1, then 2 after a pending follow-up)
    wait_seconds: int  # owner: how long to wait before the first "Start retrain" check

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "owner": self.owner,
            "state": self.state,
            "round": self.round,
            "wait_seconds": self.wait_seconds,
            "ready": False,
        }


def folder_of(key: str) -> str:
    """The folder of a dropped key (where an export writes its marker)."""
    return str(PurePosixPath(key).parent)


class RetrainLeases:
    """The per-model retrain lease (module docstring). ``clock`` gives seconds since the epoch."""

    def __init__(self, table: Table, clock: Callable[[], float] = time.time) -> None:
        self._table = table
        self._clock = clock

    def get(self, model: str) -> dict[str, Any] | None:
        return self._table.get(model_pk(model), LEASE_SK)

    def _write(self, item: dict[str, Any], previous: dict[str, Any] | None) -> None:
        if previous is None:
            self._table.put(item, if_absent=True)
        else:
            self._table.put(item, if_equals=("revision", previous["revision"]))

    def claim(self, model: str, execution: str, key: str, *, window: int, lease_seconds: float) -> Claim:
        """The drop's execution owns the model's next retrain, or is folded into the run that does."""
        for _ in range(_ATTEMPTS):
            now = self._clock()
            lease = self.get(model)
            try:
                return self._claim_once(model, execution, key, lease, now, window, lease_seconds)
            except ConditionFailed:
                continue  # somebody else changed the lease first: read it again
        raise ConveyorError(f"{model}: could not claim the retrain lease after {_ATTEMPTS} attempts")

    def _claim_once(
        self,
        model: str,
        execution: str,
        key: str,
        lease: dict[str, Any] | None,
        now: float,
        window: int,
        lease_seconds: float,
    ) -> Claim:
        free = lease is None or lease.get("state") == IDLE or float(lease.get("expires_at", 0)) <= now
        if free or (lease is not None and lease.get("owner") == execution and lease.get("state") == QUEUED):
            item = {
                "pk": model_pk(model),
                "sk": LEASE_SK,
                "model": model,
                "state": QUEUED,
                "owner": execution,
                "revision": int(lease["revision"]) + 1 if lease else 1,
                "round": 1,
                "claimed_at": now,
                "last_joined_at": now,
                "window": window,
                "lease_seconds": lease_seconds,
                "expires_at": now + MAX_SETTLE_SECONDS + QUEUED_GRACE_SECONDS,
                "pending": False,
                "folders": [folder_of(key)] if key else [],
                "folded": [],
                "folded_count": 0,
            }
            if lease is not None and lease.get("state") != IDLE and lease.get("owner") != execution:
                item["took_over"] = lease.get("owner")  # its lease expired: the owner died
            self._write(item, lease)
            return Claim(OWNER, execution, QUEUED, 1, max(1, window))
        assert lease is not None
        joined = dict(lease)
        joined["revision"] = int(lease["revision"]) + 1
        joined["folded"] = [*lease.get("folded", []), {"execution": execution, "key": key, "at": now}][-_KEPT_FOLDS:]
        joined["folded_count"] = int(lease.get("folded_count", 0)) + 1
        if key and folder_of(key) not in lease.get("folders", []):
            joined["folders"] = [*lease.get("folders", []), folder_of(key)]
        if lease["state"] == QUEUED:
            joined["last_joined_at"] = now
        else:
            joined["pending"] = True  # the owner trains once more when its run ends
        self._write(joined, lease)
        return Claim(FOLDED, str(lease["owner"]), str(lease["state"]), int(lease.get("round", 1)), 0)

    def start(
        self, model: str, execution: str, *, marker_missing: Callable[[list[str]], list[str]] | None = None
    ) -> dict[str, Any]:
        """Train now, or wait longer: ``{"ready", "wait_seconds", "summary", "round", ...}``.

        Ready when no drop joined for the lease's window and ``marker_missing(folders)`` (given with
        ``retrain.wait_for``) names no folder, or after :data:`MAX_SETTLE_SECONDS` in any case. Ready
        makes the lease ``running`` (expiring after its ``lease_seconds``).
        """
        for _ in range(_ATTEMPTS):
            now = self._clock()
            lease = self.get(model)
            if lease is None or lease.get("owner") != execution or lease.get("state") != QUEUED:
                raise LeaseLost(f"{model}: this run no longer holds the retrain lease ({(lease or {}).get('owner')})")
            window = int(lease.get("window", 0))
            quiet = now - float(lease["last_joined_at"])
            waited = now - float(lease["claimed_at"])
            missing = marker_missing(list(lease.get("folders", []))) if marker_missing else []
            overdue = waited >= MAX_SETTLE_SECONDS
            if not overdue and (quiet < window or missing):
                wait = window - quiet if quiet < window else max(window, 1)
                waiting_for = f"the marker in {', '.join(missing)}" if missing else "the burst to settle"
                return {
                    **self._view(lease),
                    "ready": False,
                    "wait_seconds": max(1, math.ceil(min(wait, MAX_SETTLE_SECONDS - waited))),
                    "summary": f"{model}: waiting for {waiting_for} ({lease.get('folded_count', 0)} drops joined)",
                }
            running = {
                **lease,
                "state": RUNNING,
                "revision": int(lease["revision"]) + 1,
                "started_at": now,
                "expires_at": now + float(lease.get("lease_seconds", MAX_SETTLE_SECONDS)),
            }
            try:
                self._write(running, lease)
            except ConditionFailed:
                continue
            note = f"; trained without the marker in {', '.join(missing)} after {int(waited)} s" if missing else ""
            return {
                **self._view(running),
                "ready": True,
                "wait_seconds": 0,
                "summary": f"{model}: training round {running.get('round', 1)} with "
                f"{int(running.get('folded_count', 0)) + 1} drops{note}",
            }
        raise ConveyorError(f"{model}: could not start the retrain after {_ATTEMPTS} attempts")

    def finish(self, model: str, execution: str) -> dict[str, Any]:
        """The owner's run ended: release the lease, or queue the follow-up round (``pending``)."""
        for _ in range(_ATTEMPTS):
            now = self._clock()
            lease = self.get(model)
            if lease is None or lease.get("owner") != execution or lease.get("state") == IDLE:
                return {"pending": False, "round": 0, "held": False}
            if lease.get("pending"):
                follow_up = {
                    **lease,
                    "state": QUEUED,
                    "revision": int(lease["revision"]) + 1,
                    "round": int(lease.get("round", 1)) + 1,
                    "pending": False,
                    "claimed_at": now,
                    "last_joined_at": now,
                    "folded": [],
                    "folded_count": 0,
                    "expires_at": now + MAX_SETTLE_SECONDS + QUEUED_GRACE_SECONDS,
                }
                released = follow_up
            else:
                released = {**lease, "state": IDLE, "revision": int(lease["revision"]) + 1, "released_at": now}
            try:
                self._write(released, lease)
            except ConditionFailed:
                continue
            return {
                "pending": released["state"] == QUEUED,
                "round": int(released.get("round", 1)),
                "held": True,
                "wait_seconds": max(1, int(lease.get("window", 0))),
            }
        raise ConveyorError(f"{model}: could not release the retrain lease after {_ATTEMPTS} attempts")

    @staticmethod
    def _view(lease: dict[str, Any]) -> dict[str, Any]:
        return {
            "owner": lease.get("owner"),
            "state": lease.get("state"),
            "round": int(lease.get("round", 1)),
            "folded_count": int(lease.get("folded_count", 0)),
        }


ALERT_SK = "DRIFT_ALERT"
# A drifted drop alerts unless another drifted drop of the model was seen less than this long ago
# (at least the batch window): a burst of drifted part files gives one "Alert drift", not one per file.
MIN_ALERT_QUIET_SECONDS = 120


class DriftAlerts:
    """One drift alert per burst: a debounced per-model record in the registry table."""

    def __init__(self, table: Table, clock: Callable[[], float] = time.time) -> None:
        self._table = table
        self._clock = clock

    def should_alert(self, model: str, execution: str, *, window: int) -> bool:
        """Record a drifted drop; True if it is the first of its burst (the one to alert)."""
        quiet = max(MIN_ALERT_QUIET_SECONDS, 2 * window)
        for _ in range(_ATTEMPTS):
            now = self._clock()
            seen = self._table.get(model_pk(model), ALERT_SK)
            first = seen is None or now - float(seen.get("last_seen_at", 0.0)) >= quiet
            item = {
                "pk": model_pk(model),
                "sk": ALERT_SK,
                "model": model,
                "revision": int(seen["revision"]) + 1 if seen else 1,
                "last_seen_at": now,
                "alerted_by": execution if first else (seen or {}).get("alerted_by"),
                "alerted_at": now if first else float((seen or {}).get("alerted_at", now)),
                "coalesced": 0 if first else int((seen or {}).get("coalesced", 0)) + 1,
            }
            try:
                if seen is None:
                    self._table.put(item, if_absent=True)
                else:
                    self._table.put(item, if_equals=("revision", seen["revision"]))
            except ConditionFailed:
                continue
            return first
        return True  # could not record it: better one alert too many than a drift nobody hears of
