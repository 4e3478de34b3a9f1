"""Buckets with the same security baseline: encrypted, private, TLS-only, access-logged."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_s3 as s3
from constructs import Construct


def access_logs_bucket(scope: Construct, construct_id: str) -> s3.Bucket:
    """The target of every other bucket's server access logs (delivered through its bucket policy;
    cdk-nag accepts a log-target bucket without logging of its own)."""
    bucket = s3.Bucket(
        scope,
        construct_id,
        encryption=s3.BucketEncryption.S3_MANAGED,  # log delivery does not support SSE-KMS
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        removal_policy=cdk.RemovalPolicy.RETAIN,
        lifecycle_rules=[s3.LifecycleRule(expiration=cdk.Duration.days(365))],
    )
    return bucket


def secure_bucket(
    scope: Construct,
    construct_id: str,
    *,
    access_logs: s3.IBucket,
    **overrides: Any,
) -> s3.Bucket:
    """A private, encrypted, TLS-only bucket logging its accesses under `<construct_id>/`."""
    props: dict[str, Any] = {
        "encryption": s3.BucketEncryption.S3_MANAGED,
        "block_public_access": s3.BlockPublicAccess.BLOCK_ALL,
        "enforce_ssl": True,
        "server_access_logs_bucket": access_logs,
        "server_access_logs_prefix": f"{construct_id}/",
        "removal_policy": cdk.RemovalPolicy.RETAIN,
    }
    props.update(overrides)
    return s3.Bucket(scope, construct_id, **props)
