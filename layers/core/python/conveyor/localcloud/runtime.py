"""Lambda handlers, run in-process.

moto runs Lambda code only in Docker, which this product must not require. Every path by which
moto runs a function (Step Functions tasks, S3/SNS/SQS triggers, the Invoke API) ends in one
method, ``moto.awslambda.models.LambdaFunction._invoke_lambda(self, event) -> (payload, errored, logs)``.
``install_moto_patch`` replaces that method, and only that one, so the real handlers run here.
moto is pinned (``moto==5.2.5`` in pyproject.toml) and ``tests/component/test_moto_patch.py``
fails if the method's signature or behaviour changes under us.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

PATCHED_METHOD = "_invoke_lambda"
FUNCTION_TAG = "conveyor:function"


@dataclass
class LambdaContext:
    """The attributes of AWS's Lambda context object that handlers and Powertools read."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    timeout_seconds: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"
    _deadline: float = 0.0

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass
class LocalFunction:
    name: str
    arn: str
    code: str  # folder under functions/
    memory: int = 128
    timeout: int = 3
    handler: Callable[[Any, Any], Any] | None = None


@dataclass
class Invocation:
    payload: Any
    errored: bool
    logs: str
    duration_ms: float


class LambdaRuntime:
    """Runs ``functions/<code>/handler.py:lambda_handler`` for each declared function."""

    def __init__(self) -> None:
        self.functions: dict[str, LocalFunction] = {}
        self._import_lock = threading.Lock()
        self.invocations = 0

    def register(self, function: LocalFunction) -> None:
        self.functions[function.name] = function

    def _handler(self, function: LocalFunction) -> Callable[[Any, Any], Any]:
        if function.handler is None:
            with self._import_lock:
                if function.handler is None:
                    module = importlib.import_module(f"functions.{function.code}.handler")
                    function.handler = module.lambda_handler
                    powertools_handlers_first()
        assert function.handler is not None
        return function.handler

    def invoke(self, name: str, event: Any) -> Invocation:
        function = self.functions.get(name) or next((f for f in self.functions.values() if f.arn == name), None)
        if function is None:
            missing = {"errorType": "ResourceNotFoundException", "errorMessage": f"function {name} is not deployed"}
            return Invocation(missing, True, "", 0.0)
        self.invocations += 1
        context = LambdaContext(
            function_name=function.name,
            invoked_function_arn=function.arn,
            memory_limit_in_mb=function.memory,
            timeout_seconds=function.timeout,
            log_group_name=f"/aws/lambda/{function.name}",
            _deadline=time.monotonic() + function.timeout,
        )
        started = time.perf_counter()
        payload: Any
        try:
            payload = self._handler(function)(event, context)
            errored = False
        except Exception as error:
            payload = {
                "errorType": type(error).__name__,
                "errorMessage": str(error),
                "stackTrace": traceback.format_exception(error)[-5:],
            }
            errored = True
        # Handlers log to stdout (Powertools' JSON lines), as on AWS; the runtime returns no log tail.
        return Invocation(payload, errored, "", (time.perf_counter() - started) * 1000)


def powertools_handlers_first() -> None:
    """Keep each Powertools logger's own handler first among its logger's handlers.

    On AWS every function has its own process; here they share one, and with it the logger named
    after the Powertools service ("conveyor"). Powertools takes a later ``Logger(service=...)``'s handler
    (and its formatter) from ``handlers[0]`` of that logger once one instance configured it, so a plain
    handler added first by another function (the predict handler's ``JsonLog``, when a prediction is the
    first request after a restart) would become every later Powertools logger's handler, with no formatter:
    ``'NoneType' object has no attribute 'append_keys'`` at the first invocation.
    """
    for logger in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]:
        own = getattr(logger, "powertools_handler", None)
        handlers = getattr(logger, "handlers", None)
        if own is not None and handlers and handlers[0] is not own and own in handlers:
            logger.handlers = [own, *(h for h in handlers if h is not own)]  # type: ignore[union-attr]  # a new list: no emit sees it change


_runtime: LambdaRuntime | None = None


def install_moto_patch(runtime: LambdaRuntime) -> None:
    """Route moto's Lambda invocations to ``runtime`` (see the module docstring)."""
    global _runtime  # noqa: PLW0603 - moto calls a method on its own objects; the runtime is process-wide
    from moto.awslambda.models import LambdaFunction

    _runtime = runtime

    def _invoke_in_process(self: Any, event: Any = None) -> tuple[str, bool, str]:
        if _runtime is None:
            return json.dumps({"errorType": "NoRuntime", "errorMessage": "local Lambda runtime not started"}), True, ""
        if isinstance(event, str | bytes):
            with contextlib.suppress(json.JSONDecodeError):
                event = json.loads(event or "{}")
        result = _runtime.invoke(self.function_name, event if event is not None else {})
        return json.dumps(result.payload, default=str), result.errored, result.logs

    setattr(LambdaFunction, PATCHED_METHOD, _invoke_in_process)
