"""The errors of a deployment: the stages map them to the state machine's retries and failures."""

from __future__ import annotations

from conveyor.errors import ConveyorError


class DeploymentError(ConveyorError):
    pass


class DeploymentInProgress(DeploymentError):
    """Another version is on trial for this model; the state machine retries later."""


class NoApprovalPending(DeploymentError):
    """No deployment of this version waits for a reviewer."""


class ApprovalExpired(DeploymentError):
    """The deployment waited for a reviewer, but its execution no longer does (timed out or ended)."""
