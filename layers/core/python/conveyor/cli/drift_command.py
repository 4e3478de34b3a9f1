"""``conveyor drift REFERENCE CURRENT --spec SPEC``: is CURRENT drifting from REFERENCE?

Runs the same domain code as the monitor Lambda (``conveyor.profile`` and ``conveyor.drift``) on
local files, with no cloud; pandas is imported when the command runs, not when the app is built.

Exit codes: 0 no drift; 1 drift; 2 bad input (unreadable file, invalid spec or profile,
missing or unparseable feature column); the message names the problem.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from conveyor.cli.common import ExitCode, JsonFlag, fail, out
from conveyor.errors import ConveyorError

if TYPE_CHECKING:
    import pandas as pd

    from conveyor.drift import DriftReport
    from conveyor.spec import ModelSpec

PROFILE_SUFFIXES = frozenset({".json"})


def _read_bytes(path: Path, what: str) -> bytes:
    if not path.exists():
        raise ConveyorError(f"{what} {path}: no such file")
    if path.is_dir():
        raise ConveyorError(f"{what} {path}: is a directory, expected a file")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConveyorError(f"{what} {path}: cannot read ({exc.strerror})") from None


def _read_frame(path: Path, what: str) -> pd.DataFrame:
    from conveyor.tabular import read_table

    data = _read_bytes(path, what)
    try:
        return read_table(data, str(path))
    except ConveyorError as exc:
        raise ConveyorError(f"{what} {exc.message}") from None


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e-3 and value != 0 else f"{value:.{digits}f}"
    return str(value)


def _side(values: dict[str, Any]) -> str:
    if "mean" in values:
        return _num(values.get("mean"))
    shares = values.get("shares") or {}
    top = list(shares.items())[:2]
    return ", ".join(f"{k}:{v:.2f}" for k, v in top) or "-"


def _print_report(console: Console, report: dict[str, Any]) -> None:
    table = Table(title="drift per feature", title_justify="left")
    for column, justify in (
        ("feature", "left"),
        ("type", "left"),
        ("PSI", "right"),
        ("KS / JS", "right"),
        ("p (Holm)", "right"),
        ("reference", "right"),
        ("current", "right"),
        ("drift", "left"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for f in report["features"]:
        values = f["values"]
        second = values["ks"] if values["ks"] is not None else values["js"]
        p = f["pvalue_adjusted"]
        table.add_row(
            escape(f["name"]),
            f["type"],
            _num(values["psi"]),
            _num(second),
            "-" if p is None else (f"{p:.2g}" if p >= 1e-3 else f"{p:.0e}"),
            _side(f["reference"]),
            _side(f["current"]),
            "[bold red]DRIFT[/]" if f["drifted"] else ("skipped" if f["kind"] == "skipped" else "ok"),
        )
    console.print(table)
    for f in report["features"]:
        if f["drifted"]:
            console.print(f"  [red]{escape(f['message'])}[/]", highlight=False)
    domain = report["domain_classifier"]
    if domain["enabled"]:
        colour = "red" if domain["drifted"] else "green"
        console.print(f"  [{colour}]{escape(domain['message'])}[/]", highlight=False)
    for warning in report["warnings"]:
        console.print(f"  [yellow]warning:[/] {escape(warning)}", highlight=False)
    colour = "bold red" if report["verdict"] == "drift" else "bold green"
    console.print(f"[{colour}]{escape(report['summary'])}[/]", highlight=False)


def drift(
    reference: Annotated[
        Path,
        typer.Argument(
            help="Reference: a data file (CSV/Parquet, e.g. the training data) or a profile JSON (profile.json)."
        ),
    ],
    current: Annotated[Path, typer.Argument(help="Current data (CSV or Parquet) to compare with the reference.")],
    spec: Annotated[Path, typer.Option("--spec", "-s", help="Model spec (YAML): features, types, drift thresholds.")],
    as_json: JsonFlag = False,
    seed: Annotated[int, typer.Option(help="Seed of the domain classifier.")] = 0,
) -> None:
    """Compare CURRENT with REFERENCE feature by feature (PSI, KS, chi-square, Jensen-Shannon) and with a
    domain classifier; print the drifted features and the verdict.

    A feature drifts when its effect size passes the spec's drift thresholds AND the difference is
    significant after Holm correction over all features. With a data file as REFERENCE the domain
    classifier sees real reference rows; with a profile it sees rows sampled from the profile.

    Exit codes: 0 no drift; 1 drift; 2 bad input.
    """
    from conveyor.spec import load_spec

    try:
        model_spec = load_spec(_read_bytes(spec, "spec"))
    except ConveyorError as exc:
        message = exc.message if exc.message.startswith("spec ") else f"spec {spec}: {exc.message}"
        raise fail(message, ExitCode.BAD_INPUT) from None
    try:
        report = _report(reference, current, model_spec, seed)
    except ConveyorError as exc:
        raise fail(exc.message, ExitCode.BAD_INPUT) from None
    document = report.to_dict()
    if as_json:
        typer.echo(json.dumps(document, indent=2, allow_nan=False))
    else:
        _print_report(out, document)
    raise typer.Exit(ExitCode.DRIFT if report.drifted else ExitCode.OK)


def _report(reference: Path, current: Path, model_spec: ModelSpec, seed: int) -> DriftReport:
    """The drift report of CURRENT against REFERENCE (a data file or a profile); errors name the file."""
    from conveyor.drift import drift_report
    from conveyor.profile import Profile, build_profile

    reference_frame: pd.DataFrame | None = None
    if reference.suffix.lower() in PROFILE_SUFFIXES:
        try:
            profile = Profile.from_json(_read_bytes(reference, "reference"))
        except ConveyorError as exc:
            raise ConveyorError(f"reference {reference}: {exc.message}") from None
    else:
        reference_frame = _read_frame(reference, "reference")
        try:
            profile = build_profile(reference_frame, model_spec)
        except ConveyorError as exc:
            raise ConveyorError(f"reference {reference}: {exc.message}") from None
    current_frame = _read_frame(current, "current")
    try:
        return drift_report(profile, current_frame, model_spec, reference_frame=reference_frame, seed=seed)
    except ConveyorError as exc:
        raise ConveyorError(f"current {current}: {exc.message}") from None
