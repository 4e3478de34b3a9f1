"""The two reads the predict function makes, S3 ``GetObject`` and DynamoDB ``GetItem``, signed with
Signature Version 4 in the standard library: boto3's import and client set-up cost the function more
than numpy, onnxruntime and the model's session together at a cold start (see
docs/benchmarks-serving.md). Chosen by ``CONVEYOR_LEAN_AWS=1`` (the stack sets it on predict);
everything else, and predict without it, uses boto3 (``conveyor.adapters.aws``).

Credentials and region from the environment (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_SESSION_TOKEN``, ``AWS_REGION``/``AWS_DEFAULT_REGION``: what Lambda sets), endpoints from
``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL_DYNAMODB``/``AWS_ENDPOINT_URL`` when set (path-style),
else AWS's regional endpoints. A failed call is retried once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
import time
from typing import Any
from urllib.parse import quote, urlsplit

from conveyor.adapters.lean_http import Connection
from conveyor.errors import ConveyorError, ObjectMissing


class AwsCallFailed(ConveyorError):
    pass


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def sign(
    method: str,
    host: str,
    path: str,
    headers: dict[str, str],
    body: bytes,
    *,
    service: str,
    region: str,
    access_key: str,
    secret_key: str,
    token: str = "",
    now: float | None = None,
) -> dict[str, str]:
    """``headers`` plus ``Host``, ``X-Amz-Date``, ``X-Amz-Content-Sha256``, the token, and the
    SigV4 ``Authorization`` of the request (``path`` already URI-encoded, no query string)."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    payload = hashlib.sha256(body).hexdigest()
    signed = {**headers, "host": host, "x-amz-date": stamp, "x-amz-content-sha256": payload}
    if token:
        signed["x-amz-security-token"] = token
    canonical_headers = {k.lower(): " ".join(str(v).split()) for k, v in signed.items()}
    names = ";".join(sorted(canonical_headers))
    canonical = "\n".join(
        [method, path, "", *(f"{k}:{canonical_headers[k]}" for k in sorted(canonical_headers)), "", names, payload]
    )
    scope = f"{stamp[:8]}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(f"AWS4{secret_key}".encode(), stamp[:8]), region), service), "aws4_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    authorization = f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={names}, Signature={signature}"
    return {**signed, "Authorization": authorization}


class _Client:
    """One service's endpoint, with a kept-alive connection per thread."""

    def __init__(self, service: str, endpoint_variable: str) -> None:
        self.service = service
        self.region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        endpoint = os.environ.get(endpoint_variable) or os.environ.get("AWS_ENDPOINT_URL")
        self.custom = bool(endpoint)
        parts = urlsplit(endpoint or f"https://{service}.{self.region}.amazonaws.com")
        self.scheme, self.host = parts.scheme, parts.netloc
        self._local = threading.local()

    def _connection(self, host: str) -> Connection:
        connections: dict[str, Connection] = self._local.__dict__.setdefault("connections", {})
        if host not in connections:
            connections[host] = Connection(host, secure=self.scheme == "https", timeout=10)
        return connections[host]

    def call(self, method: str, host: str, path: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, bytes]:
        signed = sign(
            method,
            host,
            path,
            headers,
            body,
            service=self.service,
            region=self.region,
            access_key=os.environ.get("AWS_ACCESS_KEY_ID", ""),
            secret_key=os.environ.get("AWS_SECRET_ACCESS_KEY", ""),
            token=os.environ.get("AWS_SESSION_TOKEN", ""),
        )
        for attempt in range(2):
            connection = self._connection(host)
            try:
                status, data = connection.request(method, path, signed, body)
            except OSError:  # lean_http.HttpError included
                connection.close()
                self._local.connections.pop(host, None)
                if attempt:
                    raise
                continue
            if status < 500 or attempt:
                return status, data
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


class LeanS3:
    """``ObjectStore.get`` (the reads of the predict function)."""

    def __init__(self) -> None:
        self._client = _Client("s3", "AWS_ENDPOINT_URL_S3")

    def get(self, bucket: str, key: str, version_id: str | None = None) -> bytes:
        if version_id:
            raise AwsCallFailed("the lean S3 reader reads current versions only")
        client = self._client
        encoded = quote(key, safe="/~")
        host, path = (
            (client.host, f"/{bucket}/{encoded}") if client.custom else (f"{bucket}.{client.host}", f"/{encoded}")
        )
        status, data = client.call("GET", host, path, {})
        if status == 404:
            raise ObjectMissing(bucket, key, version_id)
        if status >= 300:
            raise AwsCallFailed(f"S3 GetObject s3://{bucket}/{key}: HTTP {status} {data[:200]!r}")
        return data


def _value(typed: dict[str, Any]) -> Any:
    """One DynamoDB attribute value as plain JSON (numbers as int when integral, as conveyor.adapters.aws reads them)."""
    ((kind, value),) = typed.items()
    if kind == "N":
        number = float(value)
        return int(value) if number.is_integer() and "." not in value and "e" not in value.lower() else number
    if kind == "M":
        return {k: _value(v) for k, v in value.items()}
    if kind == "L":
        return [_value(v) for v in value]
    if kind == "NULL":
        return None
    if kind == "NS":
        return {float(v) for v in value}
    if kind in ("SS", "BS"):
        return set(value)
    return value  # S, BOOL, B


class LeanDynamoReader:
    """``Table.get`` (the routing record read of the predict function)."""

    def __init__(self, table_name: str) -> None:
        self._table = table_name
        self._client = _Client("dynamodb", "AWS_ENDPOINT_URL_DYNAMODB")

    def get(self, pk: str, sk: str) -> dict[str, Any] | None:
        body = json.dumps(
            {"TableName": self._table, "Key": {"pk": {"S": pk}, "sk": {"S": sk}}, "ConsistentRead": True}
        ).encode()
        headers = {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "DynamoDB_20120810.GetItem"}
        status, data = self._client.call("POST", self._client.host, "/", headers, body)
        if status >= 300:
            raise AwsCallFailed(f"DynamoDB GetItem {self._table} {pk}/{sk}: HTTP {status} {data[:200]!r}")
        item = json.loads(data).get("Item")
        return {k: _value(v) for k, v in item.items()} if item else None
