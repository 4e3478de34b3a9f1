"""The state machine "batch": plan the chunks, a Distributed Map over the items manifest (ItemReader,
ResultWriter), one Lambda per chunk; each function granted only its keys of the layout."""

from __future__ import annotations

from typing import Any

import pytest

from infra.asl import render_definition
from tests.infra.conftest import Synth
from tests.infra.test_functions import _statements_of
from tests.infra.test_pipeline import resolve


@pytest.fixture(scope="module")
def asl(synth: Synth) -> dict[str, Any]:
    return render_definition(synth.json, synth.logical_id(synth.stack.batch_state_machine), resolve)


def test_plan_then_a_distributed_map_over_the_manifest(synth: Synth, asl: dict[str, Any]) -> None:
    artifacts = synth.logical_id(synth.stack.artifact_bucket)
    assert asl["StartAt"] == "Plan chunks" and asl["TimeoutSeconds"] == 86400
    plan = asl["States"]["Plan chunks"]
    assert plan["ResultPath"] == "$.plan" and plan["Next"] == "Score chunks"
    assert plan["Parameters"] == {"state.$": "$", "execution_id.$": "$$.Execution.Id"}
    chunks = asl["States"]["Score chunks"]
    assert chunks["Type"] == "Map" and chunks["Next"] == "Scored"
    assert chunks["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    assert chunks["ItemReader"] == {
        "Resource": "arn:aws:states:::s3:getObject",
        "ReaderConfig": {"InputType": "JSON"},
        "Parameters": {"Bucket": f"ref:{artifacts}", "Key.$": "$.plan.items_key"},
    }
    assert chunks["ResultWriter"] == {
        "Resource": "arn:aws:states:::s3:putObject",
        "Parameters": {"Bucket": f"ref:{artifacts}", "Prefix": "staging/batch-results"},
    }
    assert chunks.get("ToleratedFailurePercentage", 0) == 0 and chunks["MaxConcurrency"] == 100
    assert chunks["ItemSelector"] == {"item.$": "$$.Map.Item.Value", "execution.$": "$$.Execution.Id"}
    score = chunks["ItemProcessor"]["States"]["Score chunk"]
    assert score["Parameters"] == {"state": {"item.$": "$.item"}, "execution_id.$": "$.execution"}
    assert score["Resource"].startswith("getatt:BatchBatchscoreFunction")
    assert asl["States"]["Scored"] == {"Type": "Succeed"}
    (machine,) = [
        r for lid, r in synth.resources("AWS::StepFunctions::StateMachine").items() if lid.startswith("Batch")
    ]
    assert machine["Properties"]["TracingConfiguration"] == {"Enabled": True}


def _s3_grants(synth: Synth, name: str) -> dict[str, set[str]]:
    """ "{bucket logical id}{key pattern}" -> the S3 actions granted on it ("" pattern: the bucket itself)."""
    grants: dict[str, set[str]] = {}
    for statement in _statements_of(synth, name):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for resource in resources:
            if "Fn::Join" in resource:
                (bucket, _attribute), pattern = resource["Fn::Join"][1][0]["Fn::GetAtt"], resource["Fn::Join"][1][1]
            elif "Fn::GetAtt" in resource:
                (bucket, _attribute), pattern = resource["Fn::GetAtt"], ""
            else:
                continue
            grants.setdefault(f"{bucket}{pattern}", set()).update(a for a in actions if a.startswith("s3:"))
    return {key: actions for key, actions in grants.items() if actions}


def test_the_batch_functions_get_only_their_keys(synth: Synth) -> None:
    data, artifacts, capture = (
        synth.logical_id(b) for b in (synth.stack.data_bucket, synth.stack.artifact_bucket, synth.stack.capture_bucket)
    )
    plan, score = _s3_grants(synth, "batch_plan"), _s3_grants(synth, "batch_score")
    writes = ("s3:Put", "s3:Delete", "s3:Abort")
    # plan: reads the batch object (and lists its bucket), writes the chunk manifest under staging/
    assert set(plan) == {data, f"{data}/*/batch/*", f"{artifacts}/staging/*"}
    assert not any(a.startswith(writes) for a in plan[data] | plan[f"{data}/*/batch/*"])
    assert all(a.startswith(("s3:Put", "s3:Abort")) for a in plan[f"{artifacts}/staging/*"])
    # score: reads its chunk and the version's artifacts; writes scored parts and capture records only
    assert set(score) == {
        data,
        f"{data}/*/batch/*",
        f"{data}/*/scored/*",
        artifacts,
        f"{artifacts}/*",
        f"{capture}/*/capture/*",
    }
    assert not any(a.startswith(writes) for a in score[f"{data}/*/batch/*"] | score[f"{artifacts}/*"])
    for key in (f"{data}/*/scored/*", f"{capture}/*/capture/*"):
        assert all(a.startswith(("s3:Put", "s3:Abort")) for a in score[key]), score[key]
    for grants in (plan, score):
        assert not any(a.startswith("s3:Delete") for actions in grants.values() for a in actions)
