"""The local cloud: the stack's resources, created on a moto server from the synthesized template.

Start order: synthesize (cached) -> moto server on 127.0.0.1 -> Step Functions execution on ->
in-process Lambda runtime -> every resource the template declares that moto serves -> queue
pollers for the event source mappings -> the HTTP gateway for the REST API.
What AWS does behind the scenes for CDK's custom resources (bucket notifications) is done here
directly; IAM, log groups, layers and the API Gateway control plane are cloud-only (listed in
``LocalCloudInfo.skipped``).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from conveyor.localcloud.board_server import start_board
from conveyor.localcloud.cloudwatch import LocalCloudWatch
from conveyor.localcloud.compute_tasks import install_compute_tasks
from conveyor.localcloud.creators import Creation, LocalCloudError, create_all
from conveyor.localcloud.distributed_map import install_result_writer
from conveyor.localcloud.fidelity import serialize_dynamodb_writes
from conveyor.localcloud.gateway import Gateway
from conveyor.localcloud.persist.snapshotter import Extension, Persistence, RestoreReport
from conveyor.localcloud.poller import QueuePoller
from conveyor.localcloud.resolver import Names
from conveyor.localcloud.runtime import LambdaRuntime, install_moto_patch
from conveyor.localcloud.schedules import LocalSchedules
from conveyor.localcloud.template import STACK, repo_root, synthesized_template

log = logging.getLogger(__name__)

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "conveyor-local", "AWS_SECRET_ACCESS_KEY": "conveyor-local"}


@dataclass
class LocalCloudInfo:
    endpoint: str
    api_url: str
    region: str
    outputs: dict[str, str]
    functions: dict[str, str]
    created: dict[str, int]
    skipped: dict[str, int]
    board_url: str = ""
    pid: int = field(default_factory=os.getpid)
    started_at: float = field(default_factory=time.time)
    startup_seconds: float = 0.0
    schedules_url: str = ""  # the local clock's hook (conveyor.localcloud.schedules)
    data_dir: str = ""  # "" : nothing is kept after the cloud stops
    restored: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class LocalCloud:
    def __init__(
        self,
        *,
        root: Path | None = None,
        port: int = 0,
        api_port: int = 0,
        board_port: int = 0,
        region: str = "us-east-1",
        state_dir: Path | None = None,
        clock: Callable[[], float] = time.time,
        data_dir: Path | None = None,
    ) -> None:
        self.root = root or repo_root()
        self.port = port
        self.api_port = api_port
        self.board_port = board_port
        self.region = region
        self.state_dir = state_dir or self.root / ".conveyor"
        self.runtime = LambdaRuntime()
        self.schedules = LocalSchedules(self._invoke_scheduled, clock=clock, region=region)
        self._server: Any = None
        self._pollers: list[QueuePoller] = []
        self._gateway: Gateway | None = None
        self.cloudwatch: LocalCloudWatch | None = None
        self._board: Any = None
        self.info: LocalCloudInfo | None = None
        # With a data directory the state outlives the process (conveyor.localcloud.persist).
        self.persistence: Persistence | None = None
        if data_dir is not None:
            from conveyor.localcloud.persist.store import DataDir

            self.persistence = Persistence(DataDir(data_dir), region)

    # lifecycle --------------------------------------------------------------------------
    def start(self) -> LocalCloudInfo:
        from moto.server import ThreadedMotoServer

        started = time.perf_counter()
        # A data directory that cannot be used is refused before anything starts (StateDirError).
        snapshot = self.persistence.open() if self.persistence is not None else None
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log
        template = synthesized_template(self.root, state_dir=self.state_dir)
        for name, value in CREDENTIALS.items():
            os.environ[name] = value
        os.environ["AWS_DEFAULT_REGION"] = os.environ["AWS_REGION"] = self.region
        os.environ.pop("AWS_PROFILE", None)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        # moto's Step Functions calls Lambda through its own server: tell it where that is.
        os.environ["MOTO_PORT"] = str(port)
        os.environ["AWS_ENDPOINT_URL"] = endpoint
        import requests

        requests.post(
            f"{endpoint}/moto-api/config", json={"stepfunctions": {"execute_state_machine": True}}, timeout=10
        )
        self._patch_moto()
        if str(self.root) not in sys.path:  # functions/ and infra/ are imported from the checkout
            sys.path.insert(0, str(self.root))
        names = Names.for_template(template, region=self.region, endpoint=endpoint, stack=STACK)
        creation = Creation(template, names, endpoint, self.region, self.runtime, schedules=self.schedules)
        api_function = create_all(creation)
        self._pollers.extend(creation.pollers)
        # Alarms that evaluate, and EMF lines that become metric data (moto does neither), on the
        # schedules' clock: `conveyor monitor --advance` moves evaluation periods too.
        self.cloudwatch = LocalCloudWatch(endpoint=endpoint, region=self.region, clock=self.schedules.now)
        self.schedules.after_advance.append(self.cloudwatch.evaluate_all)
        restored = None
        if self.persistence is not None:
            self._keep_local_state(self.persistence, self.cloudwatch)
            restored = self.persistence.restore(snapshot)
        self.cloudwatch.start()
        self.schedules.start()
        self._gateway = None
        api_url = ""
        if api_function:
            self._gateway = Gateway(self._invoke_api(api_function), port=self.api_port)
            self._gateway.start()
            api_url = self._gateway.url
        outputs = {}
        for output_id, output in template.get("Outputs", {}).items():
            outputs[output_id] = (
                api_url + "/" if output_id.startswith("ApiUrl") else str(names.resolve(output["Value"]))
            )
        self._board = start_board(outputs, region=self.region, port=self.board_port)
        self.info = LocalCloudInfo(
            endpoint=endpoint,
            api_url=api_url,
            board_url=self._board.url,
            region=self.region,
            outputs=outputs,
            functions={f.code: f.name for f in self.runtime.functions.values()},
            created=dict(creation.created),
            skipped=dict(creation.skipped),
            startup_seconds=round(time.perf_counter() - started, 3),
            schedules_url=self.schedules.url,
        )
        if self.persistence is not None and restored is not None:
            self.info.data_dir = str(self.persistence.data.path)
            self.info.restored = self._after_restore(restored, outputs)
            self.persistence.start()
        return self.info

    def _patch_moto(self) -> None:
        """What moto leaves out, done in-process (each patch's module says what and why)."""
        install_moto_patch(self.runtime)
        install_result_writer()  # moto's Distributed Map drops the ResultWriter's results
        install_compute_tasks()  # moto cannot run ecs:runTask.sync nor sagemaker:createTrainingJob.sync
        serialize_dynamodb_writes()
        if self.persistence is not None:
            from conveyor.localcloud.persist.snapshotter import install_change_counter

            install_change_counter()

    def _keep_local_state(self, persistence: Persistence, cloudwatch: LocalCloudWatch) -> None:
        """State outside moto that the data directory keeps: the clock and the rules' due times, and the
        alarm states the evaluator knows (alarm episodes are registry items, in DynamoDB already)."""
        persistence.extensions["schedules"] = Extension(
            self.schedules.dump, self.schedules.load, lambda: self.schedules.changes
        )
        persistence.extensions["cloudwatch"] = Extension(cloudwatch.dump, cloudwatch.load)

    def _after_restore(self, restored: RestoreReport, outputs: dict[str, str]) -> dict[str, Any]:
        """Resume the deployments the stop interrupted (conveyor.localcloud.persist.restart); what was restored."""
        from conveyor.localcloud.persist.restart import resume_deployments

        table = next((v for k, v in outputs.items() if k.startswith("RegistryTableName")), None)
        endpoint = os.environ["AWS_ENDPOINT_URL"]
        restart = resume_deployments(self.region, restored.interrupted, table, endpoint)
        return {
            "snapshot": restored.snapshot,
            "seconds": round(restored.seconds, 3),
            "read_seconds": round(restored.read_seconds, 3),
            "objects": restored.objects,
            "items": restored.items,
            "executions": restored.executions,
            "messages": restored.messages,
            "metric_data": restored.metric_data,
            "interrupted": restored.interrupted,
            "resumed": restart.resumed,
            "rolled_back": restart.rolled_back,
        }

    def stop(self) -> None:
        self.schedules.stop()
        for poller in self._pollers:
            poller.stop()
        if self._gateway is not None:
            self._gateway.stop()
        if self.cloudwatch is not None:
            self.cloudwatch.stop()
        if self._board is not None:
            self._board.stop()
        from conveyor.capture import flush_all

        flush_all()  # batched captures reach the bucket while the moto server still runs
        if self.persistence is not None:
            persistence, self.persistence = self.persistence, None
            persistence.stop()  # the last snapshot: after Ctrl-C or SIGTERM nothing is lost
        if self._server is not None:
            self._server.stop()
        self._server = None

    def write_state(self, path: Path | None = None) -> Path:
        if self.info is None:
            raise LocalCloudError("the local cloud is not started")
        path = path or self.state_dir / "local.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.info.to_dict(), indent=2))
        tmp.replace(path)
        return path

    def advance(self, seconds: float) -> list[dict[str, Any]]:
        """Move the local clock forward and fire the scheduled rules that became due (see ``schedules``)."""
        return self.schedules.advance(seconds)

    # resources --------------------------------------------------------------------------
    def _invoke_scheduled(self, function: str, event: dict[str, Any]) -> Any:
        result = self.runtime.invoke(function, event)
        if result.errored:
            log.warning("scheduled invocation of %s failed: %s", function, result.payload)
        return result.payload

    def _invoke_api(self, function: str) -> Any:
        def invoke(event: dict[str, Any]) -> tuple[Any, bool]:
            result = self.runtime.invoke(function, event)
            return result.payload, result.errored

        return invoke
