"""Work the prediction service does after the client has its answer: capture records, metrics and
the shadow's scoring. A Lambda container is frozen once its invocation ends, so a plain background
thread would stall until the next request; an *internal extension* is what keeps it running: a
thread of the runtime process registered with Lambda's Extensions API
(``/2020-01-01/extension``, events ``INVOKE``). Lambda sends the handler's response to the client
as soon as the runtime posts it, and ends the invocation (freezing the container) only when every
extension has asked for its next event. So the extension thread waits for the handler to finish,
runs the work the request queued, then asks for the next event. See docs/capture.md.

Three runners, one interface (``defer`` a job, ``finished`` at the end of each invocation,
``drain`` to wait for the queue):

- ``LambdaExtensionRunner`` on Lambda (``AWS_LAMBDA_RUNTIME_API`` is set);
- ``ThreadRunner`` wherever the process is not frozen (the local cloud): a worker thread, which also
  waits for ``finished``;
- ``ManualRunner`` for tests and benchmarks: jobs wait until ``drain`` runs them.

A job's failure is logged and counted, never raised. Standard library only (the predict path).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import http.client

log = logging.getLogger(__name__)

Job = Callable[[], None]
EXTENSION_NAME = "conveyor-after-response"
_API_VERSION = "2020-01-01"


class AfterResponse(Protocol):
    """Runs jobs after the response; ``failures`` counts the jobs that raised."""

    failures: int

    def defer(self, job: Job) -> None: ...

    def finished(self) -> None:
        """The handler is returning its response: what it deferred may run now."""
        ...

    def drain(self, timeout: float = 10.0) -> bool:
        """Run or wait for every job deferred so far; False when ``timeout`` passed first."""
        ...


def _run(job: Job, runner: AfterResponse) -> None:
    try:
        job()
    except Exception:
        runner.failures += 1
        log.warning("after-response work failed", exc_info=True)


class ManualRunner:
    """Jobs wait in a list until ``drain`` (or ``run_pending``) runs them, in this thread."""

    def __init__(self) -> None:
        self.pending: list[Job] = []
        self.failures = 0
        self._lock = threading.Lock()

    def defer(self, job: Job) -> None:
        with self._lock:
            self.pending.append(job)

    def finished(self) -> None:
        return

    def run_pending(self) -> int:
        """Run what is queued; how many jobs ran."""
        with self._lock:
            jobs, self.pending = self.pending, []
        for job in jobs:
            _run(job, self)
        return len(jobs)

    def drain(self, timeout: float = 10.0) -> bool:
        while self.run_pending():
            pass
        return True


class ThreadRunner:
    """A daemon worker thread runs the jobs a request deferred once the handler has returned
    (``finished``), as the extension does on Lambda: never while the handler runs, where the two
    would share the interpreter's lock and the client would wait for both (a process that is never
    frozen: the local cloud). ``drain`` releases what is held and waits for it."""

    def __init__(self) -> None:
        self.failures = 0
        self._queue: queue.Queue[Job] = queue.Queue()
        self._lock = threading.Lock()
        self._held: list[Job] = []
        self._thread: threading.Thread | None = None

    def defer(self, job: Job) -> None:
        with self._lock:
            self._held.append(job)

    def finished(self) -> None:
        with self._lock:
            jobs, self._held = self._held, []
            if jobs and self._thread is None:
                self._thread = threading.Thread(target=self._work, name="after-response", daemon=True)
                self._thread.start()
        for job in jobs:
            self._queue.put(job)

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            try:
                _run(job, self)
            finally:
                self._queue.task_done()

    def drain(self, timeout: float = 10.0) -> bool:
        self.finished()
        done = threading.Event()

        def wait() -> None:
            self._queue.join()
            done.set()

        threading.Thread(target=wait, daemon=True).start()
        return done.wait(timeout)


def _runtime_connection(address: str) -> http.client.HTTPConnection:
    import http.client  # on Lambda only: its import is a few ms of everyone else's cold start

    return http.client.HTTPConnection(address, timeout=None)


class LambdaExtensionRunner:
    """An internal Lambda extension (see the module docstring). ``register`` must run during the
    function's init (at import), before the runtime asks for its first invocation. Each invocation:
    the thread's ``next`` returns as the invocation starts; it waits for ``finished`` (called by the
    handler as it returns), runs the queued jobs, then asks for the next event, which is what lets
    Lambda end the invocation. ``connect`` opens an HTTP connection to the runtime API (tests fake it)."""

    def __init__(self, runtime_api: str, *, connect: Callable[[str], http.client.HTTPConnection] | None = None) -> None:
        self.failures = 0
        self._runtime_api = runtime_api
        self._connect = connect or _runtime_connection
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._idle = threading.Event()
        self._idle.set()
        self._identifier = ""

    def _call(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> http.client.HTTPResponse:
        connection = self._connect(self._runtime_api)
        connection.request(method, f"/{_API_VERSION}/extension/{path}", body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        connection.close()
        if response.status >= 300:
            raise RuntimeError(f"Lambda extensions API {path}: HTTP {response.status}")
        return response

    def register(self) -> None:
        response = self._call(
            "POST", "register", json.dumps({"events": ["INVOKE"]}).encode(), {"Lambda-Extension-Name": EXTENSION_NAME}
        )
        self._identifier = response.getheader("Lambda-Extension-Identifier") or ""
        threading.Thread(target=self._loop, name=EXTENSION_NAME, daemon=True).start()

    def defer(self, job: Job) -> None:
        self._idle.clear()
        self._jobs.put(job)

    def finished(self) -> None:
        self._jobs.put(None)  # the invocation's end: what came before it runs, then the next event

    def _loop(self) -> None:
        while True:
            self._call("GET", "event/next", None, {"Lambda-Extension-Identifier": self._identifier})
            self.run_until_finished()  # the invocation started: its jobs, once the handler has returned

    def run_until_finished(self) -> None:
        """Wait for the invocation's end marker, then run what it deferred (never while the handler
        runs: the two would share the interpreter's lock, and the client would wait for both)."""
        jobs: list[Job] = []
        while (job := self._jobs.get()) is not None:
            jobs.append(job)
        for job in jobs:
            _run(job, self)
        if self._jobs.empty():
            self._idle.set()

    def drain(self, timeout: float = 10.0) -> bool:
        return self._idle.wait(timeout)


def runner_from_env() -> AfterResponse:
    """The extension on Lambda (registered now: call this during init), a worker thread elsewhere."""
    runtime_api = os.environ.get("AWS_LAMBDA_RUNTIME_API")
    if runtime_api:
        runner = LambdaExtensionRunner(runtime_api)
        runner.register()
        return runner
    return ThreadRunner()
