"""What the gate answers: one ``Check`` per test, the ``ValidationReport`` and its summary line,
and the 1-based row numbers and examples that failed checks cite."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from conveyor.jsonsafe import json_safe

Severity = Literal["error", "warn", "info"]
EXAMPLES = 5  # rows cited by a failed check


@dataclass
class Check:
    """One check of the gate.

    ``value`` is what the check measured and ``threshold`` the limit it was held to, both None
    when the check has no numeric measure (a wrong delimiter, a missing column). The direction
    depends on the check: shares and counts fail above the threshold (``not_null``: null share vs
    ``max_null_share``; ``type``, ``sentinel``, ``allowed``: a count vs 0; ``leakage``: AUC or
    |correlation| vs the leakage limit, failing at or above it), while sizes fail below it
    (``min_rows``, ``row_count``: rows vs the minimum expected; ``class_balance``: the rarest
    class's share vs ``min_class_share``; ``constant``, ``target``: distinct values vs 2, though null
    targets are counted against 0).
    """

    name: str
    severity: Severity
    passed: bool
    message: str
    column: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    value: float | None = None
    threshold: float | None = None
    # Row-level faults only: which rows of the frame are at fault (a bool mask). Rows can be set
    # aside in quarantine (``validation.max_bad_row_share``); not part of the report's JSON.
    fault_rows: np.ndarray | None = field(default=None, repr=False, compare=False)


@dataclass
class ValidationReport:
    """The verdict on one data object, with every check that led to it."""

    verdict: Literal["accepted", "rejected"]
    checks: list[Check]
    rows: int
    columns: list[str]
    summary: str
    source: str = ""
    sha256: str = ""
    errors: int = 0  # failed error checks
    warnings: int = 0  # failed warn checks
    rows_quarantined: int = 0  # rows set aside (validation.max_bad_row_share); the rest is accepted
    quarantined: dict[str, int] = field(default_factory=dict)  # rows set aside per check name

    @property
    def accepted(self) -> bool:
        return self.verdict == "accepted"

    def failures(self, severity: Severity = "error") -> list[Check]:
        """The failed checks of one severity."""
        return [c for c in self.checks if c.severity == severity and not c.passed]

    def to_dict(self) -> dict[str, Any]:
        masks = [c.fault_rows for c in self.checks]
        try:
            for check in self.checks:  # masks are for splitting the file, not for the JSON
                check.fault_rows = None
            document = asdict(self)
        finally:
            for check, mask in zip(self.checks, masks, strict=True):
                check.fault_rows = mask
        for check_doc in document["checks"]:
            del check_doc["fault_rows"]
        return json_safe(document)


def short(text: str, limit: int = 100) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def build_report(
    checks: list[Check],
    rows: int,
    columns: list[str],
    source: str,
    sha256: str = "",
    *,
    quarantined: dict[str, int] | None = None,
    rows_quarantined: int = 0,
) -> ValidationReport:
    """The verdict and summary line of a list of checks: any failed error check rejects."""
    failed = [c for c in checks if c.severity == "error" and not c.passed]
    warned = [c for c in checks if c.severity == "warn" and not c.passed]
    verdict: Literal["accepted", "rejected"] = "rejected" if failed else "accepted"
    set_aside = f", {rows_quarantined} set aside in quarantine" if rows_quarantined else ""
    if failed:
        shown = "; ".join(short(c.message) for c in failed[:3]) + ("; ..." if len(failed) > 3 else "")
        summary = f"rejected {source}: {len(failed)} error{'s' if len(failed) > 1 else ''} ({shown})"
    elif warned:
        shown = "; ".join(short(c.message) for c in warned[:3]) + ("; ..." if len(warned) > 3 else "")
        summary = (
            f"accepted {source} with {len(warned)} warning{'s' if len(warned) > 1 else ''}: "
            f"{rows} rows{set_aside}, {len(columns)} columns ({shown})"
        )
    else:
        summary = f"accepted {source}: {rows} rows, {len(columns)} columns"
    return ValidationReport(
        verdict=verdict,
        checks=checks,
        rows=rows,
        columns=columns,
        summary=summary,
        source=source,
        sha256=sha256,
        errors=len(failed),
        warnings=len(warned),
        rows_quarantined=rows_quarantined,
        quarantined=dict(quarantined or {}),
    )


class Rows:
    """Frame positions -> the 1-based data row numbers of the file (bad CSV lines are skipped)."""

    def __init__(self, numbers: np.ndarray | None = None, *, skipped: np.ndarray | None = None) -> None:
        self._numbers = numbers
        self._skipped = None if skipped is None or not len(skipped) else np.unique(skipped)

    @classmethod
    def skipping(cls, skipped: np.ndarray) -> Rows:
        """Row numbers of a file read in chunks: 1, 2, ... without the ``skipped`` numbers (bad CSV
        lines, rows set aside), with no array as long as the file."""
        return cls(skipped=np.asarray(skipped, dtype=np.int64))

    def subset(self, keep: np.ndarray) -> Rows:
        """The row numbers of the frame's rows where ``keep`` is True (a part of the file)."""
        numbers = self._numbers if self._numbers is not None else np.arange(1, len(keep) + 1)
        return Rows(np.asarray(numbers)[: len(keep)][keep])

    def of(self, positions: np.ndarray) -> list[int]:
        if self._skipped is not None:
            return [self._skipping(int(p)) for p in positions]
        if self._numbers is None:
            return [int(p) + 1 for p in positions]
        return [int(self._numbers[p]) for p in positions]

    def _skipping(self, position: int) -> int:
        """The (position + 1)-th positive integer not skipped."""
        assert self._skipped is not None
        number = position + 1
        for skipped in self._skipped:
            if skipped > number:
                break
            number += 1
        return number


def row_examples(mask: pd.Series | np.ndarray, column: pd.Series, rows: Rows) -> list[dict[str, Any]]:
    """The first ``EXAMPLES`` flagged rows as ``{"row": number, "value": value}``."""
    flags = mask.to_numpy(dtype=bool, na_value=False) if isinstance(mask, pd.Series) else mask
    positions = np.flatnonzero(flags)[:EXAMPLES]
    numbers = rows.of(positions)
    return [{"row": n, "value": json_safe(column.iloc[p])} for n, p in zip(numbers, positions, strict=True)]


def cite(examples: list[dict[str, Any]]) -> str:
    """Examples as text for a message: ``row 3: 'x', row 9: 'y'``."""
    return ", ".join(f"row {e['row']}: {e['value']!r}" for e in examples)


def internal_error(filename: str, exc: Exception) -> Check:
    """The check a gate answers with when it fails on an input itself: the file is quarantined, never lost."""
    return Check(
        "internal_error",
        "error",
        False,
        f"the validator failed on {filename} ({type(exc).__name__}); quarantined for a person to look at",
    )
