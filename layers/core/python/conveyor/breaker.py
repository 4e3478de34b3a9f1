"""A circuit breaker per model version, in each prediction container.

``closed``: requests go to the version. It opens after ``failures`` consecutive failures, or when
more than ``error_rate`` of at least ``min_requests`` requests in the last ``window_seconds`` failed.
``open``: the version is not tried; the champion answers for it. After ``cooldown_seconds`` the
breaker is ``half_open``: one trial request goes through (the others are still answered by the
champion); its success closes the breaker, its failure opens it again for another cooldown.

A failure is a 5xx of the version itself (artifact that fails to load or verify, a session that
raises, a malformed output); a client's 4xx says nothing about the version and is not counted.
A slow version that answers is not a failure here: the bake and the latency alarms judge it.

Standard library only (the predict path), and the clock is injected (tests drive it).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


@dataclass(frozen=True)
class BreakerSettings:
    """The spec's ``serving.breaker`` (defaults for a version registered without one)."""

    failures: int = 5
    window_seconds: float = 10.0
    cooldown_seconds: float = 30.0
    error_rate: float = 0.5
    min_requests: int = 10

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> BreakerSettings:
        data = data or {}
        default = cls()
        return cls(
            failures=int(data.get("failures", default.failures)),
            window_seconds=float(data.get("window_seconds", default.window_seconds)),
            cooldown_seconds=float(data.get("cooldown_seconds", default.cooldown_seconds)),
            error_rate=float(data.get("error_rate", default.error_rate)),
            min_requests=int(data.get("min_requests", default.min_requests)),
        )


class Breaker:
    """One version's breaker (thread-safe: a local gateway may serve requests from several threads)."""

    def __init__(self, settings: BreakerSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._state = CLOSED
        self._consecutive = 0
        self._recent: deque[tuple[float, bool]] = deque()  # (when, failed) within the window
        self._recent_failed = 0  # how many of them failed (kept as they come and go: O(1) per request)
        self._opened_at: float | None = None
        self._trial_started: float | None = None
        self.openings = 0

    @property
    def state(self) -> str:
        with self._lock:
            return self._current_state(self._clock())

    @property
    def opened_at(self) -> float | None:
        """When it last opened (the injected clock's time), None if it never did."""
        return self._opened_at

    @property
    def failures(self) -> int:
        """Consecutive failures so far."""
        return self._consecutive

    def _current_state(self, now: float) -> str:
        if (
            self._state == OPEN
            and self._opened_at is not None
            and now - self._opened_at >= self.settings.cooldown_seconds
        ):
            self._state = HALF_OPEN
            self._trial_started = None
        return self._state

    def allow(self) -> bool:
        """Whether this request may go to the version; in half-open, only the first one does (the trial;
        a trial that never reports back frees its place after another cooldown)."""
        with self._lock:
            now = self._clock()
            state = self._current_state(now)
            if state == CLOSED:
                return True
            if state == OPEN:
                return False
            stale = self._trial_started is not None and now - self._trial_started >= self.settings.cooldown_seconds
            if self._trial_started is None or stale:
                self._trial_started = now
                return True
            return False

    def record(self, *, failed: bool) -> bool:
        """Record how a request the version was given went; True when this failure opened the breaker."""
        with self._lock:
            now = self._clock()
            state = self._current_state(now)
            if state == HALF_OPEN:
                self._trial_started = None
                if failed:
                    self._consecutive += 1
                    return self._open(now)
                self._close()
                return False
            self._consecutive = self._consecutive + 1 if failed else 0
            self._recent.append((now, failed))
            self._recent_failed += failed
            while self._recent and now - self._recent[0][0] > self.settings.window_seconds:
                self._recent_failed -= self._recent.popleft()[1]
            if state != CLOSED or not failed:
                return False
            if self._consecutive >= self.settings.failures or self._rate_exceeded():
                return self._open(now)
            return False

    def _rate_exceeded(self) -> bool:
        if len(self._recent) < max(1, self.settings.min_requests):
            return False
        return self._recent_failed / len(self._recent) > self.settings.error_rate

    def _open(self, now: float) -> bool:
        self._state, self._opened_at = OPEN, now
        self._recent.clear()
        self._recent_failed = 0
        self.openings += 1
        return True

    def _close(self) -> None:
        self._state, self._consecutive = CLOSED, 0
        self._recent.clear()
        self._recent_failed = 0

    def describe(self, wall_offset: float = 0.0) -> dict[str, Any]:
        """``{"state", "opened_at", "failures"}``; ``opened_at`` shifted by ``wall_offset`` (so a monotonic
        clock's time reads as epoch seconds)."""
        with self._lock:
            state = self._current_state(self._clock())
            opened = round(self._opened_at + wall_offset, 3) if self._opened_at is not None else None
            return {"state": state, "opened_at": opened, "failures": self._consecutive}
