"""The hardening of issue 14, each point an assertion on the synthesized template."""

from __future__ import annotations

import json
from typing import Any

from infra.asl import find_state_machines, render_definition
from tests.infra.conftest import Synth
from tests.infra.test_functions import FUNCTIONS, _actions, _statements_of, functions_by_tag

ROUTING_WRITERS = {"deploy", "trial", "rollback", "alarm_action"}  # alarm actions roll back or kill


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _role_statements(synth: Synth, role: Any) -> list[dict[str, Any]]:
    logical_id = synth.logical_id(role)
    statements: list[dict[str, Any]] = []
    for policy in synth.resources("AWS::IAM::Policy").values():
        if {"Ref": logical_id} in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def _all_role_statements(synth: Synth) -> dict[str, list[dict[str, Any]]]:
    """Every function's and person's role, by name."""
    roles = {name: _statements_of(synth, name) for name in FUNCTIONS}
    roles["approver"] = _role_statements(synth, synth.stack.approver_role)
    roles["operator"] = _role_statements(synth, synth.stack.operator_role)
    return roles


def test_writers_get_put_and_read_and_only_validate_deletes_and_only_its_drops(synth: Synth) -> None:
    data = synth.logical_id(synth.stack.data_bucket)
    # validate moves drops out of incoming/; labels moves label files out of their drop area.
    deleters = {"validate": "/*/incoming/*", "labels": "/*/labels/*"}
    for name in FUNCTIONS:
        for statement in _statements_of(synth, name):
            deletes = [a for a in _listed(statement["Action"]) if a.startswith("s3:Delete")]
            if not deletes:
                continue
            assert name in deleters, (name, statement)
            resources = json.dumps(statement["Resource"])
            assert data in resources and deleters[name] in resources, statement
    for name in ("validate", "train", "evaluate", "register", "drift"):
        assert "s3:PutObject" in _actions(_statements_of(synth, name)), name


def test_only_the_operator_may_delete_an_object_version_of_the_artifact_bucket(synth: Synth) -> None:
    artifact = synth.logical_id(synth.stack.artifact_bucket)
    operator = synth.logical_id(synth.stack.operator_role)
    (policy,) = [
        p for p in synth.resources("AWS::S3::BucketPolicy").values() if p["Properties"]["Bucket"] == {"Ref": artifact}
    ]
    denials = [
        s
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Deny" and "s3:DeleteObjectVersion" in _listed(s["Action"])
    ]
    assert len(denials) == 1
    (deny,) = denials
    assert deny["Principal"] == {"AWS": "*"}
    assert deny["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": {"Fn::GetAtt": [operator, "Arn"]}}}
    assert "s3:DeleteObjectVersion" in _actions(_role_statements(synth, synth.stack.operator_role))


def test_predict_reads_model_artifacts_and_contracts_never_staging(synth: Synth) -> None:
    resources = set()
    for statement in _statements_of(synth, "predict"):
        if any(a.startswith("s3:") for a in _listed(statement["Action"])):
            resources |= {json.dumps(r) for r in _listed(statement["Resource"])}
    objects = {r for r in resources if "/" in r.split("Arn")[-1]}
    assert objects and all("/*/models/sha256-*" in r or "/*/contracts/sha256-*" in r for r in objects), objects
    assert not any("staging" in r for r in resources)


def test_only_routing_writers_and_the_operator_may_write_the_routing_record(synth: Synth) -> None:
    writers = set()
    for name, statements in _all_role_statements(synth).items():
        for statement in statements:
            writes = [a for a in _listed(statement["Action"]) if a in {"dynamodb:PutItem", "dynamodb:UpdateItem"}]
            if not writes:
                continue
            leading = statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
            assert "MODEL#*" in leading, (name, leading)
            if "ROUTING#*" in leading:
                writers.add(name)
            assert set(leading) <= {"MODEL#*", "ROUTING#*"}, (name, leading)
    assert writers == ROUTING_WRITERS | {"operator"}


