"""The OpenAPI document of the prediction API, served at ``GET /openapi.json``.

The same document drives API Gateway's request validation in the CDK app: ``predict_request_schema``
is the body model it checks (plain JSON Schema draft 4, no ``$ref``, so API Gateway reads it as is).
That schema is deliberately loose (an object with a non-empty ``instances`` list of objects): the
function validates each field against the version's serving contract and answers with field-level
details, and a row limit enforced at the gateway would turn the documented 413 into a 400.

``GET /openapi.json?model=M`` returns the document specialised to the model's serving contract
(its feature names, types, required fields and allowed values), so generated clients and test
generators build requests the model can score.
"""

from __future__ import annotations

import copy
from typing import Any

from conveyor.contract import FLOAT32_MAX, ServingContract

MODEL_NAME_PATTERN = "^[a-z0-9-]{1,63}$"

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "array", "items": {"type": "object"}},
            },
        }
    },
}

_WARNING = {
    "type": "object",
    "required": ["row", "field", "message"],
    "properties": {
        "row": {"type": "integer", "description": "index in 'instances'"},
        "field": {"type": "string"},
        "message": {"type": "string"},
    },
}

_VERSION_REF = {
    "type": "object",
    "nullable": True,
    "properties": {
        "version": {"type": "integer"},
        "artifact_key": {"type": "string"},
        "sha256": {"type": "string"},
        "contract_key": {"type": "string"},
        "contract_sha256": {"type": "string"},
    },
}

_MODEL_STATE = {
    "type": "object",
    "required": ["model", "champion", "challenger", "challenger_weight", "shadow", "traffic", "killed", "revision"],
    "properties": {
        "model": {"type": "string"},
        "champion": _VERSION_REF,
        "challenger": _VERSION_REF,
        "challenger_weight": {"type": "number", "minimum": 0, "maximum": 1},
        "shadow": _VERSION_REF,
        "traffic": {
            "type": "object",
            "additionalProperties": {"type": "number"},
            "description": "share of requests per version",
        },
        "killed": {"type": "boolean"},
        "fallback": {"type": "object", "nullable": True},
        "revision": {"type": "integer"},
        "updated_at": {"type": "number"},
        "history": {"type": "array", "items": {"type": "object"}},
        "breakers": {
            "type": "object",
            "description": "this container's circuit breaker per version: state (closed, open, half_open), "
            "opened_at (epoch seconds), consecutive failures",
            "additionalProperties": {"type": "object"},
        },
    },
}


# What the API accepts for a number (contract: finite and within float32 range, the ONNX input's type), so
# a request the document allows is never refused for its magnitude.
FLOAT32_BOUNDS = {"minimum": -FLOAT32_MAX, "maximum": FLOAT32_MAX}


def predict_request_schema() -> dict[str, Any]:
    """The predict body as JSON Schema draft 4: what API Gateway validates before the function runs."""
    return {
        "type": "object",
        "required": ["instances"],
        "properties": {
            "instances": {
                "type": "array",
                "minItems": 1,
                "items": {"type": "object"},
                "description": "rows of feature: value; the maximum row count is answered with 413",
            }
        },
    }


def _feature_schema(kind: str, contract: ServingContract, name: str) -> dict[str, Any]:
    rule = contract.features[name]
    schema: dict[str, Any]
    if kind == "category":
        schema = {"type": "string"}
        if rule.allowed is not None:
            schema["enum"] = sorted({*rule.allowed, *(old for old, new in rule.mapping.items() if new in rule.allowed)})
    elif kind == "boolean":
        schema = {"type": "boolean"}
    elif kind == "integer":
        schema = {"type": "integer", **FLOAT32_BOUNDS}
        if rule.allowed is not None:
            schema["enum"] = sorted(int(v) for v in rule.allowed)
    elif kind == "datetime":
        schema = {"type": "string", "format": "date-time"}
    else:
        schema = {"type": "number", **FLOAT32_BOUNDS}
    if rule.range is not None:
        schema["description"] = (
            f"training range [{rule.range[0]:g}, {rule.range[1]:g}]; a value outside is scored with a warning"
        )
    if rule.nullable:
        schema["nullable"] = True
    return schema


