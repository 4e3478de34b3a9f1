"""``conveyor board``: the big board of the running local cloud (in the cloud, the CloudWatch dashboard
``{stack}-board`` is the board)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from conveyor.cli.common import JsonFlag, StateOption, console, fail
from conveyor.cli.target import Target, TargetError

OutOption = Annotated[
    Path | None,
    typer.Option(
        "--out", help="Write the board as one self-contained, read-only HTML file (no network needed, no buttons)."
    ),
]
NoOpenFlag = Annotated[bool, typer.Option("--no-open", help="Print the URL only; do not open a browser.")]


def board_url(state: Path | None) -> str:
    """The served board's URL, from the running local cloud's state file.

    Raises
    ------
    conveyor.cli.target.TargetError
        If no local cloud runs, or it serves no board.
    """
    url = Target.load(state).board_url
    if not url:
        raise TargetError("the running local cloud serves no board: restart it with `conveyor up`")
    return url


def board(
    out_file: OutOption = None,
    no_open: NoOpenFlag = False,
    state: StateOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Open the big board of the local cloud: for every model, what serves and its traffic, requests,
    latency p50/p99, 5xx rate, drift, live metric against the holdout, business value, alarms, approvals
    waiting (with approve and reject buttons) and the last pipeline runs, over the last 7 days. It
    refreshes by itself.

    Exit codes: 0 shown (or written with --out); 1 no running local cloud, or its board did not answer.
    """
    import webbrowser

    import requests

    try:
        url = board_url(state)
        if out_file is not None:
            response = requests.get(f"{url}static.html", timeout=60)
            response.raise_for_status()
            out_file.write_text(response.text, encoding="utf-8")
    except (TargetError, requests.RequestException) as error:
        raise fail(str(error), as_json=as_json) from None
    if as_json:
        typer.echo(json.dumps({"url": url, "out": str(out_file) if out_file else None}))
    elif out_file is not None:
        console.print(f"board written to {out_file} (read-only; the served board is {url})", highlight=False)
    else:
        typer.echo(url)
    if out_file is None and not no_open:
        webbrowser.open(url)