def test_the_approver_has_exactly_what_approve_and_reject_need(synth: Synth) -> None:
    statements = _role_statements(synth, synth.stack.approver_role)
    actions = _actions(statements)
    assert {"states:SendTaskSuccess", "states:SendTaskFailure", "events:PutEvents", "dynamodb:PutItem"} <= actions
    assert {"cloudformation:DescribeStacks", "dynamodb:GetItem", "states:DescribeExecution"} <= actions
    assert not any(a.startswith(("s3:", "execute-api:", "sns:", "lambda:")) for a in actions), actions
    assert "states:StartExecution" not in actions
    writes = [s for s in statements if "dynamodb:PutItem" in _listed(s["Action"])]
    assert [s["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] for s in writes] == [["MODEL#*"]]


def test_the_operator_changes_routing_and_deletes_but_answers_no_approval(synth: Synth) -> None:
    actions = _actions(_role_statements(synth, synth.stack.operator_role))
    assert {"dynamodb:PutItem", "s3:DeleteObjectVersion", "s3:ListBucketVersions", "execute-api:Invoke"} <= actions
    assert "states:SendTaskSuccess" not in actions and "events:PutEvents" not in actions


def test_the_people_roles_are_assumed_from_the_account(synth: Synth) -> None:
    for role in (synth.stack.approver_role, synth.stack.operator_role):
        props = synth.json["Resources"][synth.logical_id(role)]["Properties"]
        (statement,) = props["AssumeRolePolicyDocument"]["Statement"]
        assert statement["Action"] == "sts:AssumeRole"
        assert "root" in json.dumps(statement["Principal"])
    assert {"ApproverRoleArn", "OperatorRoleArn"} <= set(synth.json["Outputs"])


def test_functions_write_their_own_log_group_instead_of_the_basic_execution_role(synth: Synth) -> None:
    for logical_id, role in synth.resources("AWS::IAM::Role").items():
        managed = json.dumps(role["Properties"].get("ManagedPolicyArns", []))
        if "AWSLambdaBasicExecutionRole" in managed:
            assert logical_id.startswith("BucketNotificationsHandler"), logical_id  # aws-cdk's own
    for name, props in functions_by_tag(synth).items():
        log_group = props["LoggingConfig"]["LogGroup"]["Ref"]
        logs = [s for s in _statements_of(synth, name) if any(a.startswith("logs:") for a in _listed(s["Action"]))]
        assert len(logs) == 1, name
        assert set(_listed(logs[0]["Action"])) == {"logs:CreateLogStream", "logs:PutLogEvents"}
        assert logs[0]["Resource"] == {"Fn::GetAtt": [log_group, "Arn"]}, name


def _rules(synth: Synth, bucket: Any) -> list[dict[str, Any]]:
    props = synth.json["Resources"][synth.logical_id(bucket)]["Properties"]
    rules: list[dict[str, Any]] = props.get("LifecycleConfiguration", {}).get("Rules", [])
    return rules


def test_captures_expire_after_the_stage_retention(stage_synth: tuple[str, Synth]) -> None:
    from infra.stages import STAGES

    stage, synth = stage_synth
    (rule,) = _rules(synth, synth.stack.capture_bucket)
    assert rule["Status"] == "Enabled" and "Prefix" not in rule
    assert rule["ExpirationInDays"] == STAGES[stage].capture_retention_days


def test_staging_leftovers_expire_after_30_days_and_data_never(synth: Synth) -> None:
    (rule,) = _rules(synth, synth.stack.artifact_bucket)
    assert (rule["Prefix"], rule["ExpirationInDays"], rule["Status"]) == ("staging/", 30, "Enabled")
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 1}
    for rule in _rules(synth, synth.stack.data_bucket):
        assert "ExpirationInDays" not in rule and "NoncurrentVersionExpiration" not in rule, rule


def test_the_state_machine_log_drops_execution_data(synth: Synth) -> None:
    for machine in synth.resources("AWS::StepFunctions::StateMachine").values():
        logging = machine["Properties"]["LoggingConfiguration"]
        assert logging["IncludeExecutionData"] is False


def test_predict_answers_before_api_gateway_gives_up_and_prod_reserves_concurrency(
    stage_synth: tuple[str, Synth],
) -> None:
    from infra.stages import STAGES

    stage, synth = stage_synth
    predict = functions_by_tag(synth)["predict"]
    assert predict["Timeout"] < 29
    assert predict["MemorySize"] == STAGES[stage].predict_memory_mb
    assert predict.get("ReservedConcurrentExecutions") == STAGES[stage].predict_reserved_concurrency
    if stage == "prod":
        assert predict["ReservedConcurrentExecutions"] > 0


def _resolve(reference: dict[str, Any]) -> str:
    return "resolved"


def _states(states: dict[str, Any]) -> list[dict[str, Any]]:
    """Every state, those of a Map's item processor included."""
    found = []
    for state in states.values():
        found.append(state)
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            found.extend(_states(processor["States"]))
    return found


def test_every_lambda_task_retries_throttling_with_backoff(synth: Synth) -> None:
    tasks = [
        s
        for machine in find_state_machines(synth.json)
        for s in _states(render_definition(synth.json, machine, _resolve)["States"])
        # a LambdaInvoke with payload_response_only names the function itself (resolved here)
        if s["Type"] == "Task" and (":lambda:invoke" in s["Resource"] or s["Resource"] == "resolved")
    ]
    assert len(tasks) > 10  # the pipeline's stages and the batch state machine's two
    for state in tasks:
        (retry,) = [r for r in state["Retry"] if r["ErrorEquals"] == ["Lambda.TooManyRequestsException"]]
        assert retry["BackoffRate"] == 2 and retry["IntervalSeconds"] == 2 and retry["MaxAttempts"] == 5


def test_the_dev_operator_role_trusts_the_deploy_workflows_smoke_step(tmp_path_factory: Any) -> None:
    from tests.infra.conftest import synthesize

    dev = synthesize(tmp_path_factory, {"github_repo": "acme/conveyor"})
    props = dev.json["Resources"][dev.logical_id(dev.stack.operator_role)]["Properties"]
    assert props["RoleName"]["Fn::Join"][1][-1] == "-operator"
    web = [s for s in props["AssumeRolePolicyDocument"]["Statement"] if s["Action"] == "sts:AssumeRoleWithWebIdentity"]
    (statement,) = web
    assert statement["Condition"]["StringEquals"] == {
        "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
        "token.actions.githubusercontent.com:sub": "repo:acme/conveyor:environment:dev",
    }
    assert "oidc-provider/token.actions.githubusercontent.com" in json.dumps(statement["Principal"])


def test_without_the_repository_only_the_account_may_assume_the_operator_role(stage_synth: tuple[str, Synth]) -> None:
    stage, synth = stage_synth
    props = synth.json["Resources"][synth.logical_id(synth.stack.operator_role)]["Properties"]
    assert [s["Action"] for s in props["AssumeRolePolicyDocument"]["Statement"]] == ["sts:AssumeRole"], stage
