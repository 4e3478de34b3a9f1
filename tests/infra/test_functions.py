"""The functions: tagged for the local cloud, same runtime, same common environment."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.infra.conftest import Synth

DEPLOYMENT = ("plan", "approval", "trial", "bake", "rollback")
MONITORING = ("alarm_action",)
BATCH = ("batch_plan", "batch_score")
LIVE = ("monitor", "labels")
BURSTS = ("claim", "settle", "finish")  # one retrain per burst (conveyor.bursts)
COMPUTE = ("train_plan", "train_result")  # "Choose compute", "Read training result"
FUNCTIONS = (
    "dispatch",
    "validate",
    "drift",
    "train",
    "evaluate",
    "register",
    "deploy",
    "predict",
    *DEPLOYMENT,
    *MONITORING,
    *LIVE,
    "board_widget",
    *BATCH,
    *BURSTS,
    *COMPUTE,
)
ZIP = (
    "dispatch",
    "register",
    "deploy",
    "predict",
    "approval",
    "trial",
    "bake",
    "rollback",
    *MONITORING,
    "board_widget",
    "finish",
    "train_result",
)
IMAGE = ("validate", "drift", "train", "evaluate", "plan", *LIVE, *BATCH, "claim", "settle", "train_plan")
COMMON_ENV_NAMES = (
    "DATA_BUCKET",
    "ARTIFACT_BUCKET",
    "CAPTURE_BUCKET",
    "REGISTRY_TABLE",
    "ALERTS_TOPIC_ARN",
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "LOG_LEVEL",
    "STACK_NAME",
)


def functions_by_tag(synth: Synth) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for resource in synth.resources("AWS::Lambda::Function").values():
        tags = {tag["Key"]: tag["Value"] for tag in resource["Properties"].get("Tags", [])}
        if "conveyor:function" in tags:
            assert tags["conveyor:function"] not in found, "two functions share a tag"
            found[tags["conveyor:function"]] = resource["Properties"]
    return found


def test_one_tagged_function_per_folder(synth: Synth) -> None:
    assert sorted(functions_by_tag(synth)) == sorted(FUNCTIONS)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_function_runtime_tracing_and_logs(synth: Synth, name: str) -> None:
    props = functions_by_tag(synth)[name]
    assert props["Architectures"] == ["x86_64"]
    assert props["TracingConfig"] == {"Mode": "Active"}
    log_group = props["LoggingConfig"]["LogGroup"]["Ref"]
    assert synth.json["Resources"][log_group]["Properties"]["RetentionInDays"] == 30
    if name in ZIP:
        assert props["Runtime"] == "python3.12"
        assert props["Handler"] == "handler.lambda_handler"
    else:
        assert props["PackageType"] == "Image"
        assert props["ImageConfig"] == {"Command": [f"functions.{name}.handler.lambda_handler"]}


def test_every_function_gets_the_same_common_environment(synth: Synth) -> None:
    environments = {name: props["Environment"]["Variables"] for name, props in functions_by_tag(synth).items()}
    reference = {key: environments["predict"][key] for key in COMMON_ENV_NAMES}
    assert reference["POWERTOOLS_SERVICE_NAME"] == "conveyor"
    assert reference["POWERTOOLS_METRICS_NAMESPACE"] == "Conveyor"
    assert reference["LOG_LEVEL"] == "INFO"
    assert reference["DATA_BUCKET"] == {"Ref": synth.logical_id(synth.stack.data_bucket)}
    assert reference["REGISTRY_TABLE"] == {"Ref": synth.logical_id(synth.stack.table)}
    for name, env in environments.items():
        assert {key: env[key] for key in COMMON_ENV_NAMES} == reference, name


def test_extra_environment_only_where_needed(synth: Synth) -> None:
    extras = {
        name: set(props["Environment"]["Variables"]) - set(COMMON_ENV_NAMES)
        for name, props in functions_by_tag(synth).items()
    }
    assert extras == {
        "dispatch": {"STATE_MACHINE_ARN", "LABELS_FUNCTION_NAME", "BATCH_STATE_MACHINE_ARN"},
        "alarm_action": {"STATE_MACHINE_ARN"},  # a retrain on alarm starts a run
        "monitor": {"STATE_MACHINE_ARN"},
        "labels": set(),
        "predict": {"ROUTING_CACHE_SECONDS", "MAX_BATCH_ROWS", "CAPTURE_DELIVERY", "CONVEYOR_LEAN_AWS"},
        **{
            name: set()
            for name in (
                "validate",
                "drift",
                "train",
                "evaluate",
                "register",
                "deploy",
                *DEPLOYMENT,
                "board_widget",
                *BATCH,
                *BURSTS,
                *COMPUTE,
            )
        },
    }
    functions = functions_by_tag(synth)
    assert functions["dispatch"]["Environment"]["Variables"]["STATE_MACHINE_ARN"] == {
        "Ref": synth.logical_id(synth.stack.state_machine)
    }
    assert functions["dispatch"]["Environment"]["Variables"]["BATCH_STATE_MACHINE_ARN"] == {
        "Ref": synth.logical_id(synth.stack.batch_state_machine)
    }
    assert functions["predict"]["Environment"]["Variables"]["ROUTING_CACHE_SECONDS"] == "5"
    assert functions["predict"]["Environment"]["Variables"]["MAX_BATCH_ROWS"] == "1000"


def test_zip_functions_use_the_core_and_deps_layers_not_the_training_image(synth: Synth) -> None:
    layers = synth.resources("AWS::Lambda::LayerVersion")
    assert len(layers) == 2
    for name in ZIP:
        props = functions_by_tag(synth)[name]
        assert "ImageUri" not in props["Code"] and props.get("PackageType", "Zip") == "Zip", name
        assert "S3Key" in props["Code"]
        assert sorted(layer["Ref"] for layer in props["Layers"]) == sorted(layers), name


def test_image_functions_share_one_image(synth: Synth) -> None:
    functions = functions_by_tag(synth)
    uris = {str(functions[name]["Code"]["ImageUri"]) for name in IMAGE}
    assert len(uris) == 1


def test_sizing(synth: Synth) -> None:
    functions = functions_by_tag(synth)
    assert (functions["train"]["MemorySize"], functions["train"]["Timeout"]) == (3008, 900)
    for name in ("validate", "drift", "evaluate"):
        assert (functions[name]["MemorySize"], functions[name]["Timeout"]) == (2048, 300)
    for name in ZIP:
        assert 512 <= functions[name]["MemorySize"] <= 1024
        if name != "predict":  # below API Gateway's 29 s (tests/infra/test_hardening.py)
            assert 30 <= functions[name]["Timeout"] <= 60


def _statements_of(synth: Synth, name: str) -> list[dict[str, Any]]:
    props = functions_by_tag(synth)[name]
    role = props["Role"]["Fn::GetAtt"][0]
    statements: list[dict[str, Any]] = []
    for policy in synth.resources("AWS::IAM::Policy").values():
        if {"Ref": role} in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def _actions(statements: list[dict[str, Any]]) -> set[str]:
    actions: set[str] = set()
    for statement in statements:
        value = statement["Action"]
        actions |= set(value if isinstance(value, list) else [value])
    return actions


def test_grants_are_least_privilege(synth: Synth) -> None:
    deploy = _actions(_statements_of(synth, "deploy"))
    assert not any(action.startswith("s3:") for action in deploy)
    assert "dynamodb:PutItem" in deploy

    predict = _actions(_statements_of(synth, "predict"))
    assert "s3:GetObject*" in predict and not any(a.startswith("firehose:") for a in predict)  # captures: log lines
    assert "s3:PutObject" not in predict  # captures go through Firehose, which writes the bucket
    assert "dynamodb:PutItem" not in predict and "s3:DeleteObject*" not in predict

    train = _actions(_statements_of(synth, "train"))
    assert "dynamodb:PutItem" not in train and "dynamodb:GetItem" in train

    dispatch = _statements_of(synth, "dispatch")
    assert "states:StartExecution" in _actions(dispatch)
    assert not any(action.startswith(("dynamodb:", "s3:Put", "s3:Delete")) for action in _actions(dispatch))

    for name in FUNCTIONS:
        for action in _actions(_statements_of(synth, name)):
            assert action != "*" and not action.endswith(":*"), (name, action)


def test_only_drift_and_the_monitor_publish_metrics_and_only_to_their_namespace(synth: Synth) -> None:
    for name in FUNCTIONS:
        statements = [s for s in _statements_of(synth, name) if "cloudwatch:PutMetricData" in _actions([s])]
        if name not in {"drift", "monitor"}:
            assert not statements, name
            continue
        (statement,) = statements
        assert statement["Condition"] == {"StringEquals": {"cloudwatch:namespace": "Conveyor"}}


def test_registry_events_are_published_only_by_the_stages_that_change_the_registry(synth: Synth) -> None:
    for name in FUNCTIONS:
        can_publish = "events:PutEvents" in _actions(_statements_of(synth, name))
        # board_widget: a reviewer's approval or rejection on the dashboard (ModelApproved, ModelRejected)
        assert can_publish == (name in {"register", "deploy", "rollback", "drift", "alarm_action", "board_widget"}), (
            name
        )


def test_deployment_functions_reach_only_what_they_need(synth: Synth) -> None:
    def s3_resources(name: str) -> set[str]:
        found = set()
        for statement in _statements_of(synth, name):
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if any(a.startswith("s3:") for a in actions):
                resources = (
                    statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
                )
                found |= {json.dumps(r, sort_keys=True) for r in resources}
        return found

    def bucket_of(bucket: Any) -> str:
        return synth.logical_id(bucket)

    for name in DEPLOYMENT:
        actions = _actions(_statements_of(synth, name))
        assert "dynamodb:PutItem" in actions, name
        assert not any(a.startswith(("s3:Put", "s3:Delete", "states:")) for a in actions), (name, actions)
    # plan reads the version's spec from the artifact bucket; bake reads the capture bucket; no one else reads S3.
    assert all(bucket_of(synth.stack.artifact_bucket) in r for r in s3_resources("plan")) and s3_resources("plan")
    assert all(bucket_of(synth.stack.capture_bucket) in r for r in s3_resources("bake")) and s3_resources("bake")
    for name in ("approval", "trial", "rollback"):
        assert not s3_resources(name), name
    assert "sns:Publish" in _actions(_statements_of(synth, "approval"))
    for name in ("plan", "trial", "bake", "rollback"):
        assert "sns:Publish" not in _actions(_statements_of(synth, name)), name


def test_who_reads_the_captured_requests_and_that_nobody_writes_them(synth: Synth) -> None:
    """evaluate and bake read them; the monitor and the label ingest read them and write only their
    reports and joined labels beside them (under monitor/, labels-joined/, labels-reports/); the batch
    scorer writes its rows' capture records (put only, under {model}/capture/) and reads none."""
    capture = synth.logical_id(synth.stack.capture_bucket)
    readers, writers = set(), set()
    for name in FUNCTIONS:
        for statement in _statements_of(synth, name):
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if capture not in json.dumps(statement["Resource"]) or not any(a.startswith("s3:") for a in actions):
                continue
            if name == "batch_score":
                writers.add(name)
                assert all(a.startswith(("s3:Put", "s3:Abort")) for a in actions), actions
                resources = (
                    statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
                )
                mine = [json.dumps(r) for r in resources if capture in json.dumps(r)]
                assert mine and all(r.endswith('"/*/capture/*"]]}') for r in mine), mine
                continue
            readers.add(name)
            if any(a.startswith(("s3:Put", "s3:Delete")) for a in actions):
                written = json.dumps(statement["Resource"])
                assert name in {"monitor", "labels"} and "/capture/" not in written, (name, actions)
                assert all(p in {"monitor", "labels-joined", "labels-reports"} for p in _prefixes(written)), written
    assert readers == {"evaluate", "bake", "monitor", "labels"} and writers == {"batch_score"}


def _prefixes(resource: str) -> set[str]:
    import re

    return set(re.findall(r"/\*/([a-z-]+)/\*", resource))
