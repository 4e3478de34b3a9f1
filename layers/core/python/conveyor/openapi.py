"""The OpenAPI document of the prediction API (served at GET /openapi.json)."""

from __future__ import annotations

from typing import Any

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


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def openapi_document() -> dict[str, Any]:
    model_param = {
        "name": "model",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": "^[a-z0-9-]{1,63}$"},
    }
    request_id = {
        "name": "X-Request-Id",
        "in": "header",
        "required": False,
        "schema": {"type": "string", "maxLength": 200},
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "Conveyor prediction API", "version": "1"},
        "paths": {
            "/models/{model}/predict": {
                "post": {
                    "operationId": "predict",
                    "parameters": [model_param, request_id],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PredictRequest"}}},
                    },
                    "responses": {
                        "200": {
                            "description": "scores",
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/PredictResponse"}}
                            },
                        },
                        "400": _error("invalid input, with field-level details"),
                        "404": _error("unknown model"),
                        "413": _error("too many rows"),
                        "503": _error("model switched off"),
                    },
                }
            },
            "/models/{model}": {
                "get": {
                    "operationId": "describeModel",
                    "parameters": [model_param],
                    "responses": {"200": {"description": "deployment state"}, "404": _error("unknown model")},
                }
            },
            "/openapi.json": {
                "get": {"operationId": "openapi", "responses": {"200": {"description": "this document"}}}
            },
        },
        "components": {
            "schemas": {
                "Error": _ERROR,
                "PredictRequest": {
                    "type": "object",
                    "required": ["instances"],
                    "properties": {"instances": {"type": "array", "minItems": 1, "items": {"type": "object"}}},
                },
                "PredictResponse": {
                    "type": "object",
                    "required": ["model", "model_version", "request_id", "predictions"],
                    "properties": {
                        "model": {"type": "string"},
                        "model_version": {"type": "integer"},
                        "request_id": {"type": "string"},
                        "predictions": {"type": "array"},
                        "probabilities": {"type": "array", "items": {"type": "object"}},
                    },
                },
            }
        },
    }
