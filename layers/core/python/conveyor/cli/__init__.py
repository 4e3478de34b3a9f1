"""The ``conveyor`` command line (typer + rich). Not shipped to Lambda."""
