"""infra.asl.render_definition: the resolver the local cloud reuses."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.asl import render_definition


def template_with(definition: Any) -> dict[str, Any]:
    return {
        "Resources": {
            "Machine": {"Type": "AWS::StepFunctions::StateMachine", "Properties": {"DefinitionString": definition}},
            "Queue": {"Type": "AWS::SQS::Queue", "Properties": {}},
        }
    }


def resolve(reference: dict[str, Any]) -> str:
    if "Ref" in reference:
        return {"AWS::Partition": "aws", "Topic": "arn:aws:sns:eu-west-1:1:t"}[reference["Ref"]]
    return f"arn:{reference['Fn::GetAtt'][0]}:{reference['Fn::GetAtt'][1]}"


def test_plain_string_definition() -> None:
    asl = {"StartAt": "A", "States": {"A": {"Type": "Succeed"}}}
    assert render_definition(template_with(json.dumps(asl)), "Machine", resolve) == asl


def test_join_with_ref_and_getatt_nested() -> None:
    definition = {
        "Fn::Join": [
            "",
            [
                '{"StartAt":"A","States":{"A":{"Type":"Task","Resource":"arn:',
                {"Ref": "AWS::Partition"},
                ':states:::sns:publish","Parameters":{"TopicArn":"',
                {"Ref": "Topic"},
                '","Message":"',
                {"Fn::Join": ["-", ["x", {"Fn::GetAtt": ["Fn", "Arn"]}]]},
                '"},"End":true}}}',
            ],
        ]
    }
    asl = render_definition(template_with(definition), "Machine", resolve)
    state = asl["States"]["A"]
    assert state["Resource"] == "arn:aws:states:::sns:publish"
    assert state["Parameters"] == {"TopicArn": "arn:aws:sns:eu-west-1:1:t", "Message": "x-arn:Fn:Arn"}


def test_rejects_other_resources_and_intrinsics() -> None:
    with pytest.raises(ValueError, match="not a state machine"):
        render_definition(template_with("{}"), "Queue", resolve)
    with pytest.raises(ValueError, match="cannot render"):
        render_definition(template_with({"Fn::ImportValue": "x"}), "Machine", resolve)


def test_sub_parts_resolve_their_references() -> None:
    """An image URI in the definition: the repository's name is a Fn::Sub of pseudo parameters."""
    definition = {"Fn::Join": ["", ['{"Image": "', {"Fn::Sub": "repo-${AWS::Partition}-${Bucket.Arn}"}, '"}']]}
    asl = render_definition(template_with(definition), "Machine", resolve)
    assert asl == {"Image": "repo-aws-arn:Bucket:Arn"}
