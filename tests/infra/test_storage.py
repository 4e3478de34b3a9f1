"""Buckets, the registry table: encrypted, private, TLS-only, recoverable."""

from __future__ import annotations

from aws_cdk.assertions import Match

from tests.infra.conftest import Synth


def test_four_buckets_counting_the_access_logs_bucket(synth: Synth) -> None:
    # data, artifact, capture, access logs (the notifications handler creates none)
    synth.template.resource_count_is("AWS::S3::Bucket", 4)


def test_every_bucket_is_encrypted_and_private(synth: Synth) -> None:
    for logical_id, bucket in synth.resources("AWS::S3::Bucket").items():
        props = bucket["Properties"]
        encryption = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert encryption[0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms"), logical_id
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }, logical_id
        assert "AccessControl" not in props, logical_id


def test_every_bucket_denies_plain_http(synth: Synth) -> None:
    policies = synth.resources("AWS::S3::BucketPolicy").values()
    protected = set()
    for policy in policies:
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Deny" and statement.get("Condition") == {
                "Bool": {"aws:SecureTransport": "false"}
            }:
                protected.add(policy["Properties"]["Bucket"]["Ref"])
    assert protected == set(synth.resources("AWS::S3::Bucket"))


def test_buckets_log_accesses_to_the_logs_bucket(synth: Synth) -> None:
    logs_bucket = synth.logical_id(synth.stack.node.find_child("AccessLogsBucket"))
    for logical_id, bucket in synth.resources("AWS::S3::Bucket").items():
        if logical_id == logs_bucket:
            continue
        assert bucket["Properties"]["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": logs_bucket}


def test_data_and_artifact_buckets_are_retained(synth: Synth) -> None:
    for bucket in (synth.stack.data_bucket, synth.stack.artifact_bucket):
        resource = synth.json["Resources"][synth.logical_id(bucket)]
        assert resource["DeletionPolicy"] == "Retain"
        assert resource["UpdateReplacePolicy"] == "Retain"


def test_data_bucket_is_versioned_and_notifies_eventbridge(synth: Synth) -> None:
    data = synth.json["Resources"][synth.logical_id(synth.stack.data_bucket)]
    assert data["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}
    synth.template.has_resource_properties(
        "Custom::S3BucketNotifications",
        {
            "BucketName": {"Ref": synth.logical_id(synth.stack.data_bucket)},
            "NotificationConfiguration": {"EventBridgeConfiguration": {}},
        },
    )


def test_registry_table_keys_billing_recovery_encryption(synth: Synth) -> None:
    synth.template.resource_count_is("AWS::DynamoDB::Table", 1)
    synth.template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            "AttributeDefinitions": Match.array_equals(
                [
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "S"},
                ]
            ),
            "BillingMode": "PAY_PER_REQUEST",
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "SSESpecification": {"SSEEnabled": True},
        },
    )


def test_alerts_topic_is_encrypted_and_tls_only(synth: Synth) -> None:
    synth.template.resource_count_is("AWS::SNS::Topic", 1)
    synth.template.has_resource_properties(
        "AWS::SNS::Topic", {"KmsMasterKeyId": Match.object_like({"Fn::GetAtt": Match.any_value()})}
    )
    synth.template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})
    synth.template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})]
                )
            }
        },
    )
