import json

import pytest

from conveyor.localcloud.gateway import proxy_event
from conveyor.localcloud.resolver import Names, ResolveError

TEMPLATE = {
    "Resources": {
        "DataBucketE3889A50": {"Type": "AWS::S3::Bucket"},
        "RegistryTable": {"Type": "AWS::DynamoDB::Table"},
        "ValidateFn": {"Type": "AWS::Lambda::Function"},
        "Pipeline": {"Type": "AWS::StepFunctions::StateMachine"},
        "Queue": {"Type": "AWS::SQS::Queue"},
    }
}


def test_resolver_handles_the_intrinsics_cdk_emits():
    names = Names.for_template(TEMPLATE, region="us-east-1", endpoint="http://127.0.0.1:1", stack="Conveyor")
    assert names.resolve({"Ref": "DataBucketE3889A50"}) == "conveyor-databuckete3889a50"
    joined = {"Fn::Join": ["", ['{"Resource":"', {"Fn::GetAtt": ["ValidateFn", "Arn"]}, '"}']]}
    assert json.loads(names.resolve(joined)) == {
        "Resource": "arn:aws:lambda:us-east-1:123456789012:function:ValidateFn"
    }
    assert names.resolve({"Fn::Sub": "arn:${AWS::Partition}:s3:::${DataBucketE3889A50}/*"}) == (
        "arn:aws:s3:::conveyor-databuckete3889a50/*"
    )
    assert names.resolve({"Fn::Select": [1, {"Fn::Split": ["/", "a/b/c"]}]}) == "b"
    assert names.resolve({"Ref": "Pipeline"}).endswith(":stateMachine:Pipeline")
    assert names.resolve({"Fn::GetAtt": ["Queue", "Arn"]}) == "arn:aws:sqs:us-east-1:123456789012:Queue"
    with pytest.raises(ResolveError, match="Nope"):
        names.resolve({"Ref": "Nope"})


def test_proxy_event_strips_the_stage_and_keeps_headers_query_and_body():
    event = proxy_event("POST", "/v1/models/m/predict?a=1&a=2", {"X-Request-Id": "r"}, b'{"x": 1}', "v1", "127.0.0.1")
    assert event["path"] == "/models/m/predict"
    assert event["httpMethod"] == "POST"
    assert event["headers"]["X-Request-Id"] == "r"
    assert event["queryStringParameters"] == {"a": "2"}
    assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"]}
    assert event["body"] == '{"x": 1}' and event["isBase64Encoded"] is False
    assert event["requestContext"]["path"] == "/v1/models/m/predict"


def test_proxy_event_base64_encodes_binary_bodies():
    event = proxy_event("POST", "/v1/x", {}, b"\xff\xfe", "v1", "127.0.0.1")
    assert event["isBase64Encoded"] is True
