"""Offline data commands: ``conveyor validate`` and ``conveyor init`` (no cloud involved).

Exit codes of ``validate``: 0 accepted; 1 accepted with warnings; 2 rejected, or bad input
(unreadable spec or reference). ``init``: 0 written; 2 bad input. pandas and the validation code
are imported when a command runs, not when the app is built.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from conveyor.cli.common import ExitCode, JsonFlag, SpecOption, console, fail, out
from conveyor.errors import ConveyorError

if TYPE_CHECKING:
    from conveyor.validation import ValidationContext, ValidationReport


def _context(reference: Path | None) -> ValidationContext | None:
    from conveyor.validation import ValidationContext

    if reference is None:
        return None
    try:
        document = json.loads(reference.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise fail(f"{reference}: not a readable profile JSON ({error})", ExitCode.BAD_INPUT) from None
    if not isinstance(document, dict) or "features" not in document:
        raise fail(f"{reference}: not a profile (expected keys 'rows' and 'features')", ExitCode.BAD_INPUT)
    return ValidationContext.from_profile(document)


def _show(report: ValidationReport) -> None:
    style = "red" if not report.accepted else ("yellow" if report.warnings else "green")
    out.print(f"[bold {style}]{report.summary}[/]")
    flagged = [c for c in report.checks if not c.passed and c.severity != "info"]
    if not flagged:
        return
    table = Table(show_lines=False)
    for header in ("severity", "check", "column", "value", "threshold", "message"):
        table.add_column(header, overflow="fold")
    for check in sorted(flagged, key=lambda c: c.severity != "error"):
        color = "red" if check.severity == "error" else "yellow"
        table.add_row(
            f"[{color}]{check.severity}[/]",
            check.name,
            check.column or "",
            _measure(check.value),
            _measure(check.threshold),
            check.message,
        )
    out.print(table)


def _measure(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def validate(
    data: Annotated[
        Path, typer.Argument(help="CSV or Parquet file to check.", exists=True, dir_okay=False, readable=True)
    ],
    spec: SpecOption,
    reference: Annotated[
        Path | None,
        typer.Option(
            "--reference",
            "-r",
            help="Reference profile (profile.json of a model version): unseen categories, usual row count.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    accepted_out: Annotated[
        Path | None,
        typer.Option(help="With rows set aside (validation.max_bad_row_share): write the accepted rows here."),
    ] = None,
    quarantine_out: Annotated[
        Path | None,
        typer.Option(help="With rows set aside: write them here, with their row number and reason."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Check DATA against the model spec, as the pipeline's data gate does, without any cloud.

    Exit codes: 0 accepted; 1 accepted with warnings (or rows set aside); 2 rejected (or bad spec / reference).
    """
    from conveyor.spec import load_spec
    from conveyor.validation import part_bytes, validate_and_split

    try:
        parsed_spec = load_spec(spec)
    except ConveyorError as error:
        raise fail(f"{spec}: {error}", ExitCode.BAD_INPUT) from None
    context = _context(reference)
    report, split = validate_and_split(data.read_bytes(), data.name, parsed_spec, context=context)
    if split is not None:
        for path, part in ((accepted_out, split.accepted), (quarantine_out, split.quarantined)):
            if path is not None:
                path.write_bytes(part_bytes(part, data.name))
    if as_json:
        out.print_json(json.dumps(report.to_dict()))
    else:
        _show(report)
    if not report.accepted:
        raise typer.Exit(ExitCode.DATA_REJECTED)
    raise typer.Exit(ExitCode.WARNINGS if report.warnings else ExitCode.OK)


def init(
    name: Annotated[str, typer.Argument(help="Model name (lowercase letters, digits, dashes).")],
    from_csv: Annotated[
        Path,
        typer.Option("--from", help="Sample CSV or Parquet to infer from.", exists=True, dir_okay=False, readable=True),
    ],
    target: Annotated[str, typer.Option("--target", "-t", help="Target column.")],
    out_path: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the spec here [default: print it on stdout].")
    ] = None,
    positive_when: Annotated[
        str | None,
        typer.Option(help="Binarize a numeric target for classification, e.g. gt:0 (ops gt ge lt le eq ne)."),
    ] = None,
) -> None:
    """Infer a model spec from a sample file, for review: types, ranges, categories, exclusions.

    Identifier columns, one-hot copies of another column, the time column, constant columns and
    columns that leak the target are left out; the YAML says why in its header comments.
    """
    from conveyor.infer import infer_from_file, spec_yaml

    try:
        spec, findings = infer_from_file(
            from_csv.read_bytes(), from_csv.name, name, target, positive_when=positive_when
        )
    except ConveyorError as error:
        raise fail(f"{from_csv}: {error}", ExitCode.BAD_INPUT) from None
    text = spec_yaml(spec, findings, source=from_csv.name)
    if out_path is None:
        out.print(text, markup=False, highlight=False, end="")
    else:
        out_path.write_text(text, encoding="utf-8")
        console.print(f"wrote {out_path}: {len(spec['features'])} features")
    for finding in findings:
        if finding["kind"] != "target":
            console.print(f"  {finding['column']}: {finding['reason']}", markup=False, highlight=False)
