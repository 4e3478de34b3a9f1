"""A predict request as the API reads it: its request id and entity key (headers), its JSON body,
and the errors it is refused with (status and code of the API's error body). Standard library only."""

from __future__ import annotations

import json
from typing import Any

from conveyor.errors import ConveyorError

MAX_HEADER_VALUE = 200


class RequestError(ConveyorError):
    status = 400
    code = "invalid_request"

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details if details is not None else []


class InvalidInput(RequestError):
    status = 400
    code = "invalid_input"


class ModelNotFound(RequestError):
    status = 404
    code = "model_not_found"


class TooManyRows(RequestError):
    status = 413
    code = "too_many_rows"


class ModelUnavailable(RequestError):
    status = 503
    code = "model_unavailable"


def _header(headers: dict[str, str] | None, wanted: str) -> str | None:
    for name, value in (headers or {}).items():
        if name.lower() == wanted and value and len(value) <= MAX_HEADER_VALUE:
            return value
    return None


def request_id_from(headers: dict[str, str] | None) -> str:
    """Honour a client's X-Request-Id (any header case); otherwise make one."""
    found = _header(headers, "x-request-id")
    if found:
        return found
    import uuid  # here, not at import: uuid imports platform, a cost at every cold start

    return str(uuid.uuid4())


def entity_key_from(headers: dict[str, str] | None) -> str | None:
    """The client's X-Entity-Key (any header case): requests with the same key land on the same side
    of a traffic split. None when absent (the request id is used instead)."""
    return _header(headers, "x-entity-key")


def parse_body(raw: str | None) -> Any:
    """The request body as JSON, or InvalidInput naming why not."""
    try:
        return json.loads(raw or "")
    except json.JSONDecodeError as error:
        raise InvalidInput("the body is not valid JSON", [{"field": "body", "message": error.msg}]) from None
    except (ValueError, TypeError, RecursionError):  # e.g. a 5,000-digit integer, or nesting 100,000 deep
        raise InvalidInput(
            "the body is JSON this API cannot read",
            [{"field": "body", "message": "integer too long or nesting too deep"}],
        ) from None
