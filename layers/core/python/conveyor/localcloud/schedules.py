"""Scheduled EventBridge rules, fired locally: moto stores ``rate(...)`` rules but never fires them.

The template's schedule rules (``ScheduleExpression``) are kept here with their Lambda targets.
A background thread fires each rule when it is due on the local *clock*, which is the wall clock
plus an offset that tests (or ``conveyor monitor --advance``, through the hook below) move forward
with :meth:`LocalSchedules.advance`: advancing fires every rule that became due, at once, each
with the time it would have fired at. A target gets what EventBridge would send: the scheduled
event, or the target's ``Input`` / ``InputTransformer`` applied to it.

The hook: a tiny HTTP server on 127.0.0.1 (its URL in the local cloud's state file as
``schedules_url``): ``POST /advance {"seconds": N}`` -> ``{"now": ..., "fired": [...]}``. After the
rules fired, the ``after_advance`` callbacks run (the local CloudWatch evaluates its alarms at the new
time: evaluation periods move with the same clock).

With a data directory (``conveyor.localcloud.persist``) the clock's offset and each rule's next due
time outlive a restart (:meth:`LocalSchedules.dump` / :meth:`LocalSchedules.load`). A rule whose due
time passed while the cloud was stopped fires once at start, not once per period missed.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from conveyor.spec import rate_seconds

log = logging.getLogger(__name__)

Invoke = Callable[[str, dict[str, Any]], Any]
_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.-]+)>")


@dataclass
class Target:
    function: str  # name or ARN, as the runtime knows it
    input: str | None = None  # the target's constant Input (JSON text)
    paths: dict[str, str] = field(default_factory=dict)  # InputTransformer.InputPathsMap
    template: str | None = None  # InputTransformer.InputTemplate

    def payload(self, event: dict[str, Any]) -> dict[str, Any]:
        if self.input is not None:
            return dict(json.loads(self.input))
        if self.template is None:
            return event

        def value(match: re.Match[str]) -> str:
            node: Any = event
            for part in self.paths.get(match.group(1), "$").removeprefix("$").strip(".").split("."):
                node = node.get(part) if part and isinstance(node, dict) else node
            return json.dumps(node)

        return dict(json.loads(_PLACEHOLDER.sub(value, self.template)))


@dataclass
class Rule:
    name: str
    arn: str
    every: int  # seconds
    targets: list[Target]
    next_due: float = 0.0


def _event(rule: Rule, when: float, region: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": rule.arn.split(":")[4] if rule.arn.count(":") >= 5 else "",
        "time": datetime.fromtimestamp(when, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule.arn],
        "detail": {},
    }


class LocalSchedules:
    def __init__(self, invoke: Invoke, *, clock: Callable[[], float] = time.time, region: str = "us-east-1") -> None:
        self._invoke = invoke
        self._clock = clock
        self._region = region
        self._offset = 0.0
        self._rules: list[Rule] = []
        self._lock = threading.Lock()  # one firing pass at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._server: ThreadingHTTPServer | None = None
        self.url = ""
        self.after_advance: list[Callable[[], object]] = []
        self.changes = 0  # bumped when the offset or a due time moves (the persistence's change detection)

    def now(self) -> float:
        return self._clock() + self._offset

    def add(self, name: str, arn: str, expression: str, targets: list[Target]) -> None:
        every = rate_seconds(expression)
        # As on AWS, the first run is one period after the rule is created.
        self._rules.append(Rule(name, arn, every, targets, next_due=self.now() + every))

    def advance(self, seconds: float) -> list[dict[str, Any]]:
        """Move the clock forward and fire what became due (each rule once per period passed).

        The move and the firing happen under one lock, so the background tick cannot fire (and so
        take from this answer) what the advance made due.
        """
        with self._lock:
            self._offset += seconds
            self.changes += 1
            fired = self._fire_due_locked()
        for callback in self.after_advance:
            callback()
        return fired

    def fire_due(self) -> list[dict[str, Any]]:
        with self._lock:
            return self._fire_due_locked()

    def _fire_due_locked(self) -> list[dict[str, Any]]:
        fired = []
        for rule in self._rules:
            while rule.next_due <= self.now():
                event = _event(rule, rule.next_due, self._region)
                rule.next_due += rule.every
                self.changes += 1
                for target in rule.targets:
                    result = self._invoke(target.function, target.payload(event))
                    fired.append({"rule": rule.name, "time": event["time"], "function": target.function})
                    log.info("schedule fired", extra={"rule": rule.name, "result": str(result)[:200]})
        return fired

    # persistence --------------------------------------------------------------------------------
    def dump(self) -> list[dict[str, Any]]:
        """The clock's offset and each rule's next due time (records of the data directory's snapshot)."""
        with self._lock:
            return [{"offset": self._offset}] + [{"rule": r.name, "next_due": r.next_due} for r in self._rules]

    def load(self, records: list[dict[str, Any]]) -> None:
        """Restore what :meth:`dump` wrote, for the rules of this template (a rule no longer there is skipped)."""
        due = {str(r["rule"]): float(r["next_due"]) for r in records if "rule" in r}
        with self._lock:
            self._offset = next((float(r["offset"]) for r in records if "offset" in r), self._offset)
            now = self.now()
            for rule in self._rules:
                if rule.name not in due:
                    continue
                rule.next_due = due[rule.name]
                if rule.next_due < now:  # missed while stopped: the latest missed time, fired once
                    rule.next_due = now - (now - rule.next_due) % rule.every
            self.changes += 1

    # background and hook --------------------------------------------------------------------
    def start(self, *, hook: bool = True) -> None:
        self._thread = threading.Thread(target=self._run, name="schedules", daemon=True)
        self._thread.start()
        if hook:
            self._server = ThreadingHTTPServer(("127.0.0.1", 0), _hook(self))
            threading.Thread(target=self._server.serve_forever, name="schedules-hook", daemon=True).start()
            self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self.fire_due()
            except Exception:
                log.exception("firing schedules failed")


def _hook(schedules: LocalSchedules) -> type[BaseHTTPRequestHandler]:
    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                fired = schedules.advance(float(body.get("seconds", 0))) if self.path == "/advance" else None
            except (ValueError, TypeError) as error:
                self._answer(400, {"error": str(error)})
                return
            if fired is None:
                self._answer(404, {"error": f"no such hook {self.path}"})
            else:
                self._answer(200, {"now": schedules.now(), "fired": fired})

        def _answer(self, status: int, document: dict[str, Any]) -> None:
            data = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Hook
