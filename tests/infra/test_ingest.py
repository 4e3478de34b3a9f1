"""A drop under {model}/incoming/ -> EventBridge -> ingest queue -> dispatch -> one execution."""

from __future__ import annotations

from aws_cdk.assertions import Match

from tests.infra.conftest import Synth


def test_rule_matches_incoming_objects_of_the_data_bucket(synth: Synth) -> None:
    rules = synth.resources("AWS::Events::Rule")
    assert len(rules) == 1
    (rule,) = rules.values()
    assert rule["Properties"]["EventPattern"] == {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {
            "bucket": {"name": [{"Ref": synth.logical_id(synth.stack.data_bucket)}]},
            "object": {"key": [{"wildcard": "*/incoming/*"}]},
        },
    }


def test_rule_targets_the_ingest_queue_only(synth: Synth) -> None:
    (rule,) = synth.resources("AWS::Events::Rule").values()
    targets = rule["Properties"]["Targets"]
    assert [target["Arn"] for target in targets] == [
        {"Fn::GetAtt": [synth.logical_id(synth.stack.ingest_queue), "Arn"]}
    ]


def test_ingest_queue_has_a_dead_letter_queue_and_tls_only(synth: Synth) -> None:
    queue = synth.json["Resources"][synth.logical_id(synth.stack.ingest_queue)]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][1] == "Arn"
    assert queue["SqsManagedSseEnabled"] is True
    synth.template.resource_count_is("AWS::SQS::Queue", 2)
    for policy in synth.resources("AWS::SQS::QueuePolicy").values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
        )
    assert len(synth.resources("AWS::SQS::QueuePolicy")) == 2


def test_dispatch_consumes_the_queue_with_partial_batch_failures(synth: Synth) -> None:
    synth.template.resource_count_is("AWS::Lambda::EventSourceMapping", 1)
    synth.template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": {"Fn::GetAtt": [synth.logical_id(synth.stack.ingest_queue), "Arn"]},
            "BatchSize": 10,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "FunctionName": {"Ref": Match.string_like_regexp("IngestDispatchFunction")},
        },
    )


def test_only_dispatch_may_start_the_pipeline(synth: Synth) -> None:
    machine = synth.logical_id(synth.stack.state_machine)
    starters = []
    for logical_id, policy in synth.resources("AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if "states:StartExecution" in actions:
                assert statement["Resource"] == {"Ref": machine}
                starters.append(logical_id)
    assert len(starters) == 1 and starters[0].startswith("IngestDispatchFunction")
