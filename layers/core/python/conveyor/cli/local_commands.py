"""The local cloud: ``conveyor up`` keeps one running; ``conveyor demo`` tells the whole story on it."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer

from conveyor.cli.common import JsonFlag, StateOption, console, fail, out
from conveyor.cli.target import default_state_path
from conveyor.errors import ConveyorError


def up(
    port: Annotated[int, typer.Option(help="Port of the AWS endpoint (moto); 0 picks a free one.")] = 0,
    api_port: Annotated[int, typer.Option(help="Port of the prediction API; 0 picks a free one.")] = 0,
    state: StateOption = None,
) -> None:
    """Start the local cloud and keep it running until Ctrl-C.

    Synthesizes the CDK app (cached), starts a moto server on 127.0.0.1 with every resource the stack
    declares, runs the Lambda handlers in-process, starts the pipeline for each object dropped under
    {model}/incoming/ of the data bucket, and serves the prediction API over HTTP. Clients talk to it as
    to AWS: boto3 or the AWS CLI with --endpoint-url.
    """
    from conveyor.localcloud.cloud import LocalCloud

    state_path = state or default_state_path()
    cloud = LocalCloud(port=port, api_port=api_port)
    with console.status("starting the local cloud (synthesizing the CDK app, creating its resources)"):
        try:
            info = cloud.start()
        except ConveyorError as error:
            cloud.stop()
            raise fail(str(error)) from None
    cloud.write_state(state_path)
    data_bucket = info.outputs.get("DataBucketName", "?")
    console.print(f"[bold green]local cloud up[/] in {info.startup_seconds:.1f} s")
    console.print(f"  AWS endpoint  {info.endpoint}   (region {info.region}, any credentials)")
    console.print(f"  API           {info.api_url}/models/{{model}}/predict")
    console.print(f"  board         {info.board_url}   (conveyor board)")
    for name, value in sorted(info.outputs.items()):
        console.print(f"  {name:<20} {value}")
    console.print(f"  state file    {state_path}")
    console.print(
        f"\n  drop data:  aws s3 cp FILE s3://{data_bucket}/MODEL/incoming/ --endpoint-url {info.endpoint}"
        "\n  stop:       Ctrl-C"
    )
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


def demo(
    keep_running: Annotated[bool, typer.Option(help="Leave the local cloud running at the end.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Tell the whole story on the bundled dataset (German health registry, 1984-1988).

    Starts a local cloud, drops 1984-1985 data as a user would (an S3 upload), shows each pipeline stage,
    serves v1 over HTTP, drops 1986 (v2 is served or rejected with the reason), drops a broken file (it is
    quarantined and the champion keeps serving), prints a summary and stops what it started.
    """
    from conveyor.cli.demo import run_demo

    raise typer.Exit(run_demo(console=console, out=out, keep_running=keep_running, as_json=as_json))
