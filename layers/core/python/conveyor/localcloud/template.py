"""Synthesize the CDK app (cached by a fingerprint of the infra sources) and read its template."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import conveyor
from conveyor.errors import ConveyorError
from conveyor.stacks import stack_name

STACK = stack_name()  # the default stage's stack, the one `python -m infra.app` synthesizes


class TemplateError(ConveyorError):
    pass


def repo_root() -> Path:
    """The checkout this package was installed from (editable install)."""
    root = Path(conveyor.__file__).resolve().parents[4]
    if not (root / "infra" / "app.py").exists():
        raise TemplateError(
            f"cannot find infra/app.py above {conveyor.__file__}: install Conveyor from a checkout (pip install -e .)"
        )
    return root


def _fingerprint(root: Path) -> str:
    digest = hashlib.sha256()
    # The definition reads the domain package too (state names, resumable states, compute limits).
    paths = sorted([*(root / "infra").rglob("*.py"), *Path(conveyor.__file__).parent.rglob("*.py"), root / "cdk.json"])
    paths += sorted(p for p in (root / "functions").iterdir() if p.is_dir())
    for path in paths:
        digest.update(str(path.relative_to(root)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def synthesized_template(root: Path | None = None, *, state_dir: Path | None = None) -> dict[str, Any]:
    """The CloudFormation template of the stack, synthesized from infra/ if it changed since last time."""
    root = root or repo_root()
    out = (state_dir or root / ".conveyor") / "cdk.out"
    stamp = out / "fingerprint"
    template_path = out / f"{STACK}.template.json"
    fingerprint = _fingerprint(root)
    if not (template_path.exists() and stamp.exists() and stamp.read_text() == fingerprint):
        out.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "CDK_OUTDIR": str(out),
            # Asset bundling (pip for the Lambda layers) is for deployments; the local cloud runs the sources.
            "CDK_CONTEXT_JSON": json.dumps({"aws:cdk:bundling-stacks": []}),
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
            "JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION": "1",
        }
        done = subprocess.run(
            [sys.executable, "-m", "infra.app"], cwd=root, env=env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0 or not template_path.exists():
            raise TemplateError(f"cdk synth failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
        stamp.write_text(fingerprint)
    template: dict[str, Any] = json.loads(template_path.read_text())
    return template
