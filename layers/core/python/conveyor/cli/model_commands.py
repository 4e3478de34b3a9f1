"""Model commands: ``conveyor train`` and ``conveyor evaluate`` on local files (no cloud), and
``conveyor models`` and ``conveyor lineage`` against the registry of the running local cloud.

``train`` runs :func:`conveyor.training.build_candidate` and ``evaluate`` runs
:func:`conveyor.gates.assess_candidate`: the same domain code as the Train and Evaluate Lambdas.
Register the commands on the main app with ``app.command()(train)`` and so on.

Exit codes: 0 success (``evaluate``: every gate passed); 1 failure (the message says why); 2 bad
input (unreadable spec, data or model; data the spec cannot train on; unknown model or version);
3 the candidate is rejected by its gates (``train``: ONNX parity failed; ``evaluate``: any gate).
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from conveyor.errors import ArtifactError, ConveyorError, DataError, SpecError, TrainingError

if TYPE_CHECKING:
    from conveyor.registry import ModelVersion, Registry

console = Console(stderr=True)
out = Console()

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_REJECTED = 3

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

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout, for scripts.")]
SpecOption = Annotated[
    Path, typer.Option("--spec", "-s", help="Model spec (YAML).", exists=True, dir_okay=False, readable=True)
]
StateOption = Annotated[
    Path | None,
    typer.Option(
        "--state", help="State file of the running local cloud [default: .conveyor/local.json in the checkout]."
    ),
]


class _Stop(Exception):
    """Ends a command with a message and an exit code (printed once, as JSON too with --json)."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def _stop(error: _Stop, as_json: bool) -> typer.Exit:
    console.print(f"[bold red]error:[/] {escape(error.message)}", highlight=False, soft_wrap=True)
    if as_json:
        typer.echo(json.dumps({"error": error.message, "exit_code": error.code}))
    return typer.Exit(error.code)


def _load_spec(path: Path) -> Any:
    from conveyor.spec import load_spec

    try:
        return load_spec(path)
    except SpecError as error:
        raise _Stop(f"{path}: {error.message}", EXIT_BAD_INPUT) from None


def _read_frame(path: Path, what: str) -> tuple[Any, str]:
    """The table in ``path`` and the sha256 of its bytes."""
    from conveyor.registry import sha256_hex
    from conveyor.tabular import read_table

    try:
        raw = path.read_bytes()
        return read_table(raw, path.name), sha256_hex(raw)
    except OSError as error:
        raise _Stop(f"{what} {path}: cannot read ({error.strerror})", EXIT_BAD_INPUT) from None
    except DataError as error:
        raise _Stop(f"{what} {error.message}", EXIT_BAD_INPUT) from None


