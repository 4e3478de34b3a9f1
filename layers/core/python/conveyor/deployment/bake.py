"""The bake decision: pass, extend, breach or insufficient, from the capture records of a phase's window.

Requests, errors, latency and the score shift are measured by :mod:`conveyor.deployment.request_stats`.
Below ``min_requests`` a check is decided only when its failure is already certain; a version is
never promoted on missing evidence.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from conveyor.deployment.request_stats import ScoreShift, VersionStats, score_shift, version_stats
from conveyor.workflow import BREACH, EXTEND, INSUFFICIENT, BakeVerdict

# Verdicts of a bake check are conveyor.workflow.BakeVerdict; the state machine branches on them.

PASS: BakeVerdict = "pass"  # noqa: S105 (a verdict, not a password; workflow.BakeVerdict lists it)


@dataclass(frozen=True)
class Checks:
    """The spec's ``deployment.bake`` thresholds, as the plan carries them (``None``: not checked)."""

    max_p99_latency_ms: float | None = 250.0
    max_error_rate: float | None = 0.01
    max_score_shift: float | None = 0.2
    min_requests: int = 100
    max_extensions: int = 2

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Checks:
        known = {name: values[name] for name in cls.__dataclass_fields__ if name in values}
        return cls(**known)


@dataclass
class BakeAssessment:
    verdict: str  # pass | extend | breach | insufficient
    summary: str
    checks: list[dict[str, Any]]
    trial: VersionStats
    champion: VersionStats
    shift: ScoreShift | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "summary": self.summary,
            "checks": self.checks,
            "trial": self.trial.to_dict(),
            "champion": self.champion.to_dict(),
            "score_shift": asdict(self.shift) if self.shift else None,
        }


def assess_bake(
    records: Sequence[dict[str, Any]],
    *,
    version: int,
    role: str,
    champion_version: int | None,
    checks: Checks,
    extensions: int = 0,
) -> BakeAssessment:
    """Decide a bake from the window's capture records.

    ``role`` is what ``version`` plays in this phase (``challenger`` or ``shadow``); ``extensions``
    how many times this phase's bake was already extended for want of requests.
    """
    trial = version_stats(records, version=version, role=role)
    champion = version_stats(records, version=champion_version, role="champion")
    found = _Findings(enough=trial.requests >= checks.min_requests)
    if checks.max_error_rate is not None:
        _check_error_rate(found, trial, champion, checks.max_error_rate, checks.min_requests)
    if checks.max_p99_latency_ms is not None:
        _check_latency(found, trial, champion, checks.max_p99_latency_ms, checks.min_requests)
    shift: ScoreShift | None = None
    if checks.max_score_shift is not None:
        shift = _check_score_shift(
            found, trial, champion, checks.max_score_shift, checks.min_requests, champion_version
        )
    if not found.enough:
        found.missing.insert(0, f"{trial.requests} requests < min_requests {checks.min_requests}")

    label = f"v{version} ({role})"
    if found.breaches:
        return BakeAssessment(BREACH, f"{label}: " + "; ".join(found.breaches), found.rows, trial, champion, shift)
    if found.missing:
        if extensions < checks.max_extensions:
            summary = f"{label}: not enough evidence yet ({'; '.join(found.missing)}); bake extended"
            return BakeAssessment(EXTEND, summary, found.rows, trial, champion, shift)
        summary = (
            f"{label}: not enough evidence after {extensions} extension(s) ({'; '.join(found.missing)}); "
            "a version is never promoted on missing evidence"
        )
        return BakeAssessment(INSUFFICIENT, summary, found.rows, trial, champion, shift)
    parts = [f"{trial.requests} requests"]
    if trial.error_rate is not None:
        parts.append(f"error rate {trial.error_rate:.1%}")
    if trial.p99_latency_ms is not None:
        parts.append(f"p99 {trial.p99_latency_ms:.1f} ms")
    if shift is not None:
        parts.append(f"score shift {shift.shift:.3f}")
    return BakeAssessment(PASS, f"{label}: healthy ({', '.join(parts)})", found.rows, trial, champion, shift)


@dataclass
class _Findings:
    """The checks of one bake as they are made: a row per check, breaches, and evidence still missing."""

    enough: bool  # at least min_requests requests of the trial version
    rows: list[dict[str, Any]] = field(default_factory=list)
    breaches: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def _check_error_rate(
    found: _Findings, trial: VersionStats, champion: VersionStats, limit: float, minimum: int
) -> None:
    # Below min_requests, a rate counted against min_requests is the lowest it could still fall to.
    rate = trial.errors / max(trial.requests, minimum, 1)
    decided = found.enough or rate > limit
    failed = decided and rate > limit
    found.rows.append(_check("error_rate", trial.error_rate, limit, failed, decided, champion.error_rate))
    if failed:
        found.breaches.append(f"error rate {trial.error_rate:.1%} ({trial.errors} of {trial.requests}) > {limit:.1%}")


def _check_latency(found: _Findings, trial: VersionStats, champion: VersionStats, limit: float, minimum: int) -> None:
    slow = sum(1 for latency in trial.latencies if latency > limit)
    certain = slow / max(len(trial.latencies), minimum, 1) > 0.01
    decided = (found.enough and trial.p99_latency_ms is not None) or certain
    failed = certain if not found.enough else (trial.p99_latency_ms or 0.0) > limit
    found.rows.append(_check("p99_latency_ms", trial.p99_latency_ms, limit, failed, decided, champion.p99_latency_ms))
    if failed:
        found.breaches.append(f"p99 latency {trial.p99_latency_ms:.1f} ms > {limit:g} ms")


def _check_score_shift(
    found: _Findings,
    trial: VersionStats,
    champion: VersionStats,
    limit: float,
    minimum: int,
    champion_version: int | None,
) -> ScoreShift | None:
    if not (found.enough and champion.requests >= minimum and trial.scores and champion.scores):
        found.rows.append(_check("score_shift", None, limit, False, False, None))
        if found.enough and champion.requests < minimum:
            found.missing.append(f"the champion answered {champion.requests} < {minimum} requests to compare with")
        elif found.enough and not trial.scores:
            found.missing.append("no scored rows to compare")
        return None
    shift = score_shift(champion.scores, trial.scores)
    failed = shift.shift > limit
    found.rows.append(_check("score_shift", shift.shift, limit, failed, True, None))
    if failed:
        found.breaches.append(
            f"score shift (debiased PSI) {shift.shift:.3f} > {limit:g} against v{champion_version}'s scores"
        )
    return shift


def _check(
    name: str, value: float | None, threshold: float, failed: bool, decided: bool, champion: float | None
) -> dict[str, Any]:
    return {
        "name": name,
        "value": None if value is None or (isinstance(value, float) and math.isnan(value)) else value,
        "threshold": threshold,
        "champion": champion,
        "passed": not failed,
        "decided": decided,
    }
