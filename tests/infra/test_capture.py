"""Capture delivery: a Firehose stream into the capture bucket, partitioned by model, encrypted,
and the only capture right of the predict function."""

from __future__ import annotations

from typing import Any

from tests.infra.conftest import Synth


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
    (processor,) = destination["ProcessingConfiguration"]["Processors"]
    parameters = {p["ParameterName"]: p["ParameterValue"] for p in processor["Parameters"]}
    assert processor["Type"] == "MetadataExtraction"
    assert parameters == {"MetadataExtractionQuery": '{"model":.model}', "JsonParsingEngine": "JQ-1.6"}
    assert destination["BufferingHints"]["SizeInMBs"] >= 64  # the minimum with dynamic partitioning
    assert destination["CompressionFormat"] == "UNCOMPRESSED" and destination["FileExtension"] == ".jsonl"
    assert destination["CloudWatchLoggingOptions"]["Enabled"] is True


def test_the_stream_is_encrypted_and_takes_direct_puts(synth: Synth) -> None:
    _, props = _stream(synth)
    assert props["DeliveryStreamEncryptionConfigurationInput"]["KeyType"] in ("AWS_OWNED_CMK", "CUSTOMER_MANAGED_CMK")
    assert props["DeliveryStreamType"] == "DirectPut"


def test_predict_puts_record_batches_to_this_stream_only_and_is_told_its_name(synth: Synth) -> None:
    stream_id, _ = _stream(synth)
    predict = _predict(synth)
    variables = synth.json["Resources"][synth.logical_id(predict)]["Properties"]["Environment"]["Variables"]
    assert variables["CAPTURE_STREAM"] == {"Ref": stream_id}
    policy_id = synth.logical_id(predict.role.node.find_child("DefaultPolicy"))
    statements = synth.json["Resources"][policy_id]["Properties"]["PolicyDocument"]["Statement"]
    firehose = [s for s in statements if any(str(a).startswith("firehose:") for a in _list(s["Action"]))]
    assert firehose == [
        {"Action": "firehose:PutRecordBatch", "Effect": "Allow", "Resource": {"Fn::GetAtt": [stream_id, "Arn"]}}
    ]
    assert not any("s3:Put" in str(a) for s in statements for a in _list(s["Action"]))


def test_no_other_function_can_write_captures(synth: Synth) -> None:
    for logical_id, policy in synth.resources("AWS::IAM::Policy").items():
        if "Predict" in logical_id:
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            assert not any(str(a).startswith("firehose:Put") for a in _list(statement["Action"])), logical_id


def test_the_only_mapping_is_the_one_firehose_declares_unused(synth: Synth) -> None:
    # tests/infra/test_compliance.py ignores cfn-lint's W7001 (unused mapping) for this one only.
    assert set(synth.json.get("Mappings", {})) == {"awscdkawskinesisfirehoseCidrBlocks"}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
