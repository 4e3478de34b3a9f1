"""The domain exception hierarchy: one base class, one subclass per kind of failure.

Every error carries a human message that names the problem (the bad spec key, the missing
column, ...) and an optional ``details`` dict for machines. Callers map the class, never the
message text, to a response.
"""

from __future__ import annotations

from typing import Any


class ConveyorError(Exception):
    """Base class of every error Conveyor raises on purpose.

    Parameters
    ----------
    message
        One human sentence naming the problem.
    details
        Optional machine-readable context (JSON-able).
    """

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: Any = details if details is not None else {}

    def __str__(self) -> str:
        return self.message


class SpecError(ConveyorError):
    """The model spec is invalid (the message names the key path)."""


class DataError(ConveyorError):
    """A data file or frame cannot be used (the message names the file or column)."""


class TrainingError(ConveyorError):
    """Training cannot start or failed."""


class ArtifactError(ConveyorError):
    """A model artifact is missing, corrupt, or cannot be exported or loaded."""


class MalformedOutput(ConveyorError):
    """The model answered with something that is not a prediction of the rows it was given."""


class ObjectMissing(ConveyorError):
    """No such object, or no such version of it: S3's NoSuchKey / NoSuchVersion / 404, or a key whose
    newest version is a delete marker."""

    def __init__(self, bucket: str, key: str, version_id: str | None = None) -> None:
        where = f"s3://{bucket}/{key}" + (f" (version {version_id})" if version_id else "")
        super().__init__(f"no object {where}", {"bucket": bucket, "key": key, "version_id": version_id})
        self.bucket, self.key, self.version_id = bucket, key, version_id


class ConditionFailed(ConveyorError):
    """A conditional write lost a race: somebody else wrote first."""
