"""Load the shared sample events in events/ (used by tests and by local invocation alike)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

EVENTS = Path(__file__).resolve().parents[1] / "events"


def load_event(name: str) -> Any:
    return json.loads((EVENTS / name).read_text())
