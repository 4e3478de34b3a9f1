"""What a restart does with the executions that were running when the cloud stopped.

Restored, they are interrupted (``executions.restore``). Then:

- a deployment that was waiting (for a reviewer, or baking a phase) is **resumed from where it was**:
  a new execution starts at the state the old one reached, with the same deployment plan. The routing
  record is untouched, so what serves stays exactly as it was; an approval request is made again (with
  a new token and the plan's full timeout) and a bake phase restarts its wait (its window still starts
  when the phase did, so the evidence gathered before the stop counts);
- any other interrupted execution waits for ``conveyor retry``;
- a model whose traffic is still split (a challenger or shadow) with no deployment being resumed for it
  is rolled back to its champion: traffic never stays split with nobody baking.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from conveyor.localcloud.persist.executions import backend
from conveyor.resume import DEPLOYMENT_WAITS, CannotResume, plan_resumption, reached

log = logging.getLogger(__name__)


@dataclass
class RestartReport:
    resumed: dict[str, str] = field(default_factory=dict)  # interrupted execution -> its resumption
    rolled_back: list[str] = field(default_factory=list)  # models whose trial nobody was baking


def resume_deployments(region: str, interrupted: list[str], table_name: str | None, endpoint: str) -> RestartReport:
    """Resume interrupted deployments, then end any trial left without one (see the module docstring)."""
    report = RestartReport()
    sfn = backend(region)
    baking: set[str] = set()
    for machine in list(sfn.state_machines):
        existing = {e.name for e in machine.executions}
        for execution in [e for e in machine.executions if e.name in interrupted]:
            events = execution.exec_worker.env.get_event_history()
            state, state_input = reached(events)
            if state not in DEPLOYMENT_WAITS:
                continue
            try:
                plan = plan_resumption(execution.name, execution.execution_input, events, existing)
            except CannotResume:
                log.exception("cannot resume %s", execution.name)
                continue
            sfn.start_execution(machine.arn, name=plan.name, execution_input=json.dumps(plan.input))
            existing.add(plan.name)
            report.resumed[execution.name] = plan.name
            baking.add(str((state_input.get("deployment") or {}).get("model")))
    if table_name:
        report.rolled_back = _end_unattended_trials(table_name, endpoint, region, baking)
    return report


def _end_unattended_trials(table_name: str, endpoint: str, region: str, baking: set[str]) -> list[str]:
    import boto3

    from conveyor.adapters.aws import DynamoTable
    from conveyor.deployment import Deployments
    from conveyor.registry import Registry

    resource = boto3.resource("dynamodb", endpoint_url=endpoint, region_name=region)
    table = DynamoTable(table_name, resource=resource)
    registry = Registry(table)
    deployments = Deployments(table)
    ended = []
    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name=region)
    for model in _models(client, table_name):
        routing = registry.routing(model)
        if model in baking or routing is None or not (routing.challenger or routing.shadow):
            continue
        reason = "the local cloud restarted and no deployment was baking this trial"
        registry.end_trial(model, reason)
        for record in deployments.in_progress(model):
            deployments.update(model, int(record["version"]), "interrupted", reason=reason)
        ended.append(model)
    return ended


def _models(client: Any, table_name: str) -> list[str]:
    """Models with a routing record (a paginated scan of the registry table's keys)."""
    from conveyor.registry import model_pk

    found = []
    prefix = model_pk("")
    arguments: dict[str, Any] = {"TableName": table_name, "ProjectionExpression": "pk, sk"}
    while True:
        page = client.scan(**arguments)
        for item in page.get("Items", []):
            if item["sk"]["S"] == "ROUTING" and item["pk"]["S"].startswith(prefix):
                found.append(item["pk"]["S"][len(prefix) :])
        if "LastEvaluatedKey" not in page:
            return found
        arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]