def _json_text(document: Any) -> str:
    from conveyor.gates import json_safe

    return json.dumps(json_safe(document), indent=2, allow_nan=False, default=str)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}" if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5) else f"{value:.4f}"
    return str(value)


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
        raise _stop(error, as_json) from None
    if as_json:
        typer.echo(_json_text(document))
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
        raise _Stop(f"{data}: {error.message}", EXIT_BAD_INPUT) from None
    except ArtifactError as error:
        raise _Stop(error.message, EXIT_FAILED) from None
    finally:
        if status is not None:
            status.stop()
    files = {name: target / name for name in (MODEL_FILE, PROFILE_FILE, HOLDOUT_FILE, TRAINING_FILE, SPEC_FILE)}
    try:
        target.mkdir(parents=True, exist_ok=True)
        files[MODEL_FILE].write_bytes(candidate.onnx)
        files[PROFILE_FILE].write_text(_json_text(candidate.profile), encoding="utf-8")
        candidate.result.holdout_df.to_parquet(files[HOLDOUT_FILE], index=False)
        if spec_path.resolve() != files[SPEC_FILE].resolve():
            shutil.copyfile(spec_path, files[SPEC_FILE])
    except OSError as error:
        raise _Stop(f"cannot write to {target}: {error.strerror or error}", EXIT_FAILED) from None
    document: dict[str, Any] = {
        **candidate.summary(),
        "data": {"path": str(data), "sha256": data_sha256, "rows": len(frame)},
        "out": str(target),
        "files": {name: str(path) for name, path in files.items()},
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    passed = candidate.parity.passed
    document["exit_code"] = EXIT_OK if passed else EXIT_REJECTED
    files[TRAINING_FILE].write_text(_json_text(document), encoding="utf-8")
    if not quiet:
        _print_training(document)
    return document


def _print_training(document: dict[str, Any]) -> None:
    out.print(f"[bold]{escape(document['model'])}[/]: {document['estimator']}, {document['split']} split")
    grid = Table()
    grid.add_column("metric (holdout)")
    grid.add_column("value", justify="right")
    for name, value in document["metrics"].items():
        grid.add_row(name, _fmt(value))
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
        raise _Stop(f"{what} {path}: cannot read ({error.strerror})", EXIT_BAD_INPUT) from None
    except ArtifactError as error:
        raise _Stop(f"{what} {path}: {error.message}", EXIT_BAD_INPUT) from None


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
        raise _stop(error, as_json) from None
    if as_json:
        typer.echo(_json_text(document))
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
    from conveyor.report import build_evidence, render_report

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
        raise _Stop(f"holdout {data}: {error.message}", EXIT_BAD_INPUT) from None
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
    bundle = build_evidence(
        {
            "model": spec.name,
            "version": candidate_path.name,
            "status": "passed" if passed else "rejected",
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
    try:
        if evidence is not None:
            evidence.write_text(_json_text(bundle), encoding="utf-8")
        if report is not None:
            report.write_text(render_report(bundle), encoding="utf-8")
    except OSError as error:
        raise _Stop(f"cannot write {error.filename}: {error.strerror or error}", EXIT_FAILED) from None
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
        "exit_code": EXIT_OK if passed else EXIT_REJECTED,
    }
    if not quiet:
        _print_gates(document)
    return document


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
        grid.add_row(gate["name"], _fmt(gate["value"]), _fmt(gate["threshold"]), result, escape(str(gate["message"])))
    out.print(grid)
    if document["passed"]:
        out.print(f"[bold green]passed[/] {escape(document['reason'])}", highlight=False)
    else:
        out.print(f"[bold red]rejected[/] by {', '.join(document['failed'])}: {escape(document['reason'])}")
    for kind in ("report", "evidence"):
        if document[kind]:
            out.print(f"wrote {escape(document[kind])}")


# --- conveyor models / lineage (the registry of the running local cloud) ---------------------


@dataclass
class RegistryAccess:
    """A registry and a way to list its models: the local cloud's DynamoDB table, or (in tests) the
    in-memory adapters, passed as ``obj`` when invoking the app."""

    registry: Registry
    model_names: Callable[[], list[str]]


def _cloud_access(state: Path | None) -> RegistryAccess:
    from conveyor.adapters.aws import DynamoTable
    from conveyor.cli.main import _resource, _target
    from conveyor.registry import Registry

    target = _target(state)
    table_name = target.output("RegistryTableName")
    registry = Registry(DynamoTable(table_name, resource=_resource(target)))

    def names() -> list[str]:
        found: set[str] = set()
        arguments: dict[str, Any] = {"TableName": table_name, "ProjectionExpression": "pk"}
        while True:
            page = target.dynamodb.scan(**arguments)
            found.update(
                i["pk"]["S"].split("#", 1)[1] for i in page.get("Items", []) if i["pk"]["S"].startswith("MODEL#")
            )
            if "LastEvaluatedKey" not in page:
                return sorted(found)
            arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    return RegistryAccess(registry, names)


def _access(ctx: typer.Context, state: Path | None) -> RegistryAccess:
    return ctx.obj if isinstance(ctx.obj, RegistryAccess) else _cloud_access(state)


def _when(timestamp: float) -> str | None:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds") if timestamp else None


def _primary(version: ModelVersion) -> tuple[str | None, Any]:
    """The primary metric of a version (recorded by Register since it exists; else the first one)."""
    candidate = version.metrics.get("candidate") or {}
    name = version.metrics.get("primary")
    if name is None:  # versions registered before the primary metric was recorded: read it from the gate
        gate = next((g for g in version.gates if g.get("name") == "primary_metric_vs_champion"), None)
        message = str(gate.get("message", "")) if gate else ""
        name = next((m for m in candidate if re.search(rf"\b{re.escape(m)}\b", message)), None)
    return name, candidate.get(name) if name else None


def models_document(access: RegistryAccess, model: str | None = None) -> dict[str, Any]:
    """Every model (or ``model``): what serves, and each version with status, primary metric and creation time.

    Raises
    ------
    conveyor.registry.UnknownModel
        If ``model`` has no version in the registry.
    """
    from conveyor.registry import UnknownModel

    names = access.model_names()
    if model is not None:
        if model not in names:
            raise UnknownModel(f"no model named {model!r} in the registry")
        names = [model]
    entries = []
    for name in names:
        routing = access.registry.routing(name)
        serving_version = int(routing.champion["version"]) if routing and routing.champion else None
        serving = None
        if routing is not None and routing.champion is not None:
            traffic = routing.traffic() if hasattr(routing, "traffic") else {str(serving_version): 1.0}
            serving = {
                "version": serving_version,
                "revision": routing.revision,
                "killed": routing.killed,
                "fallback": routing.fallback,
                "traffic": traffic,
                "updated": _when(routing.updated_at),
            }
        versions = []
        for version in access.registry.versions(name):
            metric, value = _primary(version)
            versions.append(
                {
                    "version": version.version,
                    "status": version.status,
                    "metric": metric,
                    "value": value,
                    "champion_value": (version.metrics.get("champion") or {}).get(metric) if metric else None,
                    "created": _when(version.created_at),
                    "serving": version.version == serving_version,
                    "parent_champion": version.lineage.get("parent_champion"),
                    "decision": version.decision,
                }
            )
        entries.append({"model": name, "serving": serving, "versions": versions})
    return {"models": entries}


def lineage_document(access: RegistryAccess, model: str, version: int) -> dict[str, Any]:
    """One version: status, artifact, metrics, gates and its full lineage (data objects, spec hash,
    code and library versions, parameters, parent champion, execution).

    Raises
    ------
    conveyor.registry.UnknownModel
        If the model has no such version.
    """
    found = access.registry.get(model, version)
    routing = access.registry.routing(model)
    serving = bool(routing and routing.champion and int(routing.champion["version"]) == version)
    metric, value = _primary(found)
    return {
        "model": found.model,
        "version": found.version,
        "status": found.status,
        "serving": serving,
        "created": _when(found.created_at),
        "artifact_key": found.artifact_key,
        "sha256": found.sha256,
        "metric": metric,
        "value": value,
        "metrics": found.metrics,
        "decision": found.decision,
        "gates": [{k: g.get(k) for k in ("name", "value", "threshold", "passed")} for g in found.gates],
        "lineage": found.lineage,
    }


def models(
    ctx: typer.Context,
    model: Annotated[str | None, typer.Argument(help="Only this model.")] = None,
    state: StateOption = None,
    as_json: JsonFlag = False,
) -> None:
    """List the registered versions of each model (or of MODEL): status, primary metric (and the
    champion's on the same holdout), when created, and what serves (version, traffic, kill switch).

    Exit codes: 0 listed; 2 unknown model; 1 no running local cloud (start one with `conveyor up`).
    """
    from conveyor.registry import RegistryError

    access = _access(ctx, state)
    try:
        document = models_document(access, model)
    except RegistryError as error:
        raise _stop(_Stop(str(error), EXIT_BAD_INPUT), as_json) from None
    if as_json:
        typer.echo(_json_text(document))
        return
    if not document["models"]:
        out.print("no models yet: drop data with `conveyor drop FILE --model NAME --spec model.yaml`")
    for entry in document["models"]:
        serving = entry["serving"]
        if serving is None:
            title = f"{entry['model']}: nothing serving"
        else:
            traffic = ", ".join(f"v{v} {share:.0%}" for v, share in serving["traffic"].items())
            killed = f", KILLED (fallback {serving['fallback']})" if serving["killed"] else ""
            title = f"{entry['model']}: serving {traffic}{killed}, routing revision {serving['revision']}"
        out.print(f"[bold]{escape(title)}[/]")
        grid = Table()
        for column in ("version", "status", "metric", "champion", "created"):
            grid.add_column(column, no_wrap=True)
        for v in entry["versions"]:
            metric = f"{v['metric']} {_fmt(v['value'])}" if v["metric"] else "-"
            status = f"[bold green]{v['status']}[/]" if v["serving"] else v["status"]
            created = (v["created"] or "-")[:16].replace("T", " ")
            grid.add_row(str(v["version"]), status, metric, _fmt(v["champion_value"]), created)
        out.print(grid)
        for v in entry["versions"]:
            if v["decision"]:
                out.print(f"  v{v['version']}: {escape(v['decision'])}", highlight=False, soft_wrap=True)


def lineage(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[int, typer.Argument(help="Version number.")],
    state: StateOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Show the full lineage of one version: every data object it was trained on (bucket, key, version
    id, etag, sha256, rows), spec hash, code and library versions, estimator and parameters, parent
    champion, the execution that made it, and its status, artifact and gates.

    Exit codes: 0 shown; 2 unknown model or version; 1 no running local cloud.
    """
    from conveyor.registry import RegistryError

    access = _access(ctx, state)
    try:
        document = lineage_document(access, model, version)
    except RegistryError as error:
        raise _stop(_Stop(str(error), EXIT_BAD_INPUT), as_json) from None
    if as_json:
        typer.echo(_json_text(document))
        return
    _print_lineage(document)


def _print_lineage(document: dict[str, Any]) -> None:
    lineage_ = document["lineage"]
    serving = " (serving)" if document["serving"] else ""
    out.print(f"[bold]{escape(document['model'])} v{document['version']}[/]: {document['status']}{serving}")
    facts = {
        "created": document["created"],
        "artifact": f"{document['artifact_key']} (sha256 {document['sha256']})",
        "metric": f"{document['metric']} {_fmt(document['value'])}" if document["metric"] else None,
        "decision": document["decision"],
        "spec hash": lineage_.get("spec_hash"),
        "code version": lineage_.get("code_version"),
        "estimator": lineage_.get("estimator"),
        "parameters": json.dumps(lineage_.get("parameters"), default=str),
        "parent champion": lineage_.get("parent_champion"),
        "execution": lineage_.get("execution"),
        "trigger": json.dumps(lineage_.get("trigger"), default=str) if lineage_.get("trigger") else None,
        "rows": f"{lineage_.get('n_train')} train, {lineage_.get('n_holdout')} holdout",
        "libraries": ", ".join(f"{k} {v}" for k, v in (lineage_.get("libraries") or {}).items()),
    }
    for key, value in facts.items():
        out.print(f"  {key:<16} {escape(_fmt(value))}", highlight=False, soft_wrap=True)
    out.print("  trained on:")
    for d in lineage_.get("data") or []:
        out.print(
            f"    s3://{escape(str(d.get('bucket')))}/{escape(str(d.get('key')))} (version {escape(_fmt(d.get('version_id')))}, "
            f"etag {escape(_fmt(d.get('etag')))}, sha256 {escape(_fmt(d.get('sha256')))}, {_fmt(d.get('rows'))} rows)",
            highlight=False,
            soft_wrap=True,
        )
