"""Renders a synthesized state machine's DefinitionString to plain ASL JSON.

CDK writes the definition as {"Fn::Join": ["", [parts...]]} whose parts reference other
resources; the caller's `resolve` turns each {"Ref": X} / {"Fn::GetAtt": [X, attr]} into a
string (a test resolver, or the local cloud's physical ids and ARNs). A {"Fn::Sub": "...${X}..."} part
(an ECR repository's name in an image URI) has each ${X} resolved as {"Ref": X} (or ${A.B} as
{"Fn::GetAtt": [A, B]}).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

Resolver = Callable[[dict[str, Any]], str]


def render_definition(template: dict[str, Any], logical_id: str, resolve: Resolver) -> dict[str, Any]:
    """The ASL of state machine `logical_id` in `template`, references resolved by `resolve`."""
    resource = template["Resources"][logical_id]
    if resource.get("Type") != "AWS::StepFunctions::StateMachine":
        raise ValueError(f"{logical_id} is a {resource.get('Type')}, not a state machine")
    properties = resource["Properties"]
    if "Definition" in properties:  # already an object (definition given inline)
        definition: dict[str, Any] = properties["Definition"]
        return definition
    result: dict[str, Any] = json.loads(_render(properties["DefinitionString"], resolve))
    return result


def _render(value: Any, resolve: Resolver) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((function, argument),) = value.items()
        if function == "Fn::Join":
            separator, parts = argument
            return str(separator).join(_render(part, resolve) for part in parts)
        if function in ("Ref", "Fn::GetAtt"):
            return resolve(value)
        if function == "Fn::Sub" and isinstance(argument, str):
            return re.sub(r"\$\{([^}!]+)\}", lambda match: _substitute(match.group(1), resolve), argument)
    raise ValueError(f"cannot render {value!r} in a state machine definition")


def _substitute(token: str, resolve: Resolver) -> str:
    if "." in token:
        return resolve({"Fn::GetAtt": token.split(".", 1)})
    return resolve({"Ref": token})


def find_state_machines(template: dict[str, Any]) -> list[str]:
    """Logical ids of the state machines in `template`."""
    return [
        logical_id
        for logical_id, resource in template.get("Resources", {}).items()
        if resource.get("Type") == "AWS::StepFunctions::StateMachine"
    ]
