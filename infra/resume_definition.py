"""Resuming an interrupted execution (``conveyor retry``, and the local cloud's restart for deployments).

"Run kind?" sends an execution whose input carries ``$.resume`` to "Resume at?", which jumps to the
state named by ``$.resume.state`` (``conveyor.workflow.RESUMABLE_STATES``) with the input that state
had when the interrupted execution entered it. Validate is never a target: a drop validated twice would
be quarantined as a repeated arrival.
"""

from __future__ import annotations

from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from conveyor.workflow import RESUMABLE_STATES, Error, Key, State, path


def build_resume(scope: Construct) -> sfn.Choice:
    """The "Resume at?" choice over the states already built in ``scope`` (call it after they are)."""
    choice = sfn.Choice(scope, State.RESUME_AT)
    for name in RESUMABLE_STATES:
        target = scope.node.try_find_child(name)
        if not isinstance(target, sfn.State):
            raise ValueError(f"resumable state {name!r} is not in the state machine")
        choice.when(sfn.Condition.string_equals(path(Key.RESUME, "state"), name), target)
    return choice.otherwise(
        sfn.Fail(
            scope,
            State.CANNOT_RESUME,
            error=Error.PIPELINE_FAILED,
            cause="the state to resume at is not one an interrupted execution can be resumed at",
        )
    )
