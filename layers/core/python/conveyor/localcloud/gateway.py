"""The local API Gateway: HTTP on 127.0.0.1 -> API Gateway REST proxy event -> the predict handler.

Like API Gateway, it caps the body at 10 MB, answers 502 when the integration fails, and strips
the stage name (``/v1``) from the path it hands the function.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

MAX_BODY = 10 * 1024 * 1024


def proxy_event(
    method: str, raw_path: str, headers: dict[str, str], body: bytes, stage: str, source_ip: str
) -> dict[str, Any]:
    parts = urlsplit(raw_path)
    path = parts.path or "/"
    if path == f"/{stage}" or path.startswith(f"/{stage}/"):
        path = path[len(stage) + 1 :] or "/"
    query = parse_qs(parts.query, keep_blank_values=True)
    try:
        text: str | None = body.decode("utf-8") if body else None
        encoded = False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode(), True
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "stage": stage,
            "httpMethod": method,
            "path": f"/{stage}{path}",
            "resourcePath": "/{proxy+}",
            "identity": {"sourceIp": source_ip},
            "requestTimeEpoch": int(time.time() * 1000),
        },
        "body": text,
        "isBase64Encoded": encoded,
    }


class Gateway:
    def __init__(
        self, invoke: Callable[[dict[str, Any]], tuple[Any, bool]], *, port: int = 0, stage: str = "v1"
    ) -> None:
        self._invoke = invoke
        self.stage = stage
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes: with Nagle's algorithm on, the body waits
            # for the client's delayed ACK, about 40 ms per request on a kept-alive connection.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() not in {"content-length", "connection"}:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY:
                    self.close_connection = True
                    message = {
                        "error": {"code": "payload_too_large", "message": "the body exceeds 10 MB", "details": []}
                    }
                    self._answer(413, {"Content-Type": "application/json"}, json.dumps(message).encode())
                    return
                body = self.rfile.read(length) if length else b""
                event = proxy_event(
                    self.command, self.path, dict(self.headers.items()), body, gateway.stage, self.client_address[0]
                )
                payload, errored = gateway._invoke(event)
                if errored or not isinstance(payload, dict) or "statusCode" not in payload:
                    self._answer(502, {"Content-Type": "application/json"}, b'{"message": "Internal server error"}')
                    return
                out = payload.get("body") or ""
                data = base64.b64decode(out) if payload.get("isBase64Encoded") else out.encode()
                headers = {k: str(v) for k, v in (payload.get("headers") or {}).items()}
                for name, values in (payload.get("multiValueHeaders") or {}).items():
                    headers.setdefault(name, ", ".join(str(v) for v in values))
                self._answer(int(payload["statusCode"]), headers, data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _handle  # noqa: N815

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-api-gateway", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/{self.stage}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
