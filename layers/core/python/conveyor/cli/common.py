"""What every command shares: the two consoles, the exit codes, one way to fail, the shared options.

Command modules import this module (and ``target``, ``follow``), never each other. Nothing here
imports pandas, scikit-learn, pyarrow or boto3: registering the commands stays fast.
"""

from __future__ import annotations

import json
from enum import IntEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from conveyor.cli.target import Target, TargetError

console = Console(stderr=True)  # progress, messages and errors
out = Console()  # results: tables, or the one JSON document of --json


class ExitCode(IntEnum):
    """The exit codes of every ``conveyor`` command, as the README documents them to users.

    ====  ===================================================================================
    0     success (``drop``: a new version serves; ``validate``: accepted; ``drift``: no drift;
          ``evaluate``: every gate passed)
    1     failure, the message says why (``validate``: accepted with warnings; ``drift``: drift)
    2     bad input, or the data was rejected and quarantined
    3     the candidate was rejected (by its gates or a reviewer) or rolled back during its bake,
          and the champion keeps serving (``train``: ONNX parity failed; ``evaluate``: a gate failed)
    4     timed out waiting
    5     (``drop``) the data was accepted and recorded; the retrain policy did not fire, or the
          retrain was folded into another run (one retrain per burst; the output names it)
    6     (``drop``) the candidate awaits approval (``conveyor approve`` / ``reject``)
    ====  ===================================================================================

    Some codes have a second name that says what they mean for one command.
    """

    OK = 0
    FAILURE = 1
    WARNINGS = 1  # validate: accepted with warnings
    DRIFT = 1  # drift: drift found
    BAD_INPUT = 2
    DATA_REJECTED = 2
    REJECTED = 3
    TIMED_OUT = 4
    RECORDED = 5
    AWAITING_APPROVAL = 6


EXIT_CODES_HELP = (
    "Exit codes: 0 ok; 1 failed; 2 bad input or data rejected; 3 candidate rejected (by its gates, a "
    "reviewer, or its bake: rolled back); 4 timed out; 5 data recorded without retraining (or its retrain "
    "folded into another run); 6 awaiting approval."
)

StateOption = Annotated[
    Path | None,
    typer.Option(
        "--state", help="State file of the running local cloud [default: .conveyor/local.json in the checkout]."
    ),
]
DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Where the local cloud keeps its state between runs "
        "[default: $CONVEYOR_DATA_DIR, else .conveyor/data/ in the checkout].",
        file_okay=False,
    ),
]
StackOption = Annotated[
    str | None,
    typer.Option(
        "--stack",
        envvar="CONVEYOR_STACK",
        help="Work against this deployed CloudFormation stack (e.g. Conveyor-dev) instead of the local cloud: "
        "its outputs, the standard AWS credential chain and region.",
        show_envvar=True,
    ),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout, for scripts.")]
SpecOption = Annotated[
    Path, typer.Option("--spec", "-s", help="Model spec (YAML).", exists=True, dir_okay=False, readable=True)
]


def fail(message: str, code: ExitCode = ExitCode.FAILURE, *, as_json: bool = False, **fields: Any) -> typer.Exit:
    """Print ``error: message`` on stderr and return the ``typer.Exit`` to raise.

    With ``as_json`` stdout carries one JSON document too: ``fields``, the error and the exit code.
    """
    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    if as_json:
        typer.echo(json.dumps({**fields, "error": message, "exit_code": int(code)}))
    return typer.Exit(code)


def load_target(state: Path | None, stack: str | None = None) -> Target:
    """The deployed stack named by ``--stack`` (or CONVEYOR_STACK), else the running local cloud;
    exit 1 with what is missing (the stack, credentials, or how to start a local cloud)."""
    try:
        return Target.from_stack(stack) if stack else Target.load(state)
    except TargetError as error:
        raise fail(str(error)) from None


def print_json(document: Any) -> None:
    """The one JSON document of --json, on stdout."""
    out.print_json(json.dumps(document, default=str))


def json_text(document: Any) -> str:
    """Indented JSON of a document holding numpy values or NaN (written as null)."""
    from conveyor.jsonsafe import json_safe

    return json.dumps(json_safe(document), indent=2, allow_nan=False)


def fmt(value: Any) -> str:
    """A value in a table cell: 4 decimals, scientific when tiny or huge, yes/no, '-' for None."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}" if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5) else f"{value:.4f}"
    return str(value)
