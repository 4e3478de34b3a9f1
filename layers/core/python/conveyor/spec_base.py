"""What every section of the spec shares: unknown keys are refused, and schedules use EventBridge's rate syntax."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """A spec section: a key it does not know is an error that names it, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


RATE_PATTERN = r"^rate\(\s*\d+\s+(minute|hour|day|week)s?\s*\)$"


def rate_seconds(expression: str) -> int:
    """``rate(5 minutes)`` -> 300 (the EventBridge rate syntax the spec uses for schedules)."""
    amount, unit = expression.strip()[5:-1].split()
    return int(amount) * {"minute": 60, "hour": 3600, "day": 86400, "week": 604800}[unit.rstrip("s")]
