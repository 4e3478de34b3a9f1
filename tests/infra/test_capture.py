"""Capture delivery: predict's capture log lines, through a subscription filter, to a Firehose stream
that unpacks them into the capture bucket, partitioned by model, encrypted; predict itself has no
capture right. And predict's start option (SnapStart or provisioned concurrency on its alias)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from conveyor.capture import CAPTURE_LINE_FIELDS
from infra.stages import StageError, settings_for
from tests.infra.conftest import Synth, synthesize


def _stream(synth: Synth) -> tuple[str, dict[str, Any]]:
    ((logical_id, stream),) = synth.resources("AWS::KinesisFirehose::DeliveryStream").items()
    return logical_id, stream["Properties"]


def _predict(synth: Synth) -> Any:
    return synth.stack.node.find_child("Serving").node.find_child("PredictFunction")


def test_records_land_in_the_capture_bucket_by_model_and_hour(synth: Synth) -> None:
    _, props = _stream(synth)
    destination = props["ExtendedS3DestinationConfiguration"]
    assert destination["BucketARN"] == {"Fn::GetAtt": [synth.logical_id(synth.stack.capture_bucket), "Arn"]}
    assert destination["Prefix"] == "!{partitionKeyFromQuery:model}/capture/!{timestamp:yyyy/MM/dd/HH}/"
    assert destination["ErrorOutputPrefix"].startswith("capture-errors/!{firehose:error-output-type}/")
    assert destination["DynamicPartitioningConfiguration"] == {"Enabled": True}
    processors = destination["ProcessingConfiguration"]["Processors"]
    # CloudWatch Logs' gzip batch -> each log event's message (the record's line) -> newline -> .model
    assert [p["Type"] for p in processors] == [
        "Decompression",
        "CloudWatchLogProcessing",
        "AppendDelimiterToRecord",
        "MetadataExtraction",
    ]
    parameters = [{p["ParameterName"]: p["ParameterValue"] for p in proc.get("Parameters", [])} for proc in processors]
    assert parameters[0].get("CompressionFormat", "GZIP") == "GZIP"
    assert parameters[1] == {"DataMessageExtraction": "true"}
    assert parameters[3] == {"MetadataExtractionQuery": '{"model":.model}', "JsonParsingEngine": "JQ-1.6"}
    assert destination["BufferingHints"]["SizeInMBs"] >= 64  # the minimum with dynamic partitioning
    assert destination["BufferingHints"]["IntervalInSeconds"] == 60  # the least: the README's delivery delay
    assert destination["CompressionFormat"] == "UNCOMPRESSED" and destination["FileExtension"] == ".jsonl"
    assert destination["CloudWatchLoggingOptions"]["Enabled"] is True


def test_the_stream_is_encrypted_and_takes_direct_puts(synth: Synth) -> None:
    _, props = _stream(synth)
    assert props["DeliveryStreamEncryptionConfigurationInput"]["KeyType"] in ("AWS_OWNED_CMK", "CUSTOMER_MANAGED_CMK")
    assert props["DeliveryStreamType"] == "DirectPut"


def test_a_subscription_filter_sends_predicts_capture_lines_to_the_stream(synth: Synth) -> None:
    stream_id, _ = _stream(synth)
    predict = _predict(synth)
    ((_, subscription),) = synth.resources("AWS::Logs::SubscriptionFilter").items()
    props = subscription["Properties"]
    log_group = synth.logical_id(predict.node.scope.node.find_child("PredictFunctionLogs"))
    assert props["LogGroupName"] == {"Ref": log_group}
    assert props["DestinationArn"] == {"Fn::GetAtt": [stream_id, "Arn"]}
    pattern = props["FilterPattern"]
    assert all(f"$.{field}" in pattern for field in CAPTURE_LINE_FIELDS)


def test_predict_has_no_capture_right_and_is_told_to_log_its_captures(synth: Synth) -> None:
    predict = _predict(synth)
    variables = synth.json["Resources"][synth.logical_id(predict)]["Properties"]["Environment"]["Variables"]
    assert variables["CAPTURE_DELIVERY"] == "log" and variables["CONVEYOR_LEAN_AWS"] == "1"
    policy_id = synth.logical_id(predict.role.node.find_child("DefaultPolicy"))
    statements = synth.json["Resources"][policy_id]["Properties"]["PolicyDocument"]["Statement"]
    assert not any(str(a).startswith("firehose:") for s in statements for a in _list(s["Action"]))
    assert not any("s3:Put" in str(a) for s in statements for a in _list(s["Action"]))


def test_no_function_can_write_captures(synth: Synth) -> None:
    for logical_id, policy in synth.resources("AWS::IAM::Policy").items():
        if "CaptureSubscription" in logical_id or "CaptureStream" in logical_id:
            continue  # CloudWatch Logs' role (to the stream) and Firehose's own (to the bucket)
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            assert not any(str(a).startswith("firehose:Put") for a in _list(statement["Action"])), logical_id


def test_the_api_calls_predicts_live_alias(synth: Synth) -> None:
    (alias,) = synth.resources("AWS::Lambda::Alias").values()
    assert alias["Properties"]["Name"] == "live"
    assert "ProvisionedConcurrencyConfig" not in alias["Properties"]  # on demand: the dev stage's default
    methods = [m["Properties"] for m in synth.resources("AWS::ApiGateway::Method").values()]
    uris = [json.dumps(m["Integration"]["Uri"]) for m in methods if m.get("Integration", {}).get("Uri")]
    alias_id = next(iter(synth.resources("AWS::Lambda::Alias")))
    assert len(uris) == 3 and all(alias_id in uri for uri in uris), uris


def test_the_only_mapping_is_the_one_firehose_declares_unused(synth: Synth) -> None:
    # tests/infra/test_compliance.py ignores cfn-lint's W7001 (unused mapping) for this one only.
    assert set(synth.json.get("Mappings", {})) == {"awscdkawskinesisfirehoseCidrBlocks"}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize(
    ("context", "snap_start", "provisioned"),
    [
        ({"predict_start": "snapstart"}, {"ApplyOn": "PublishedVersions"}, None),
        ({"predict_start": "provisioned", "predict_provisioned_concurrency": "3"}, None, 3),
    ],
)
def test_the_stage_option_gives_predict_snapstart_or_provisioned_concurrency(
    tmp_path_factory: pytest.TempPathFactory, context: dict[str, str], snap_start: Any, provisioned: Any
) -> None:
    synth = synthesize(tmp_path_factory, context)
    predict = synth.json["Resources"][synth.logical_id(_predict(synth))]["Properties"]
    assert predict.get("SnapStart") == snap_start
    (alias,) = synth.resources("AWS::Lambda::Alias").values()
    config = alias["Properties"].get("ProvisionedConcurrencyConfig")
    assert (config or {}).get("ProvisionedConcurrentExecutions") == provisioned
    (version,) = synth.resources("AWS::Lambda::Version").values()  # the alias points at a published version
    assert alias["Properties"]["FunctionVersion"] == {
        "Fn::GetAtt": [next(iter(synth.resources("AWS::Lambda::Version"))), "Version"]
    }
    assert version["Properties"]["FunctionName"] == {"Ref": synth.logical_id(_predict(synth))}


def test_a_provisioned_start_needs_a_concurrency() -> None:
    with pytest.raises(StageError):
        settings_for({"predict_start": "provisioned"})
    with pytest.raises(StageError):
        settings_for({"predict_start": "warm"})
