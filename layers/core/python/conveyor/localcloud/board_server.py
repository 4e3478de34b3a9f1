"""The local board, served on a port of its own (the prediction API's gateway stays as it is).

``GET /`` the board (refreshes itself; ``?fragment=1`` its content only), ``GET /board.json`` the
document, ``GET /static.html`` the read-only page ``conveyor board --out`` writes, ``POST /api/approve``
and ``POST /api/reject`` (JSON ``{model, version, reason?}``) the reviewer's buttons. A POST needs the
``X-Conveyor-Board`` header and a JSON body: a page of another site cannot send either without a CORS
preflight, which this server never grants.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from conveyor.board.actions import BadAction, Reviewing, review
from conveyor.board.document import board_document
from conveyor.board.page import board_body, board_page
from conveyor.board.sources import BoardSources
from conveyor.errors import ConveyorError
from conveyor.jsonsafe import json_safe

log = logging.getLogger(__name__)
MAX_BODY = 64 * 1024
WARM_SECONDS = 2.0


def _status_of(error: ConveyorError) -> tuple[int, str]:
    from conveyor.deployment import DeploymentError
    from conveyor.registry import UnknownModel

    if isinstance(error, BadAction):
        return 400, "bad_request"
    if isinstance(error, UnknownModel):
        return 404, "not_found"
    if isinstance(error, DeploymentError):
        return 409, "nothing_waits"
    return 500, "failed"


class _BoardHandler(BaseHTTPRequestHandler):
    """The board's HTTP face; ``board`` is set on the subclass each server makes."""

    board: Any = None
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _answer(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, document: Any) -> None:
        self._answer(status, "application/json", json.dumps(json_safe(document)).encode())

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        if parts.path not in ("/", "/board.json", "/static.html"):
            self._json(404, {"error": {"code": "not_found", "message": f"no page {parts.path}"}})
            return
        document = self.board.document()
        if parts.path == "/board.json":
            self._json(200, document)
            return
        interactive = parts.path == "/"
        html = (
            board_body(document, interactive=True)
            if "fragment" in query
            else board_page(document, interactive=interactive)
        )
        self._answer(200, "text/html; charset=utf-8", html.encode())

    def do_POST(self) -> None:
        action = urlsplit(self.path).path.removeprefix("/api/")
        length = int(self.headers.get("Content-Length") or 0)
        if not self.headers.get("X-Conveyor-Board") or "json" not in (self.headers.get("Content-Type") or ""):
            self._json(403, {"error": {"code": "forbidden", "message": "board requests only"}})
            return
        if length > MAX_BODY:
            self.close_connection = True
            self._json(413, {"error": {"code": "payload_too_large", "message": "body too large"}})
            return
        try:
            params = json.loads(self.rfile.read(length) or b"{}")
            result = review(self.board.reviewing, action, params, by=f"local board ({self.client_address[0]})")
        except json.JSONDecodeError:
            self._json(400, {"error": {"code": "bad_request", "message": "the body is not JSON"}})
        except ConveyorError as error:
            status, code = _status_of(error)
            self._json(status, {"error": {"code": code, "message": str(error)}})
        else:
            log.info("board action", extra={"action": action, "model": result["model"], "version": result["version"]})
            self._json(200, result)


class BoardServer:
    def __init__(
        self,
        sources: BoardSources,
        reviewing: Reviewing,
        *,
        port: int = 0,
        clock: Callable[[], float] = time.time,
        warm: Callable[[], None] | None = None,
    ) -> None:
        """``warm`` runs every ``WARM_SECONDS`` while the server runs (the metric index's refresh), so a
        page seldom waits for metric data that arrived since the last one."""
        self.sources = sources
        self._warm = warm
        self._stopped = threading.Event()
        self.reviewing = reviewing
        self.clock = clock
        handler = type("Handler", (_BoardHandler,), {"board": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-board", daemon=True)

    def document(self) -> dict[str, Any]:
        return board_document(self.sources, now=self.clock())

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/"

    def start(self) -> None:
        self._thread.start()
        if self._warm is not None:
            threading.Thread(target=self._keep_warm, args=(self._warm,), name="local-board-index", daemon=True).start()

    def _keep_warm(self, warm: Callable[[], None]) -> None:
        while not self._stopped.wait(WARM_SECONDS):
            try:
                warm()
            except Exception:  # the board must not die with its background refresh; the next page retries
                log.exception("board metric index refresh failed")

    def stop(self) -> None:
        self._stopped.set()
        self._server.shutdown()
        self._server.server_close()


def _output(outputs: dict[str, str], name: str) -> str:
    return next(value for key, value in outputs.items() if key.startswith(name))


def start_board(outputs: dict[str, str], *, region: str, port: int = 0) -> BoardServer:
    """The board of a started local cloud (its clients point at the moto server through AWS_ENDPOINT_URL)."""
    from moto.cloudwatch.models import cloudwatch_backends

    from conveyor.adapters.aws import (
        CloudWatchAlarmStates,
        DynamoTable,
        EventBridgePublisher,
        RegistryScan,
        StepFunctionsCallbacks,
        StepFunctionsHistory,
    )
    from conveyor.deployment import Deployments
    from conveyor.localcloud.board_metrics import LocalMetricReader
    from conveyor.localcloud.resolver import ACCOUNT
    from conveyor.localcloud.template import STACK
    from conveyor.registry import Registry
    from conveyor.spec import SIGNALS

    table_name = _output(outputs, "RegistryTableName")
    reader = LocalMetricReader(cloudwatch_backends[ACCOUNT][region])
    table = DynamoTable(table_name)
    registry, deployments = Registry(table), Deployments(table)
    sources = BoardSources(
        registry_items=RegistryScan(table_name),
        metrics=reader,
        alarms=CloudWatchAlarmStates(STACK, SIGNALS),
        runs=StepFunctionsHistory(_output(outputs, "StateMachineArn")),
        stack=STACK,
    )
    reviewing = Reviewing(registry, deployments, StepFunctionsCallbacks(), EventBridgePublisher())
    server = BoardServer(sources, reviewing, port=port, warm=reader.refresh)
    server.start()
    return server
