"""Step Functions executions in a snapshot: what ``conveyor status`` and ``conveyor drop`` read.

Each execution is kept with its status, input, output, error and the history events moto recorded.
A finished execution's history never changes, so it is stored once as a blob. On restore an
execution becomes a moto execution again with an archived worker that answers ``GetExecutionHistory``
(and takes no task tokens). One that was RUNNING when the cloud stopped is marked interrupted:
status ABORTED, error ``Interrupted`` (``conveyor.workflow.Error.INTERRUPTED``) and a cause naming
the state it reached; an ``ExecutionAborted`` event ends its history.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from conveyor.localcloud.persist.store import DataDir
from conveyor.localcloud.resolver import ACCOUNT
from conveyor.workflow import Error

SECTION = "executions"


def backend(region: str) -> Any:
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    return stepfunctions_parser_backends[ACCOUNT][region]


def _encode(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return {"$time": value.isoformat()}
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$time"}:
            return dt.datetime.fromisoformat(value["$time"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def history(execution: Any) -> list[dict[str, Any]]:
    worker = execution.exec_worker
    env = getattr(worker, "env", None)
    return list(env.event_manager.get_event_history()) if env is not None else []


def reached_state(events: list[dict[str, Any]]) -> str | None:
    """The last state the execution entered (where an interrupted one stopped)."""
    for event in reversed(events):
        details = event.get("stateEnteredEventDetails")
        if details:
            return str(details.get("name"))
    return None


@dataclass
class ExecutionCollector:
    """A finished execution never changes: its record is encoded (and its history stored as a blob) once
    more after it was first seen finished (moto sets the status before the output or error), then reused
    across snapshots (arn -> (line, blob)); a running one is encoded at each snapshot."""

    finished: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    _settling: set[str] = field(default_factory=set)  # seen finished once

    def collect(self, data: DataDir, region: str) -> tuple[list[bytes], set[str]]:
        """The section's lines and the blobs they name."""
        lines, blobs = [], set()
        for machine in list(backend(region).state_machines):
            for execution in list(machine.executions):
                done = self.finished.get(execution.execution_arn)
                if done is None or not data.has_blob(done[1]):
                    done = self._encode(data, machine.arn, execution)
                lines.append(done[0])
                blobs.add(done[1])
        return lines, blobs

    def _encode(self, data: DataDir, machine_arn: str, execution: Any) -> tuple[bytes, str]:
        status = execution.status
        events = json.dumps(_encode(history(execution)), default=str).encode()
        record: dict[str, Any] = {
            "machine": machine_arn,
            "name": execution.name,
            "arn": execution.execution_arn,
            "status": status,
            "start": execution.start_date.isoformat(),
            "stop": execution.stop_date.isoformat() if execution.stop_date else None,
            "input": execution.execution_input,
            "output": json.dumps(execution.output) if execution.output is not None else None,
            "error": execution.error,
            "cause": execution.cause,
            "history": data.put_blob(events),
        }
        done = (json.dumps(record, separators=(",", ":"), allow_nan=False).encode(), record["history"])
        arn = execution.execution_arn
        if status != "RUNNING" and arn in self._settling:
            self.finished[arn] = done
            self._settling.discard(arn)
        elif status != "RUNNING":
            self._settling.add(arn)
        return done


@dataclass
class ArchivedEnvironment:
    """What moto's backend asks of a finished execution's worker environment."""

    events: list[dict[str, Any]]
    event_manager: Any = None
    callback_pool_manager: Any = None
    map_run_record_pool_manager: Any = None

    def __post_init__(self) -> None:
        self.event_manager = self
        self.callback_pool_manager = self
        self.map_run_record_pool_manager = self

    def get_event_history(self) -> list[dict[str, Any]]:
        return list(self.events)

    def notify(self, callback_id: str, outcome: Any) -> bool:  # a task token of a stopped execution
        return False

    def heartbeat(self, callback_id: str) -> bool:
        return False

    def get(self, arn: str) -> None:
        return None

    def get_all(self) -> list[Any]:
        return []


@dataclass
class ArchivedWorker:
    env: ArchivedEnvironment

    def stop(self, stop_date: Any, cause: Any, error: Any) -> None:
        """Already stopped."""


def interrupted_cause(state: str | None, name: str) -> str:
    where = f"in state {state!r}" if state else "before its first state"
    return f"the local cloud stopped while this execution was {where}; `conveyor retry {name}` resumes it there"


def restore(
    data: DataDir, region: str, records: list[dict[str, Any]], lines: list[bytes], collector: ExecutionCollector
) -> list[str]:
    """Executions back into their state machines; returns the names of the interrupted ones. ``lines``: the
    records as read, which the collector reuses for the finished ones."""
    from moto.stepfunctions.parser.api import ExecutionStatus
    from moto.stepfunctions.parser.backend.execution import Execution

    sfn = backend(region)
    machines = {m.arn: m for m in sfn.state_machines}
    interrupted = []
    for saved, line in zip(records, lines or [b""] * len(records), strict=True):
        machine = machines.get(saved["machine"])
        if machine is None:
            continue
        events = _decode(json.loads(data.read_blob(saved["history"])))
        execution = Execution(
            name=saved["name"],
            sm_type=machine.sm_type,
            role_arn=machine.roleArn,
            exec_arn=saved["arn"],
            account_id=sfn.account_id,
            region_name=region,
            state_machine=machine,
            start_date=dt.datetime.fromisoformat(saved["start"]),
            cloud_watch_logging_session=None,
            activity_store={},
            input_data=saved["input"],
        )
        execution.stop_date = dt.datetime.fromisoformat(saved["stop"]) if saved["stop"] else None
        execution.output = json.loads(saved["output"]) if saved.get("output") else None
        execution.error, execution.cause = saved.get("error"), saved.get("cause")
        status = saved["status"]
        if status == "RUNNING":
            status = "ABORTED"
            execution.error = Error.INTERRUPTED
            execution.cause = interrupted_cause(reached_state(events), saved["name"])
            execution.stop_date = _after_last_event(events, execution.start_date)
            events.append(_aborted_event(events, execution.stop_date, execution.cause))
            interrupted.append(saved["name"])
        elif line:
            collector.finished[saved["arn"]] = (line, saved["history"])
        execution.exec_status = ExecutionStatus(status)
        execution.exec_worker = ArchivedWorker(ArchivedEnvironment(events))  # type: ignore[assignment]
        machine.executions.append(execution)
    return interrupted


def _after_last_event(events: list[dict[str, Any]], default: dt.datetime) -> dt.datetime:
    stamps = [e["timestamp"] for e in events if isinstance(e.get("timestamp"), dt.datetime)]
    return max(stamps, default=default)


def _aborted_event(events: list[dict[str, Any]], when: dt.datetime, cause: str) -> dict[str, Any]:
    last = max((int(e.get("id", 0)) for e in events), default=0)
    return {
        "timestamp": when,
        "type": "ExecutionAborted",
        "id": last + 1,
        "previousEventId": last,
        "executionAbortedEventDetails": {"error": Error.INTERRUPTED, "cause": cause},
    }
