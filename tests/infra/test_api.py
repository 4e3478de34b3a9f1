"""The prediction API: three routes to predict, IAM authorization, validated, logged, throttled."""

from __future__ import annotations

from typing import Any

from tests.infra.conftest import Synth


def routes(synth: Synth) -> dict[tuple[str, str], dict[str, Any]]:
    resources = synth.resources("AWS::ApiGateway::Resource")
    api_id = synth.logical_id(synth.stack.api)

    def path_of(ref: Any) -> str:
        if isinstance(ref, dict) and "Fn::GetAtt" in ref:  # the root resource
            assert ref["Fn::GetAtt"] == [api_id, "RootResourceId"]
            return ""
        resource = resources[ref["Ref"]]["Properties"]
        return f"{path_of(resource['ParentId'])}/{resource['PathPart']}"

    return {
        (method["Properties"]["HttpMethod"], path_of(method["Properties"]["ResourceId"])): method["Properties"]
        for method in synth.resources("AWS::ApiGateway::Method").values()
    }


def test_three_routes_with_iam_auth_proxied_to_predict(synth: Synth) -> None:
    found = routes(synth)
    assert set(found) == {
        ("POST", "/models/{model}/predict"),
        ("GET", "/models/{model}"),
        ("GET", "/openapi.json"),
    }
    # predict's "live" alias (SnapStart and provisioned concurrency apply to published versions)
    predict = synth.logical_id(
        synth.stack.node.find_child("Serving").node.find_child("PredictFunction").node.find_child("Aliaslive")
    )
    validators = synth.resources("AWS::ApiGateway::RequestValidator")
    assert len(validators) == 1
    for route, method in found.items():
        assert method["AuthorizationType"] == "AWS_IAM", route
        integration = method["Integration"]
        assert integration["Type"] == "AWS_PROXY", route
        uri = str(integration["Uri"])
        assert predict in uri, route
        assert method["RequestValidatorId"] == {"Ref": next(iter(validators))}, route


def test_stage_v1_logged_traced_throttled(synth: Synth) -> None:
    (stage,) = synth.resources("AWS::ApiGateway::Stage").values()
    props = stage["Properties"]
    assert props["StageName"] == "v1"
    assert props["TracingEnabled"] is True
    assert "DestinationArn" in props["AccessLogSetting"]
    (settings,) = props["MethodSettings"]
    assert settings["ThrottlingRateLimit"] > 0 and settings["ThrottlingBurstLimit"] > 0
    assert settings["LoggingLevel"] in ("ERROR", "INFO")
    assert settings["DataTraceEnabled"] is False


def test_the_predict_body_is_validated_against_the_openapi_documents_schema(synth: Synth) -> None:
    from conveyor.openapi import openapi_document, predict_request_schema

    (model_id, model) = next(iter(synth.resources("AWS::ApiGateway::Model").items()))
    schema = dict(model["Properties"]["Schema"])
    assert schema.pop("$schema") == "http://json-schema.org/draft-04/schema#"
    assert schema == predict_request_schema() == openapi_document()["components"]["schemas"]["PredictRequest"]
    assert model["Properties"]["ContentType"] == "application/json"
    (validator,) = synth.resources("AWS::ApiGateway::RequestValidator").values()
    assert validator["Properties"]["ValidateRequestBody"] is True
    assert validator["Properties"]["ValidateRequestParameters"] is True
    predict = routes(synth)[("POST", "/models/{model}/predict")]
    assert predict["RequestModels"] == {"application/json": {"Ref": model_id}}
    assert predict["RequestParameters"] == {"method.request.path.model": True}
    assert routes(synth)[("GET", "/openapi.json")]["RequestParameters"] == {"method.request.querystring.model": False}


def test_the_gateways_own_refusals_use_the_api_error_format(synth: Synth) -> None:
    import json

    responses = {
        r["Properties"]["ResponseType"]: r["Properties"]
        for r in synth.resources("AWS::ApiGateway::GatewayResponse").values()
    }
    assert set(responses) >= {"BAD_REQUEST_BODY", "BAD_REQUEST_PARAMETERS"}
    for response_type in ("BAD_REQUEST_BODY", "BAD_REQUEST_PARAMETERS"):
        props = responses[response_type]
        assert props["StatusCode"] == "400"
        template = props["ResponseTemplates"]["application/json"]
        rendered = template.replace("$context.error.messageString", '"Invalid request body"').replace(
            "$util.escapeJavaScript($context.error.validationErrorString)", "[instance failed]"
        )
        error = json.loads(rendered)["error"]
        assert error["code"] == "invalid_request" and error["details"][0]["message"] == "[instance failed]"
