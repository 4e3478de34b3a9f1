"""API Gateway REST proxy events in and out, and the function's JSON log lines, in the standard
library: what the predict function used Powertools' resolver and logger for, without their import
(about a third of its cold start) or their per-request work (most of its warm latency).

``Route`` matches a method and a path template (``/models/<model>/predict``); ``respond`` builds
the proxy response; ``JsonLog`` writes one JSON object per line (``level``, ``message``,
``timestamp``, ``service``, ``function_name``, ``function_request_id``, ``correlation_id``,
``cold_start`` and the fields given), and is also a ``logging.Handler`` for the domain's loggers.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO


@dataclass
class ProxyRequest:
    """The parts of a REST proxy event a route reads."""

    method: str
    path: str
    headers: dict[str, str]
    body: str | None
    query: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    request_id: str = ""

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> ProxyRequest:
        body = event.get("body")
        if body is not None and event.get("isBase64Encoded"):
            import base64  # rare (API Gateway encodes binary bodies only): not at a cold start

            body = base64.b64decode(body).decode("utf-8", "replace")
        return cls(
            method=str(event.get("httpMethod") or "GET").upper(),
            path=str(event.get("path") or "/"),
            headers=dict(event.get("headers") or {}),
            body=body,
            query=dict(event.get("queryStringParameters") or {}),
        )


Handler = Callable[[ProxyRequest], dict[str, Any]]


@dataclass(frozen=True)
class Route:
    method: str
    template: str  # "/models/<model>/predict": a <name> segment is a path parameter
    handler: Handler
    # the template's segments, split once: (literal, None) or (None, parameter name)
    segments: tuple[tuple[str | None, str | None], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parts = self.template.strip("/").split("/")
        segments = tuple((None, p[1:-1]) if p.startswith("<") and p.endswith(">") else (p, None) for p in parts)
        object.__setattr__(self, "segments", segments)  # a frozen dataclass's derived field

    def match(self, request: ProxyRequest) -> dict[str, str] | None:
        if request.method != self.method:
            return None
        parts = request.path.strip("/").split("/")
        if len(parts) != len(self.segments):
            return None
        params: dict[str, str] = {}
        for part, (literal, name) in zip(parts, self.segments, strict=True):
            if name is not None:
                if not part:
                    return None
                params[name] = part
            elif part != literal:
                return None
        return params


def respond(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
    """A REST proxy response with a JSON body."""
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json", **(headers or {})},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def _timestamp(seconds: float) -> str:
    whole = time.gmtime(seconds)
    return time.strftime("%Y-%m-%d %H:%M:%S", whole) + f",{int(seconds % 1 * 1000):03d}+0000"


class JsonLog(logging.Handler):
    """JSON log lines on stdout (looked up per line: tests capture it). ``invocation`` sets the
    fields of the current invocation; ``write`` logs one line without the logging module's cost."""

    def __init__(self, service: str, stream: TextIO | None = None) -> None:
        super().__init__()
        self._service = service
        self._stream = stream
        self._context: dict[str, Any] = {}
        self._cold = True

    def invocation(self, context: Any, correlation_id: str | None) -> None:
        self._context = {
            "service": self._service,
            "cold_start": self._cold,
            "function_name": getattr(context, "function_name", ""),
            "function_request_id": getattr(context, "aws_request_id", ""),
            "correlation_id": correlation_id,
        }
        self._cold = False

    def write(self, level: str, message: str, fields: dict[str, Any] | None = None, when: float | None = None) -> None:
        self.put(self.line(level, message, fields, when))

    def line(
        self, level: str, message: str, fields: dict[str, Any] | None = None, when: float | None = None
    ) -> dict[str, Any]:
        """One line's fields, this invocation's included, stamped now: ``put`` writes it, now or after
        the response (the predict handler's ``scored`` line: the client does not wait for its JSON)."""
        return {
            "level": level,
            "message": message,
            "timestamp": time.time() if when is None else when,
            **self._context,
            **(fields or {}),
        }

    def put(self, line: dict[str, Any]) -> None:
        """Write a ``line`` (its ``timestamp`` in epoch seconds) as one JSON object."""
        text = json.dumps({**line, "timestamp": _timestamp(line["timestamp"])}, default=str)
        (self._stream or sys.stdout).write(text + "\n")

    def emit(self, record: logging.LogRecord) -> None:
        """The domain's log records (``logging.getLogger("conveyor...")``), as the same JSON lines."""
        try:
            standard = logging.LogRecord("", 0, "", 0, "", (), None).__dict__
            extra = {k: v for k, v in record.__dict__.items() if k not in standard and k not in {"message", "asctime"}}
            extra["location"] = f"{record.funcName}:{record.lineno}"
            if record.exc_info:
                extra["exception"] = logging.Formatter().formatException(record.exc_info)
            self.write(record.levelname, record.getMessage(), extra, record.created)
        except Exception:
            self.handleError(record)