def _instance_schema(contract: ServingContract) -> dict[str, Any]:
    properties: dict[str, Any] = {
        name: _feature_schema(rule.type, contract, name) for name, rule in contract.features.items()
    }
    for column in sorted(contract.ignored):
        properties[column] = {"description": "known to the spec, not used by the model: ignored"}
    return {
        "type": "object",
        "required": [name for name, rule in contract.features.items() if not rule.nullable],
        "properties": properties,
        "additionalProperties": False,
    }


_REQUEST_ID = {
    "name": "X-Request-Id",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "maxLength": 200},
    "description": "echoed; generated when absent",
}
_ENTITY_KEY = {
    "name": "X-Entity-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "maxLength": 200},
    "description": "routes every request with this key to the same version during a traffic split",
}
_PREDICT_RESPONSE = {
    "type": "object",
    "required": ["model", "model_version", "request_id", "predictions", "warnings"],
    "properties": {
        "model": {"type": "string"},
        "model_version": {"type": "integer", "nullable": True},
        "request_id": {"type": "string"},
        "predictions": {"type": "array"},
        "probabilities": {"type": "array", "items": {"type": "object"}},
        "warnings": {"type": "array", "items": _WARNING},
        "fallback": {"type": "string", "enum": ["previous", "static", "champion"]},
        "fallback_from": {
            "type": "integer",
            "description": "the version that could not answer (fallback: champion)",
        },
    },
}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _ok(description: str, schema: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


def _paths(model_param: dict[str, Any]) -> dict[str, Any]:
    return {
        "/models/{model}/predict": {
            "post": {
                "operationId": "predict",
                "parameters": [model_param, copy.deepcopy(_REQUEST_ID), copy.deepcopy(_ENTITY_KEY)],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PredictRequest"}}},
                },
                "responses": {
                    "200": {
                        **_ok("scores of the version that answered", "PredictResponse"),
                        "headers": {
                            "X-Conveyor-Fallback": {
                                "description": "the version the champion answered for (it could not answer)",
                                "schema": {"type": "string"},
                            }
                        },
                    },
                    "400": _error("invalid input, with field-level details"),
                    "404": _error("unknown model"),
                    "413": _error("too many rows"),
                    "503": _error("model switched off with no fallback, or its artifact failed verification"),
                },
            }
        },
        "/models/{model}": {
            "get": {
                "operationId": "describeModel",
                "parameters": [model_param],
                "responses": {"200": _ok("deployment state", "ModelState"), "404": _error("unknown model")},
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "parameters": [
                    {
                        "name": "model",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "pattern": MODEL_NAME_PATTERN},
                        "description": "specialise the document to this model's features",
                    }
                ],
                "responses": {"200": {"description": "this document"}, "404": _error("unknown model")},
            }
        },
    }


def openapi_document(contract: ServingContract | None = None) -> dict[str, Any]:
    """The API's OpenAPI 3.0 document; with ``contract``, specialised to that model."""
    model_schema: dict[str, Any] = {"type": "string", "pattern": MODEL_NAME_PATTERN}
    request_schema = predict_request_schema()
    if contract is not None:
        model_schema = {"type": "string", "enum": [contract.model]}
        request_schema = copy.deepcopy(request_schema)
        request_schema["properties"]["instances"]["items"] = _instance_schema(contract)
    model_param = {"name": "model", "in": "path", "required": True, "schema": model_schema}
    return {
        "openapi": "3.0.3",
        "info": {"title": "Conveyor prediction API", "version": "1"},
        "paths": _paths(model_param),
        "components": {
            "schemas": {
                "Error": _ERROR,
                "PredictRequest": request_schema,
                "PredictResponse": copy.deepcopy(_PREDICT_RESPONSE),
                "ModelState": _MODEL_STATE,
            }
        },
    }
