"""One synthesis of the Conveyor stack for the whole session (Template.from_stack costs seconds)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import aws_cdk as cdk
from aws_cdk.assertions import Template

from infra.app import build_app
from infra.stack import ConveyorStack


@dataclass(frozen=True)
class Synth:
    app: cdk.App
    stack: ConveyorStack
    template: Template
    json: dict[str, Any]

    def resources(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {
            logical_id: resource
            for logical_id, resource in self.json["Resources"].items()
            if resource["Type"] == resource_type
        }

    def logical_id(self, construct: Any) -> str:
        return str(self.stack.resolve(self.stack.get_logical_id(construct.node.default_child)))


def synthesize(tmp_path_factory: pytest.TempPathFactory, context: dict[str, Any] | None = None) -> Synth:
    """The app's Conveyor stack for `context` (a stage and its overrides), without bundling."""
    # No bundling (no pip, no Docker) and an output directory outside the repo.
    os.environ["CDK_OUTDIR"] = str(tmp_path_factory.mktemp("cdk.out"))
    try:
        app = build_app({"aws:cdk:bundling-stacks": [], **(context or {})})
    finally:
        del os.environ["CDK_OUTDIR"]
    stack = next(child for child in app.node.children if isinstance(child, ConveyorStack))
    template = Template.from_stack(stack)
    return Synth(app=app, stack=stack, template=template, json=dict(template.to_json()))


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The default stage (dev), as `python -m infra.app` and the local cloud build it."""
    return synthesize(tmp_path_factory)


# Each other stage once per session, with alert e-mails given as context (infra/stages.py's are empty).
STAGE_CONTEXTS: dict[str, dict[str, Any]] = {
    "dev": {},
    "staging": {"stage": "staging", "alert_emails": "ml-team@example.com"},
    "prod": {"stage": "prod", "alert_emails": "oncall@example.com,ml-team@example.com"},
}


@pytest.fixture(scope="session", params=list(STAGE_CONTEXTS))
def stage_synth(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Synth]:
    """(stage, synthesis) for every stage; dev is the session's `synth`."""
    stage: str = request.param
    if not STAGE_CONTEXTS[stage]:
        return stage, request.getfixturevalue("synth")
    return stage, synthesize(tmp_path_factory, STAGE_CONTEXTS[stage])
