"""The ``conveyor`` app: every command, registered from its group's module.

Building the app imports typer, rich and the command modules only: pandas, scikit-learn, pyarrow
and boto3 are imported inside a command when it runs (tests/unit/test_cli_imports.py checks it).
"""

from __future__ import annotations

import typer

from conveyor.cli import (
    data_commands,
    drift_command,
    local_commands,
    model_commands,
    pipeline_commands,
    registry_commands,
    routing_commands,
)
from conveyor.cli.common import EXIT_CODES_HELP

HELP = (
    "Conveyor: data dropped into S3 is validated, trains a candidate, which is compared with the model in "
    "production, registered as ONNX and served.\n\n"
    "Start here: `conveyor demo` tells the whole story on the bundled dataset. `conveyor up` keeps a local "
    "cloud running (S3, DynamoDB, Step Functions... on 127.0.0.1) for `drop`, `status` and `predict`.\n\n"
    + EXIT_CODES_HELP
)

# In the order `conveyor --help` lists them.
COMMANDS = (
    local_commands.up,
    pipeline_commands.drop,
    pipeline_commands.status,
    pipeline_commands.impact,
    routing_commands.kill,
    routing_commands.revive,
    routing_commands.rollback,
    routing_commands.approve,
    routing_commands.reject,
    pipeline_commands.predict,
    local_commands.demo,
    data_commands.init,
    data_commands.validate,
    drift_command.drift,
    model_commands.train,
    model_commands.evaluate,
    registry_commands.models,
    registry_commands.lineage,
)


def build_app() -> typer.Typer:
    app = typer.Typer(
        name="conveyor",
        help=HELP,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    for command in COMMANDS:
        app.command()(command)
    return app


app = build_app()
