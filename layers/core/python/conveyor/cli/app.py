"""The ``conveyor`` app: every command, registered from its group's module.

Building the app imports typer, rich and the command modules only: pandas, scikit-learn, pyarrow
and boto3 are imported inside a command when it runs (tests/unit/test_cli_imports.py checks it).
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

from conveyor.cli import (
    board_commands,
    data_commands,
    drift_command,
    live_commands,
    local_commands,
    model_commands,
    monitoring_commands,
    pipeline_commands,
    registry_commands,
    retry_command,
    routing_commands,
    score_command,
    smoke_command,
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
    retry_command.retry,
    pipeline_commands.impact,
    routing_commands.kill,
    routing_commands.revive,
    routing_commands.rollback,
    routing_commands.migrate_routing,
    routing_commands.approve,
    routing_commands.reject,
    pipeline_commands.predict,
    smoke_command.smoke,
    local_commands.demo,
    local_commands.reset,
    data_commands.init,
    data_commands.validate,
    drift_command.drift,
    model_commands.train,
    model_commands.evaluate,
    score_command.score,
    registry_commands.models,
    registry_commands.lineage,
    monitoring_commands.alarms,
    live_commands.labels,
    live_commands.monitor,
    board_commands.board,
)


class _HelpFlagDefaultsToFalse:
    """An absent --help is False, not None.

    typer 0.29 passes a flag's bool value through, but coerces None with a pydantic TypeAdapter,
    and importing pydantic for that costs more than the whole rest of ``conveyor X --help``.
    """

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)  # type: ignore[misc]
        if option is not None and option.default is None:
            option.default = False
        return option


class _Group(_HelpFlagDefaultsToFalse, TyperGroup):
    pass


class _Command(_HelpFlagDefaultsToFalse, TyperCommand):
    pass


def build_app() -> typer.Typer:
    app = typer.Typer(
        name="conveyor",
        help=HELP,
        cls=_Group,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
    )
    for command in COMMANDS:
        app.command(cls=_Command)(command)
    return app


app = build_app()
