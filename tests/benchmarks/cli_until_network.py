"""Run ``conveyor ARGS...`` up to its first use of the AWS SDK, then exit: the start the CLI benchmark measures.

Every call a command makes to the local cloud goes through ``conveyor.cli.target.Target.client`` or
``Target.resource`` (which import boto3). Here both end the process instead: with ``REACHED`` if
no heavy library was imported on the way, with ``HEAVY_LOADED`` (naming them on stderr) otherwise.
Any other exit code means the command stopped before its first call.
"""

from __future__ import annotations

import sys
from typing import NoReturn

from conveyor.cli.target import Target

REACHED = 97
HEAVY_LOADED = 98
HEAVY = ("pandas", "sklearn", "pyarrow")


def _first_call(*_args: object, **_kwargs: object) -> NoReturn:
    loaded = [name for name in HEAVY if name in sys.modules]
    if loaded:
        print(f"imported before the first network call: {', '.join(loaded)}", file=sys.stderr)
        raise SystemExit(HEAVY_LOADED)
    raise SystemExit(REACHED)


if __name__ == "__main__":
    Target.client = _first_call  # type: ignore[method-assign]
    Target.resource = _first_call  # type: ignore[method-assign]
    from conveyor.cli.main import main

    sys.argv = ["conveyor", *sys.argv[1:]]
    main()
