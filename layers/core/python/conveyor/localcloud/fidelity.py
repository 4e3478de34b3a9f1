"""Where moto is looser than AWS in a way Conveyor relies on, the local cloud tightens it.

DynamoDB applies a conditional write atomically; moto checks the condition and then writes, with no
lock, so two threads of the threaded server can both pass ``attribute_not_exists`` and both write.
Registry versions and routing revisions depend on that atomicity, so ``serialize_dynamodb_writes``
wraps moto's write methods in one lock. moto is pinned (moto==5.2.5) and
``tests/component/test_moto_patch.py`` fails if these methods change.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

DYNAMODB_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")
_lock = threading.RLock()
_MARK = "__conveyor_serialized__"


def serialize_dynamodb_writes() -> None:
    from moto.dynamodb.models import DynamoDBBackend

    for name in DYNAMODB_WRITES:
        original: Callable[..., Any] = getattr(DynamoDBBackend, name)
        if not getattr(original, _MARK, False):
            setattr(DynamoDBBackend, name, _locked(original))


def _locked(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with _lock:
            return original(*args, **kwargs)

    setattr(locked, _MARK, True)
    return locked


def write_lock() -> Any:
    """The lock every DynamoDB write holds: a snapshot copies the items under it."""
    return _lock
