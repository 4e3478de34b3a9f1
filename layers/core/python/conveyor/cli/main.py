"""``conveyor``: run the assembly line locally, drop data, watch the pipeline, call the model.

The entry point (``conveyor.cli.main:main``, and ``python -m conveyor.cli.main``). The app is built
in :mod:`conveyor.cli.app`; the exit codes are :class:`conveyor.cli.common.ExitCode`.
"""

from __future__ import annotations

import sys

from conveyor.cli.app import app
from conveyor.cli.common import fail
from conveyor.errors import ConveyorError

__all__ = ["app", "main"]


def main() -> None:
    try:
        app()
    except ConveyorError as error:
        sys.exit(fail(str(error)).exit_code)


if __name__ == "__main__":
    main()
