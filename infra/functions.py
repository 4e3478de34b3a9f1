"""Creates the Lambda functions of the stack consistently.

Every function: python3.12 on x86_64, X-Ray tracing, its own log group with a retention,
its own role (allowed to write that log group and nothing else of CloudWatch Logs: no
AWSLambdaBasicExecutionRole, which allows every log group of the account), the same common
environment, and the tag FUNCTION_TAG = its folder name in functions/ (the local cloud maps
functions to handler code by that tag).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import constants as c
from infra import nag
from infra.bundling import requirements_layer_code


class FunctionFactory(Construct):
    """Owns what functions share (layers, training image, environment) and makes functions."""

    def __init__(self, scope: Construct, construct_id: str, *, environment: Mapping[str, str]) -> None:
        super().__init__(scope, construct_id)
        self._environment = dict(environment)
        self.core_layer = lambda_.LayerVersion(
            self,
            "CoreLayer",
            code=lambda_.Code.from_asset(str(c.CORE_LAYER_DIR), exclude=c.CORE_LAYER_EXCLUDE),
            compatible_runtimes=[lambda_.Runtime.PYTHON_3_12],
            compatible_architectures=[lambda_.Architecture.X86_64],
            description="Conveyor domain package (conveyor/)",
        )
        self.deps_layer = lambda_.LayerVersion(
            self,
            "DepsLayer",
            code=requirements_layer_code(c.INFERENCE_LAYER_DIR),
            compatible_runtimes=[lambda_.Runtime.PYTHON_3_12],
            compatible_architectures=[lambda_.Architecture.X86_64],
            description="Serving runtime: numpy, onnxruntime, aws-lambda-powertools",
        )
        # One image for validate, train and evaluate; each function picks its handler with CMD.
        self.training_image = ecr_assets.DockerImageAsset(
            self,
            "TrainingImage",
            directory=str(c.REPO_ROOT),
            file=c.TRAINING_DOCKERFILE,
            exclude=c.TRAINING_IMAGE_EXCLUDE,
            ignore_mode=cdk.IgnoreMode.DOCKER,
            platform=ecr_assets.Platform.LINUX_AMD64,
        )

    @property
    def environment(self) -> dict[str, str]:
        """The environment every function gets (the training containers get it too)."""
        return dict(self._environment)

    def zip_function(
        self,
        scope: Construct,
        name: str,
        *,
        extra_environment: Mapping[str, str] | None = None,
    ) -> lambda_.Function:
        """A zip function from functions/<name> with the core and deps layers."""
        memory, timeout = c.FUNCTION_SIZING[name]
        fn = lambda_.Function(
            scope,
            _construct_id(name),
            code=lambda_.Code.from_asset(str(c.FUNCTIONS_DIR / name), exclude=["**/__pycache__", "*.pyc"]),
            handler=c.HANDLER,
            runtime=lambda_.Runtime.PYTHON_3_12,
            layers=[self.core_layer, self.deps_layer],
            **self._common_props(scope, name, memory, timeout, extra_environment),
        )
        cdk.Tags.of(fn).add(c.FUNCTION_TAG, name)
        nag.function_baseline(fn, zip_package=True)
        return fn

    def image_function(
        self,
        scope: Construct,
        name: str,
        *,
        extra_environment: Mapping[str, str] | None = None,
    ) -> lambda_.DockerImageFunction:
        """A container-image function running functions/<name>/handler.py in the training image."""
        memory, timeout = c.FUNCTION_SIZING[name]
        fn = lambda_.DockerImageFunction(
            scope,
            _construct_id(name),
            code=lambda_.DockerImageCode.from_ecr(
                self.training_image.repository,
                tag_or_digest=self.training_image.image_tag,
                cmd=[f"functions.{name}.{c.HANDLER}"],
            ),
            ephemeral_storage_size=_ephemeral_storage(name),
            **self._common_props(scope, name, memory, timeout, extra_environment),
        )
        cdk.Tags.of(fn).add(c.FUNCTION_TAG, name)
        nag.function_baseline(fn, zip_package=False)
        return fn

    def _common_props(
        self,
        scope: Construct,
        name: str,
        memory: int,
        timeout: cdk.Duration,
        extra_environment: Mapping[str, str] | None,
    ) -> dict[str, Any]:
        extra = dict(extra_environment or {})
        clashes = {key for key in extra if key in self._environment and extra[key] != self._environment[key]}
        if clashes:
            raise ValueError(f"{name}: extra environment redefines common variables {sorted(clashes)}")
        log_group = logs.LogGroup(
            scope,
            f"{_construct_id(name)}Logs",
            retention=c.LOG_RETENTION,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        role = iam.Role(
            scope,
            f"{_construct_id(name)}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Conveyor {name}: its own log group, and the grants of its construct",
        )
        log_group.grant_write(role)  # logs:CreateLogStream and logs:PutLogEvents on this log group only
        return {
            "role": role,
            "architecture": lambda_.Architecture.X86_64,
            "memory_size": memory,
            "timeout": timeout,
            "tracing": lambda_.Tracing.ACTIVE,
            "log_group": log_group,
            "environment": {**self._environment, **extra},
            "description": f"Conveyor {name}",
        }


def _ephemeral_storage(name: str) -> cdk.Size | None:
    sizes = {
        c.Fn.TRAIN: c.TRAIN_EPHEMERAL_STORAGE_MB,
        c.Fn.VALIDATE: c.VALIDATE_EPHEMERAL_STORAGE_MB,
        c.Fn.DRIFT: c.DRIFT_EPHEMERAL_STORAGE_MB,
    }
    return cdk.Size.mebibytes(sizes[name]) if name in sizes else None


def _construct_id(name: str) -> str:
    return f"{name.capitalize()}Function"
