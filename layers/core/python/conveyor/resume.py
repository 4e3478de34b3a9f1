"""Resuming an interrupted pipeline execution at the state it had reached (``conveyor retry``).

An execution the local cloud was running when it stopped is restored as ABORTED with the error
``Interrupted``. Its history says which state it entered last and with what input; a new execution
(named after it) starts with that input plus ``{"resume": {"state", "execution"}}``, and the state
machine's "Resume at?" choice jumps there (``infra/resume_definition.py``). Validate never runs twice:
an execution interrupted before Validate finished starts over from its original input instead.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from conveyor.errors import ConveyorError
from conveyor.workflow import RESUMABLE_STATES, RESUME_EARLIER, Error, Key, State

# Where a deployment waits (for a reviewer or a bake): the local cloud resumes these itself at restart.
DEPLOYMENT_WAITS = (
    State.APPROVAL_NEEDED,
    State.AWAIT_APPROVAL,
    State.NEXT_PHASE,
    State.START_PHASE,
    State.BAKE,
    State.CHECK_BAKE,
    State.BAKE_VERDICT,
    State.EXTEND_BAKE,
)
# Reached before Validate finished: start over from the original input (nothing was recorded yet).
BEFORE_VALIDATION = (State.RUN_KIND, State.VALIDATE, State.PREPARE_RETRAIN)
_MAX_NAME = 80


class CannotResume(ConveyorError):
    pass


@dataclass(frozen=True)
class Resumption:
    """The new execution: its name and input, and the state it starts at (None: from the start)."""

    name: str
    input: dict[str, Any]
    state: str | None
    reached: str | None


def reached(events: list[dict[str, Any]]) -> tuple[str | None, dict[str, Any]]:
    """The last state entered and the input it was entered with."""
    for event in reversed(events):
        details = event.get("stateEnteredEventDetails")
        if details:
            document = json.loads(details.get("input") or "{}")
            return str(details.get("name")), document if isinstance(document, dict) else {}
    return None, {}


def is_interrupted(description: dict[str, Any]) -> bool:
    return description.get("status") == "ABORTED" and description.get("error") == Error.INTERRUPTED


def resumed_from(execution_input: str | None) -> str | None:
    """The interrupted execution an execution resumes (from its input), or None."""
    try:
        document = json.loads(execution_input or "{}")
    except ValueError:
        return None
    resume = document.get(Key.RESUME) if isinstance(document, dict) else None
    return str(resume.get("execution")) if isinstance(resume, dict) and resume.get("execution") else None


def retry_name(name: str, existing: set[str]) -> str:
    """``{name}-r{n}``: the first n not taken, within Step Functions' 80 characters."""
    base = re.sub(r"-r\d+$", "", name)
    for n in range(1, 1000):
        suffix = f"-r{n}"
        candidate = base[: _MAX_NAME - len(suffix)] + suffix
        if candidate not in existing:
            return candidate
    raise CannotResume(f"{name} was retried too often")


def plan_resumption(name: str, original_input: str, events: list[dict[str, Any]], existing: set[str]) -> Resumption:
    """How to resume interrupted execution ``name`` (its input and history events given)."""
    state, state_input = reached(events)
    new_name = retry_name(name, existing)
    if state is None or state in BEFORE_VALIDATION:
        document = json.loads(original_input or "{}")
        return Resumption(new_name, document if isinstance(document, dict) else {}, None, state)
    reached_state = state
    if state in RESUME_EARLIER:
        state = RESUME_EARLIER[state]
        state_input.pop(Key.COMPUTE, None)
    if state not in RESUMABLE_STATES:
        raise CannotResume(
            f"{name} stopped in state {state!r}, where an execution cannot be resumed: "
            "drop the data again or start the step by hand"
        )
    state_input.pop(Key.RESUME, None)
    return Resumption(new_name, {**state_input, Key.RESUME: {"state": state, "execution": name}}, state, reached_state)
