"""Registry commands: ``conveyor models`` and ``conveyor lineage`` read the registry of the running
local cloud (or, in tests, the in-memory adapters passed as the app's ``obj``).

Exit codes: 0 shown; 2 unknown model or version; 1 no running local cloud.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from conveyor.cli.common import ExitCode, JsonFlag, StackOption, StateOption, fail, fmt, json_text, load_target, out

if TYPE_CHECKING:
    from conveyor.registry import ModelVersion, Registry


PRIMARY_GATE = "primary_metric_vs_champion"  # its value is the candidate's primary metric


@dataclass
class RegistryAccess:
    """A registry and a way to list its models: the local cloud's DynamoDB table, or (in tests) the
    in-memory adapters, passed as ``obj`` when invoking the app."""

    registry: Registry
    model_names: Callable[[], list[str]]


def _cloud_access(state: Path | None, stack: str | None) -> RegistryAccess:
    from conveyor.registry import Registry

    target = load_target(state, stack)
    return RegistryAccess(Registry(target.registry_table()), target.model_names)


def _access(ctx: typer.Context, state: Path | None, stack: str | None) -> RegistryAccess:
    return ctx.obj if isinstance(ctx.obj, RegistryAccess) else _cloud_access(state, stack)


def _when(timestamp: float) -> str | None:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds") if timestamp else None


def _primary(version: ModelVersion) -> tuple[str | None, Any]:
    """The primary metric of a version: recorded by Register since it exists; for older versions, the
    one candidate metric whose value the primary-metric gate recorded (None if not exactly one)."""
    candidate = version.metrics.get("candidate") or {}
    name = version.metrics.get("primary")
    if name is None:
        gate = next((g for g in version.gates if g.get("name") == PRIMARY_GATE), {})
        named = [m for m, value in candidate.items() if gate.get("value") is not None and value == gate["value"]]
        name = named[0] if len(named) == 1 else None
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
                    # Business value on the holdout (the spec's value: section), when the spec has one.
                    "value_per_1000": (version.metrics.get("candidate") or {}).get("value_per_1000"),
                    "created": _when(version.created_at),
                    "serving": version.version == serving_version,
                    "parent_champion": version.lineage.get("parent_champion"),
                    # every status change, with its reason and the champion serving when it was made
                    "history": version.history,
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
    stack: StackOption = None,
    as_json: JsonFlag = False,
) -> None:
    """List the registered versions of each model (or of MODEL): status, primary metric (and the
    champion's on the same holdout), when created, and what serves (version, traffic, kill switch).

    Exit codes: 0 listed; 2 unknown model; 1 no running local cloud (start one with `conveyor up`).
    """
    from conveyor.registry import RegistryError

    access = _access(ctx, state, stack)
    try:
        document = models_document(access, model)
    except RegistryError as error:
        raise fail(str(error), ExitCode.BAD_INPUT, as_json=as_json) from None
    if as_json:
        typer.echo(json_text(document))
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
            metric = f"{v['metric']} {fmt(v['value'])}" if v["metric"] else "-"
            status = f"[bold green]{v['status']}[/]" if v["serving"] else v["status"]
            created = (v["created"] or "-")[:16].replace("T", " ")
            against = f"v{v['parent_champion']} " if v["parent_champion"] else ""
            grid.add_row(str(v["version"]), status, metric, against + fmt(v["champion_value"]), created)
        out.print(grid)
        for v in entry["versions"]:
            if v["value_per_1000"] is not None:
                out.print(f"  v{v['version']}: value per 1,000 predictions {v['value_per_1000']:.2f} on the holdout")
            if v["decision"]:
                out.print(f"  v{v['version']}: {escape(v['decision'])}", highlight=False, soft_wrap=True)


def lineage(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[int, typer.Argument(help="Version number.")],
    state: StateOption = None,
    stack: StackOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Show the full lineage of one version: every data object it was trained on (bucket, key, version
    id, etag, sha256, rows), spec hash, code and library versions, estimator and parameters, parent
    champion, the execution that made it, and its status, artifact and gates.

    Exit codes: 0 shown; 2 unknown model or version; 1 no running local cloud.
    """
    from conveyor.registry import RegistryError

    access = _access(ctx, state, stack)
    try:
        document = lineage_document(access, model, version)
    except RegistryError as error:
        raise fail(str(error), ExitCode.BAD_INPUT, as_json=as_json) from None
    if as_json:
        typer.echo(json_text(document))
        return
    _print_lineage(document)


def _print_lineage(document: dict[str, Any]) -> None:
    lineage_ = document["lineage"]
    serving = " (serving)" if document["serving"] else ""
    out.print(f"[bold]{escape(document['model'])} v{document['version']}[/]: {document['status']}{serving}")
    facts = {
        "created": document["created"],
        "artifact": f"{document['artifact_key']} (sha256 {document['sha256']})",
        "metric": f"{document['metric']} {fmt(document['value'])}" if document["metric"] else None,
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
        out.print(f"  {key:<16} {escape(fmt(value))}", highlight=False, soft_wrap=True)
    out.print("  trained on:")
    for d in lineage_.get("data") or []:
        out.print(
            f"    s3://{escape(str(d.get('bucket')))}/{escape(str(d.get('key')))} (version {escape(fmt(d.get('version_id')))}, "
            f"etag {escape(fmt(d.get('etag')))}, sha256 {escape(fmt(d.get('sha256')))}, {fmt(d.get('rows'))} rows)",
            highlight=False,
            soft_wrap=True,
        )
