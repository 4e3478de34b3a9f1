"""Model commands: ``conveyor train`` and ``conveyor evaluate`` on local files (no cloud).

``train`` runs :func:`conveyor.training.build_candidate` and ``evaluate`` runs
:func:`conveyor.gates.assess_candidate`: the same domain code as the Train and Evaluate Lambdas,
imported when a command runs (with pandas and scikit-learn), not when the app is built.

Exit codes: 0 success (``evaluate``: every gate passed); 1 failure (the message says why); 2 bad
input (unreadable spec, data or model; data the spec cannot train on; unknown model or version);
3 the candidate is rejected by its gates (``train``: ONNX parity failed; ``evaluate``: any gate).
"""

from __future__ import annotations

import json
import shutil
import time
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from conveyor.cli.common import ExitCode, JsonFlag, SpecOption, console, fail, fmt, json_text, out
from conveyor.errors import ArtifactError, ConveyorError, DataError, SpecError, TrainingError

if TYPE_CHECKING:
    from conveyor.gates import CandidateAssessment

# What `conveyor train --out DIR` writes; `conveyor evaluate` reads TRAINING_FILE beside a candidate.
MODEL_FILE = "model.onnx"
PROFILE_FILE = "profile.json"
HOLDOUT_FILE = "holdout.parquet"
TRAINING_FILE = "training.json"
SPEC_FILE = "spec.yaml"
STEP_LABELS = {
    "check": "check spec vs data",
    "train": "train",
    "export": "export ONNX",
    "parity": "ONNX parity",
    "profile": "reference profile",
}


class _Stop(Exception):
    """Ends a command from deep inside it: the command prints it with ``fail`` (as JSON too with --json)."""

    def __init__(self, message: str, code: ExitCode) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def _load_spec(path: Path) -> Any:
    from conveyor.spec import load_spec

    try:
        return load_spec(path)
    except SpecError as error:
        raise _Stop(f"{path}: {error.message}", ExitCode.BAD_INPUT) from None


def _read_frame(path: Path, what: str) -> tuple[Any, str]:
    """The table in ``path`` and the sha256 of its bytes."""
    from conveyor.registry import sha256_hex
    from conveyor.tabular import read_table

    try:
        raw = path.read_bytes()
        return read_table(raw, path.name), sha256_hex(raw)
    except OSError as error:
        raise _Stop(f"{what} {path}: cannot read ({error.strerror})", ExitCode.BAD_INPUT) from None
    except DataError as error:
        raise _Stop(f"{what} {error.message}", ExitCode.BAD_INPUT) from None


# --- conveyor train --------------------------------------------------------------------------


