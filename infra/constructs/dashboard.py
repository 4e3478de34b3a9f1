"""The big board in the cloud: one CloudWatch dashboard per stack.

Graphs are SEARCH expressions over namespace ``Conveyor`` by ``model`` and ``version`` (one per panel of
``conveyor.board.panels``, the local board's list), so a model that first serves after the deploy is
on the dashboard without a redeploy. Beside them: the alarms' states, the pipeline's executions,
failures and durations, the ingest dead-letter queue, and a custom widget (function ``board_widget``)
that shows the registry's view and answers approvals with approve and reject buttons.
"""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from conveyor.board.panels import PANELS, Panel, search_expression
from conveyor.registry import MODEL_PARTITION
from infra import constants as c
from infra.functions import FunctionFactory

PERIOD = Duration.hours(1)
WIDGET_WIDTH, WIDGET_HEIGHT = 8, 6
# What the custom widget does in the registry table: read versions, routing and deployments (Query,
# GetItem; Scan lists the models), and write a version's status and its deployment record (PutItem,
# MODEL#* partitions only: never the routing record, see infra/constructs/registry.py).
WIDGET_TABLE_ACTIONS = ("dynamodb:GetItem", "dynamodb:Query", "dynamodb:Scan")
WIDGET_WRITE_ACTIONS = ("dynamodb:PutItem",)
WIDGET_CALLBACK_ACTIONS = ("states:SendTaskSuccess", "states:SendTaskFailure")


def panel_widget(panel: Panel) -> cw.GraphWidget:
    """A graph of one panel over every model (and version)."""
    label = "${PROP('Dim.model')} v${PROP('Dim.version')}" if panel.by_version else "${PROP('Dim.model')}"
    expression = cw.MathExpression(
        expression=search_expression(panel, int(PERIOD.to_seconds())), label=label, period=PERIOD
    )
    unit = f" ({panel.unit})" if panel.unit else ""
    return cw.GraphWidget(
        title=f"{panel.title}{unit}",
        left=[expression],
        width=WIDGET_WIDTH,
        height=WIDGET_HEIGHT,
        legend_position=cw.LegendPosition.RIGHT,
    )


class Dashboard(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        factory: FunctionFactory,
        table: dynamodb.ITable,
        state_machine: sfn.StateMachine,
        dead_letter_queue: sqs.IQueue,
        alarms: Sequence[cw.IAlarm] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.widget_function = factory.zip_function(self, c.Fn.BOARD_WIDGET)
        self._grant_widget(self.widget_function, table, state_machine)
        self.dashboard = cw.Dashboard(
            self, "Dashboard", dashboard_name=f"{stack.stack_name}-board", default_interval=Duration.days(7)
        )
        self.dashboard.add_widgets(
            cw.TextWidget(
                markdown=f"# Conveyor board: {stack.stack_name}\nEvery model and version of namespace "
                f"`{c.METRICS_NAMESPACE}` (SEARCH: new models appear without a redeploy).",
                width=24,
                height=2,
            ),
            cw.CustomWidget(
                function_arn=self.widget_function.function_arn,
                title="Registry: what serves, traffic, approvals waiting",
                width=24,
                height=6,
                update_on_refresh=True,
            ),
        )
        self.dashboard.add_widgets(*(panel_widget(panel) for panel in PANELS))
        if alarms:
            self.dashboard.add_widgets(cw.AlarmStatusWidget(alarms=list(alarms), title="Alarms", width=24, height=4))
        self.dashboard.add_widgets(*self._pipeline_widgets(state_machine, dead_letter_queue))

    def _grant_widget(self, fn: lambda_.Function, table: dynamodb.ITable, state_machine: sfn.StateMachine) -> None:
        """Least privilege: the registry table's items, the pipeline's task-token callbacks, registry events."""
        fn.add_to_role_policy(iam.PolicyStatement(actions=list(WIDGET_TABLE_ACTIONS), resources=[table.table_arn]))
        fn.add_to_role_policy(
            iam.PolicyStatement(
                actions=list(WIDGET_WRITE_ACTIONS),
                resources=[table.table_arn],
                conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{MODEL_PARTITION}*"]}},
            )
        )
        fn.add_to_role_policy(
            iam.PolicyStatement(actions=list(WIDGET_CALLBACK_ACTIONS), resources=[state_machine.state_machine_arn])
        )
        default_bus = events.EventBus.from_event_bus_name(self, "DefaultBus", "default")
        default_bus.grant_put_events_to(fn)

    @staticmethod
    def _pipeline_widgets(state_machine: sfn.StateMachine, dead_letter_queue: sqs.IQueue) -> list[cw.IWidget]:
        hourly = {"period": PERIOD, "statistic": "Sum"}
        return [
            cw.GraphWidget(
                title="Pipeline executions",
                left=[
                    state_machine.metric_started(**hourly, label="started"),
                    state_machine.metric_succeeded(**hourly, label="succeeded"),
                    state_machine.metric_failed(**hourly, label="failed"),
                    state_machine.metric_timed_out(**hourly, label="timed out"),
                    state_machine.metric_aborted(**hourly, label="aborted"),
                ],
                width=WIDGET_WIDTH,
                height=WIDGET_HEIGHT,
            ),
            cw.GraphWidget(
                title="Pipeline duration (ms)",
                left=[
                    state_machine.metric_time(period=PERIOD, statistic="p50", label="p50"),
                    state_machine.metric_time(period=PERIOD, statistic="Maximum", label="max"),
                ],
                width=WIDGET_WIDTH,
                height=WIDGET_HEIGHT,
            ),
            cw.GraphWidget(
                title="Ingest dead-letter queue",
                left=[
                    dead_letter_queue.metric_approximate_number_of_messages_visible(
                        period=Duration.minutes(5), statistic="Maximum", label="messages"
                    )
                ],
                width=WIDGET_WIDTH,
                height=WIDGET_HEIGHT,
            ),
        ]
