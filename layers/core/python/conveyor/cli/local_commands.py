"""The local cloud: ``conveyor up`` keeps one running (its state kept in a data directory, ``conveyor reset``
deletes it); ``conveyor demo`` tells the whole story on one of its own."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from conveyor.cli.common import DataDirOption, ExitCode, JsonFlag, StateOption, console, fail, out
from conveyor.cli.target import default_data_dir, default_state_path
from conveyor.errors import ConveyorError


def up(
    port: Annotated[int, typer.Option(help="Port of the AWS endpoint (moto); 0 picks a free one.")] = 0,
    api_port: Annotated[int, typer.Option(help="Port of the prediction API; 0 picks a free one.")] = 0,
    state: StateOption = None,
    data_dir: DataDirOption = None,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Start empty; the old state is moved aside (DIR.moved-TIMESTAMP).")
    ] = False,
) -> None:
    """Start the local cloud and keep it running until Ctrl-C.

    Synthesizes the CDK app (cached), starts a moto server on 127.0.0.1 with every resource the stack
    declares, runs the Lambda handlers in-process, starts the pipeline for each object dropped under
    {model}/incoming/ of the data bucket, and serves the prediction API over HTTP. Clients talk to it as
    to AWS: boto3 or the AWS CLI with --endpoint-url.

    Its state (objects, registry, executions, queues, alarms...) is kept in --data-dir and restored at the
    next start: a snapshot every 2 s when something changed and one at Ctrl-C/SIGTERM (a kill -9 loses at
    most the last few seconds). Exit code 2: the data directory cannot be used (not Conveyor's, another
    format, damaged, or in use); nothing in it was changed.
    """
    from conveyor.localcloud.cloud import LocalCloud
    from conveyor.localcloud.persist.store import DataDir, StateDirError

    state_path = state or default_state_path()
    data_path = data_dir or default_data_dir()
    if fresh:
        try:
            moved = DataDir(data_path).move_aside()
        except StateDirError as error:
            raise fail(str(error), ExitCode.BAD_INPUT) from None
        if moved is not None:
            console.print(f"the previous state was moved to {moved}")
    cloud = LocalCloud(port=port, api_port=api_port, data_dir=data_path)
    with console.status("starting the local cloud (synthesizing the CDK app, creating its resources)"):
        try:
            info = cloud.start()
        except StateDirError as error:
            cloud.stop()
            raise fail(str(error), ExitCode.BAD_INPUT) from None
        except ConveyorError as error:
            cloud.stop()
            raise fail(str(error)) from None
    cloud.write_state(state_path)
    _print_started(info, state_path)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        while not stopped.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        cloud.stop()
        state_path.unlink(missing_ok=True)
        console.print("local cloud stopped")


def _print_started(info: Any, state_path: Path) -> None:
    data_bucket = info.outputs.get("DataBucketName", "?")
    console.print(f"[bold green]local cloud up[/] in {info.startup_seconds:.1f} s")
    console.print(f"  AWS endpoint  {info.endpoint}   (region {info.region}, any credentials)")
    console.print(f"  API           {info.api_url}/models/{{model}}/predict")
    console.print(f"  board         {info.board_url}   (conveyor board)")
    for name, value in sorted(info.outputs.items()):
        console.print(f"  {name:<20} {value}")
    console.print(f"  state file    {state_path}")
    console.print(f"  data dir      {info.data_dir}")
    restored = info.restored
    if restored.get("snapshot"):
        console.print(
            f"  restored      {restored['objects']} object versions, {restored['items']} registry items, "
            f"{restored['executions']} executions in {restored['seconds']:.1f} s"
        )
    for name in restored.get("interrupted", []):
        if name in restored.get("resumed", {}):
            console.print(f"  [yellow]interrupted[/] {name}: its deployment resumes as {restored['resumed'][name]}")
        else:
            console.print(f"  [yellow]interrupted[/] {name}: resume it with `conveyor retry {name}`")
    for model in restored.get("rolled_back", []):
        console.print(f"  [yellow]rolled back[/] {model}: its trial had nobody baking it; the champion serves")
    console.print(
        f"\n  drop data:  aws s3 cp FILE s3://{data_bucket}/MODEL/incoming/ --endpoint-url {info.endpoint}"
        "\n  stop:       Ctrl-C"
    )


def reset(
    data_dir: DataDirOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Delete the local cloud's kept state (asks first). Exit code 2: not a Conveyor data directory, or in use."""
    from conveyor.localcloud.persist.store import DataDir, StateDirError

    path = data_dir or default_data_dir()
    directory = DataDir(path)
    try:
        directory.check()
    except StateDirError as error:
        raise fail(str(error), ExitCode.BAD_INPUT) from None
    if not path.exists():
        console.print(f"nothing to delete: {path} does not exist")
        return
    if not yes and not typer.confirm(f"Delete the local cloud's state in {path}?", default=False):
        raise typer.Exit(ExitCode.FAILURE)
    try:
        directory.delete()
    except StateDirError as error:
        raise fail(str(error), ExitCode.BAD_INPUT) from None
    console.print(f"deleted {path}")


def demo(
    keep_running: Annotated[bool, typer.Option(help="Leave the local cloud running at the end.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Tell the whole story on the bundled dataset (German health registry, 1984-1988).

    Starts a local cloud (with a data directory of its own, never the one of `conveyor up`), drops 1984-1985
    data as a user would (an S3 upload), shows each pipeline stage, serves v1 over HTTP, drops 1986 (v2 is
    served or rejected with the reason), drops a broken file (it is quarantined and the champion keeps
    serving), prints a summary and stops what it started.
    """
    from conveyor.cli.demo import run_demo

    raise typer.Exit(run_demo(console=console, out=out, keep_running=keep_running, as_json=as_json))
