"""A drop under {model}/incoming/ -> EventBridge -> ingest queue -> dispatch -> one execution; a
label file under {model}/labels/ takes the same rule and queue to the label ingest."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Match

from tests.infra.conftest import Synth


def _drop_rule(synth: Synth) -> dict:
    rules = synth.resources("AWS::Events::Rule").values()
    (rule,) = [r for r in rules if r["Properties"].get("EventPattern", {}).get("source") == ["aws.s3"]]
    return rule


def test_rule_matches_incoming_objects_and_labels_of_the_data_bucket(synth: Synth) -> None:
    rule = _drop_rule(synth)
    assert rule["Properties"]["EventPattern"] == {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {
            "bucket": {"name": [{"Ref": synth.logical_id(synth.stack.data_bucket)}]},
            "object": {"key": [{"wildcard": "*/incoming/*"}, {"wildcard": "*/labels/*"}, {"wildcard": "*/batch/*"}]},
        },
    }


def test_rule_targets_the_ingest_queue_only(synth: Synth) -> None:
    rule = _drop_rule(synth)
    targets = rule["Properties"]["Targets"]
    assert [target["Arn"] for target in targets] == [
        {"Fn::GetAtt": [synth.logical_id(synth.stack.ingest_queue), "Arn"]}
    ]


def test_ingest_queue_has_a_dead_letter_queue_and_tls_only(synth: Synth) -> None:
    queue = synth.json["Resources"][synth.logical_id(synth.stack.ingest_queue)]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][1] == "Arn"
    assert queue["SqsManagedSseEnabled"] is True
    synth.template.resource_count_is("AWS::SQS::Queue", 4)  # ingest and alarm queues, each with its DLQ
    for policy in synth.resources("AWS::SQS::QueuePolicy").values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
        )
    assert len(synth.resources("AWS::SQS::QueuePolicy")) == 4


def test_dispatch_consumes_the_queue_with_partial_batch_failures(synth: Synth) -> None:
    synth.template.resource_count_is("AWS::Lambda::EventSourceMapping", 2)  # and the alarm queue's
    synth.template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": {"Fn::GetAtt": [synth.logical_id(synth.stack.ingest_queue), "Arn"]},
            "BatchSize": 10,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "FunctionName": {"Ref": Match.string_like_regexp("IngestDispatchFunction")},
        },
    )


def test_only_dispatch_alarm_actions_the_monitor_and_the_operator_may_start_the_pipeline(synth: Synth) -> None:
    """Drops start executions through the dispatcher; alarm actions start retrains; the monitor starts
    scheduled retrains; of people, the operator role (`impact --retrain`). The dispatcher also starts
    the batch state machine, which starts only its own Distributed Map's child executions."""
    pipeline = synth.logical_id(synth.stack.state_machine)
    batch = synth.logical_id(synth.stack.batch_state_machine)
    starters: dict[str, list[Any]] = {}
    for logical_id, policy in synth.resources("AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if "states:StartExecution" in actions:
                resources = (
                    statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
                )
                starters.setdefault(logical_id, []).extend(resources)
    names = sorted(s.split("Function")[0].split("StateMachine")[0] for s in starters)
    assert names[0].startswith("AccessOperatorRole"), starters
    assert names[1:] == ["Batch", "IngestDispatch", "LiveMonitorMonitor", "MonitoringAlarmaction"], starters
    for logical_id, resources in starters.items():
        if logical_id.startswith("IngestDispatch"):
            assert sorted(map(str, resources)) == sorted([str({"Ref": pipeline}), str({"Ref": batch})])
        elif logical_id.startswith("Batch"):
            assert resources == [{"Ref": batch}]
        else:
            assert resources == [{"Ref": pipeline}]