def train(
    data: Annotated[
        Path, typer.Argument(help="CSV or Parquet file to train on.", exists=True, dir_okay=False, readable=True)
    ],
    spec: SpecOption,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Directory to write into [default: ./conveyor-out/MODEL]."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Train a candidate from DATA as the pipeline's Train stage does, without any cloud.

    Checks the spec against the data before any training time is spent (features and target present,
    at least two classes, a supported estimator), splits (grouped, temporal or random, as the spec says),
    trains, exports to ONNX with the preprocessing inside, checks parity with scikit-learn on the holdout
    and builds the reference profile. Writes into DIR: model.onnx, profile.json, holdout.parquet (for
    `conveyor evaluate --data`), training.json (metrics, parity, split, seconds, library versions) and
    spec.yaml.

    Exit codes: 0 trained; 2 bad input (unreadable spec or data, data the spec cannot train on);
    3 ONNX parity failed (the files are written, for inspection); 1 the export failed.
    """
    try:
        document = _train(data, spec, out_dir, quiet=as_json)
    except _Stop as error:
        raise fail(error.message, error.code, as_json=as_json) from None
    if as_json:
        typer.echo(json_text(document))
    raise typer.Exit(document["exit_code"])


def _train(data: Path, spec_path: Path, out_dir: Path | None, *, quiet: bool) -> dict[str, Any]:
    from conveyor.training import build_candidate

    spec = _load_spec(spec_path)
    frame, data_sha256 = _read_frame(data, "data")
    target = out_dir or Path("conveyor-out") / spec.name
    if not quiet:
        console.print(
            f"training [bold]{escape(spec.name)}[/] ({spec.estimator.type}) on {data.name}: {len(frame)} rows"
        )
    status: Any = None

    def on_step(step: str, phase: str, seconds: float) -> None:
        nonlocal status
        if quiet:
            return
        label = STEP_LABELS.get(step, step)
        if phase == "started":
            status = console.status(f"{label}...")
            status.start()
            return
        if status is not None:
            status.stop()
        console.print(f"  [green]✓[/] {label:<20} {seconds:7.2f} s")

    try:
        candidate = build_candidate(frame, spec, on_step=on_step)
    except (TrainingError, DataError) as error:
        raise _Stop(f"{data}: {error.message}", ExitCode.BAD_INPUT) from None
    except ArtifactError as error:
        raise _Stop(error.message, ExitCode.FAILURE) from None
    finally:
        if status is not None:
            status.stop()
    files = {name: target / name for name in (MODEL_FILE, PROFILE_FILE, HOLDOUT_FILE, TRAINING_FILE, SPEC_FILE)}
    try:
        target.mkdir(parents=True, exist_ok=True)
        files[MODEL_FILE].write_bytes(candidate.onnx)
        files[PROFILE_FILE].write_text(json_text(candidate.profile), encoding="utf-8")
        candidate.result.holdout_df.to_parquet(files[HOLDOUT_FILE], index=False)
        if spec_path.resolve() != files[SPEC_FILE].resolve():
            shutil.copyfile(spec_path, files[SPEC_FILE])
    except OSError as error:
        raise _Stop(f"cannot write to {target}: {error.strerror or error}", ExitCode.FAILURE) from None
    document: dict[str, Any] = {
        **candidate.summary(),
        "data": {"path": str(data), "sha256": data_sha256, "rows": len(frame)},
        "out": str(target),
        "files": {name: str(path) for name, path in files.items()},
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    passed = candidate.parity.passed
    document["exit_code"] = int(ExitCode.OK if passed else ExitCode.REJECTED)
    files[TRAINING_FILE].write_text(json_text(document), encoding="utf-8")
    if not quiet:
        _print_training(document)
    return document


def _print_training(document: dict[str, Any]) -> None:
    out.print(f"[bold]{escape(document['model'])}[/]: {document['estimator']}, {document['split']} split")
    grid = Table()
    grid.add_column("metric (holdout)")
    grid.add_column("value", justify="right")
    for name, value in document["metrics"].items():
        grid.add_row(name, fmt(value))
    out.print(grid)
    parity = document["parity"]
    verdict = "[green]passed[/]" if parity["passed"] else "[bold red]FAILED[/]"
    out.print(
        f"rows: {document['n_train']} train, {document['n_holdout']} holdout; "
        f"ONNX parity {verdict}: max |sklearn - onnx| {parity['max_abs_diff']:.2e}, "
        f"label agreement {parity['label_agreement']:.2%}; model {document['size_bytes'] / 1e6:.2f} MB"
    )
    out.print(f"wrote {escape(document['out'])}: {', '.join(Path(p).name for p in document['files'].values())}")
    if parity["passed"]:
        out.print(
            f"next: conveyor evaluate {escape(document['files'][MODEL_FILE])} "
            f"--data {escape(document['files'][HOLDOUT_FILE])} --spec {escape(document['files'][SPEC_FILE])} "
            "[--champion CHAMPION.onnx]",
            highlight=False,
            soft_wrap=True,
        )


# --- conveyor evaluate -----------------------------------------------------------------------


def _load_model(path: Path, what: str) -> tuple[Any, bytes]:
    from conveyor.scoring import OnnxModel

    try:
        data = path.read_bytes()
        return OnnxModel(data), data
    except OSError as error:
        raise _Stop(f"{what} {path}: cannot read ({error.strerror})", ExitCode.BAD_INPUT) from None
    except ArtifactError as error:
        raise _Stop(f"{what} {path}: {error.message}", ExitCode.BAD_INPUT) from None


def _recorded_training(candidate: Path, sha256: str) -> tuple[dict[str, Any] | None, str]:
    """training.json written by `conveyor train` beside the candidate, if it describes these very bytes."""
    path = candidate.parent / TRAINING_FILE
    if not path.is_file():
        return None, (
            f"no scikit-learn model to compare with: parity is measured at training time "
            f"(`conveyor train` writes it to {TRAINING_FILE} beside the model)"
        )
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        return None, f"{path} is not readable JSON ({error})"
    if not isinstance(document, dict) or not isinstance(document.get("parity"), dict):
        return None, f"{path} holds no parity measurement"
    if document.get("sha256") != sha256:
        return None, f"{path} describes another model (sha256 {str(document.get('sha256'))[:12]}...)"
    return document, ""


def evaluate(
    candidate: Annotated[
        Path, typer.Argument(help="Candidate ONNX model (model.onnx of `conveyor train`).", exists=True, dir_okay=False)
    ],
    data: Annotated[
        Path,
        typer.Option(
            "--data", "-d", help="Holdout (CSV or Parquet) with the target column.", exists=True, dir_okay=False
        ),
    ],
    spec: SpecOption,
    champion: Annotated[
        Path | None,
        typer.Option(
            help="Champion ONNX model to compare with [default: none, the candidate would be the first].",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="Write the self-contained HTML evidence report here.", dir_okay=False)
    ] = None,
    evidence: Annotated[
        Path | None, typer.Option(help="Write the evidence bundle (evidence.json) here.", dir_okay=False)
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Run every gate on CANDIDATE against CHAMPION on the same holdout, as the Evaluate stage does.

    Gates, each with its measured value, threshold and result: the primary metric against the champion
    (gates.max_degradation or gates.min_improvement); ONNX parity (read from training.json beside the
    candidate when `conveyor train` wrote it for these bytes, otherwise recorded as not measured, with
    the reason); the largest metric gap between slices of the spec's sensitive and slices columns; the
    prediction flip rate under noise; agreement with the champion; permutation importance (fails when a
    sensitive or identifier column dominates); p99 latency for 1 and 100 rows; model size.

    Exit codes: 0 every gate passed; 3 the candidate is rejected by its gates; 2 bad input (unreadable
    spec, model or data; a holdout the candidate cannot score).
    """
    try:
        document = _evaluate(candidate, champion, data, spec, report=report, evidence=evidence, quiet=as_json)
    except _Stop as error:
        raise fail(error.message, error.code, as_json=as_json) from None
    if as_json:
        typer.echo(json_text(document))
    raise typer.Exit(document["exit_code"])


def _evaluate(
    candidate_path: Path,
    champion_path: Path | None,
    data: Path,
    spec_path: Path,
    *,
    report: Path | None,
    evidence: Path | None,
    quiet: bool,
) -> dict[str, Any]:
    from conveyor.gates import assess_candidate
    from conveyor.registry import sha256_hex

    spec = _load_spec(spec_path)
    holdout, holdout_sha256 = _read_frame(data, "holdout")
    candidate, candidate_bytes = _load_model(candidate_path, "candidate")
    champion, champion_bytes = _load_model(champion_path, "champion") if champion_path else (None, b"")
    sha256 = sha256_hex(candidate_bytes)
    training, missing = _recorded_training(candidate_path, sha256)
    started = time.perf_counter()
    waiting: AbstractContextManager[Any] = (
        nullcontext() if quiet else console.status(f"running the gates on {len(holdout)} holdout rows")
    )
    try:
        with waiting:
            assessment = assess_candidate(
                candidate,
                champion,
                holdout,
                spec,
                candidate_bytes=candidate_bytes,
                parity=training["parity"] if training else None,
                parity_missing_reason=missing,
            )
    except ConveyorError as error:
        raise _Stop(f"holdout {data}: {error.message}", ExitCode.BAD_INPUT) from None
    result = assessment.to_dict()
    passed = assessment.passed
    lineage = {
        "candidate": {"path": str(candidate_path), "sha256": sha256, "size_bytes": len(candidate_bytes)},
        "champion": (
            {"path": str(champion_path), "sha256": sha256_hex(champion_bytes), "size_bytes": len(champion_bytes)}
            if champion_path
            else None
        ),
        "holdout": {"path": str(data), "sha256": holdout_sha256, "rows": len(holdout)},
        "spec": str(spec_path),
        "training": str(candidate_path.parent / TRAINING_FILE) if training else None,
    }
    _write_evidence(
        _evidence_bundle(spec.name, candidate_path.name, sha256, assessment, lineage, training),
        evidence=evidence,
        report=report,
    )
    document: dict[str, Any] = {
        "model": spec.name,
        "metric": result["metric"],
        "passed": passed,
        "reason": assessment.reason,
        "metrics": {"candidate": result["candidate"], "champion": result["champion"]},
        "champion_error": result.get("champion_error"),
        "gates": result["gates"],
        "failed": [gate.name for gate in assessment.failed],
        "details": assessment.details(),
        "lineage": lineage,
        "report": str(report) if report else None,
        "evidence": str(evidence) if evidence else None,
        "seconds": round(time.perf_counter() - started, 3),
        "exit_code": int(ExitCode.OK if passed else ExitCode.REJECTED),
    }
    if not quiet:
        _print_gates(document)
    return document


def _evidence_bundle(
    model: str,
    version: str,
    sha256: str,
    assessment: CandidateAssessment,
    lineage: dict[str, Any],
    training: dict[str, Any] | None,
) -> dict[str, Any]:
    """The evidence bundle of an offline evaluation, as the Register stage builds it for a version."""
    from conveyor.report import build_evidence

    result = assessment.to_dict()
    return build_evidence(
        {
            "model": model,
            "version": version,
            "status": "passed" if assessment.passed else "rejected",
            "decision": assessment.reason,
            "sha256": sha256,
            "metrics": {
                "candidate": result.get("candidate") or {},
                "champion": result.get("champion"),
                "primary": result.get("metric"),
            },
            "gates": result["gates"],
            "lineage": lineage,
        },
        evaluation=result,
        training=training,
        details=assessment.details(),
    )


def _write_evidence(bundle: dict[str, Any], *, evidence: Path | None, report: Path | None) -> None:
    from conveyor.report import render_report

    try:
        if evidence is not None:
            evidence.write_text(json_text(bundle), encoding="utf-8")
        if report is not None:
            report.write_text(render_report(bundle), encoding="utf-8")
    except OSError as error:
        raise _Stop(f"cannot write {error.filename}: {error.strerror or error}", ExitCode.FAILURE) from None


def _print_gates(document: dict[str, Any]) -> None:
    out.print(f"[bold]{escape(document['model'])}[/]: gates ({document['metric']} is the primary metric)")
    grid = Table()
    for column, justify in (("gate", "left"), ("value", "right"), ("threshold", "right"), ("result", "left")):
        grid.add_column(column, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    grid.add_column("detail", overflow="fold")
    for gate in document["gates"]:
        if gate["value"] is None and gate["passed"]:
            result = "[dim]n/a[/]"
        else:
            result = "[green]pass[/]" if gate["passed"] else "[bold red]FAIL[/]"
        grid.add_row(gate["name"], fmt(gate["value"]), fmt(gate["threshold"]), result, escape(str(gate["message"])))
    out.print(grid)
    if document["passed"]:
        out.print(f"[bold green]passed[/] {escape(document['reason'])}", highlight=False)
    else:
        out.print(f"[bold red]rejected[/] by {', '.join(document['failed'])}: {escape(document['reason'])}")
    for kind in ("report", "evidence"):
        if document[kind]:
            out.print(f"wrote {escape(document[kind])}")
