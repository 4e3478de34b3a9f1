"""Monitoring: the system alarms, alert subscriptions, and the path from any Conveyor alarm's state
change to the alarm-action function.

- System alarms (static, named ``{stack}-System-...``): the pipeline's failed, timed-out and throttled
  executions; each function's errors and throttles; predict's p99 duration and concurrency; a message
  in a dead-letter queue; the API's 5XX and p99 latency; capture delivery failures and throttling.
  Each tells the alerts topic.
- Per-model alarms (``{stack}-{model}-{signal}``) are not here: models come and go after deploy time,
  so the pipeline creates them when a version is promoted (``conveyor.monitoring.alarms``). The
  functions that do so may put, tag and delete alarms named ``{stack}-*`` only.
- Alarm state changes of ``{stack}-*`` alarms: EventBridge rule -> SQS alarm queue (with a dead-letter
  queue) -> the alarm-action function, which applies the model's ``monitoring.on_alarm``.
- Alert subscriptions: ``alert_webhook_url`` from CDK context (an HTTPS endpoint, e.g. a chat webhook,
  subscribed to the topic); the stage's ``alert_emails`` are subscribed by infra/stage_policy.py.
"""

from __future__ import annotations

from collections.abc import Mapping

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra import constants as c
from infra import nag
from infra.constructs.registry import grant_routing_write
from infra.functions import FunctionFactory


def stack_alarms_arn(scope: Construct) -> str:
    """Every alarm of this stack: ``{stack}-*`` (system and per-model alarms alike)."""
    return cdk.Stack.of(scope).format_arn(
        service="cloudwatch",
        resource="alarm",
        resource_name=f"{cdk.Aws.STACK_NAME}-*",
        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
    )


def grant_alarm_sync(fn: lambda_.IFunction, scope: Construct) -> None:
    """Create, update, tag and delete the stack's alarms: what ``sync_model_alarms`` calls."""
    fn.add_to_role_policy(
        iam.PolicyStatement(
            actions=["cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms", "cloudwatch:TagResource"],
            resources=[stack_alarms_arn(scope)],
        )
    )


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        factory: FunctionFactory,
        topic: sns.ITopic,
        table: dynamodb.ITable,
        state_machine: sfn.StateMachine,
        functions: Mapping[str, lambda_.IFunction],
        dead_letter_queues: Mapping[str, sqs.IQueue],
        api: apigw.RestApi,
        capture_stream: firehose.DeliveryStream,
        alarm_syncers: list[lambda_.IFunction],
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = topic
        self.alarms: list[cloudwatch.Alarm] = []
        self._subscriptions()
        self._pipeline_alarms(state_machine)
        self.watch_functions(functions)
        self._predict_alarms(functions[c.Fn.PREDICT])
        for name, queue in dead_letter_queues.items():
            self._alarm(
                f"{name}DeadLetters",
                queue.metric_approximate_number_of_messages_visible(statistic="Maximum"),
                threshold=0,
                description=f"the {name} dead-letter queue holds messages that could not be processed",
            )
        self._serving_alarms(api, capture_stream)

        self.dead_letter_queue = sqs.Queue(
            self,
            "AlarmDeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=c.QUEUE_RETENTION,
        )
        self.queue = sqs.Queue(
            self,
            "AlarmQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=c.ALARM_VISIBILITY_TIMEOUT,
            retention_period=c.QUEUE_RETENTION,
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=c.ALARM_MAX_RECEIVE_COUNT
            ),
        )
        self._alarm(
            "AlarmDeadLetters",
            self.dead_letter_queue.metric_approximate_number_of_messages_visible(statistic="Maximum"),
            threshold=0,
            description="alarm state changes the alarm-action function could not handle",
        )
        # Through SQS, as the ingest does: the function consumes in batches with retries and a
        # dead-letter queue (and, locally, moto delivers rule targets reliably only to SQS).
        self.rule = events.Rule(
            self,
            "AlarmStateRule",
            description="A Conveyor alarm changed state: the alarm-action function applies on_alarm",
            event_pattern=events.EventPattern(
                source=["aws.cloudwatch"],
                detail_type=[c.ALARM_STATE_CHANGE],
                detail={"alarmName": events.Match.prefix(f"{cdk.Aws.STACK_NAME}-")},
            ),
            targets=[targets.SqsQueue(self.queue)],
        )
        self.function = self._action_function(factory, table, state_machine)
        self.watch_functions({c.Fn.ALARM_ACTION: self.function})
        for fn in [*alarm_syncers, self.function]:
            grant_alarm_sync(fn, self)
            nag.alarm_sync(fn)

    # alarms -------------------------------------------------------------------------------
    def _alarm(
        self,
        name: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        description: str,
        comparison: cloudwatch.ComparisonOperator = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            f"{name}Alarm",
            alarm_name=f"{cdk.Aws.STACK_NAME}-System-{name}",
            alarm_description=f"Conveyor: {description}",
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=1,
            datapoints_to_alarm=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(cw_actions.SnsAction(self.topic))
        self.alarms.append(alarm)
        return alarm

    def _pipeline_alarms(self, state_machine: sfn.StateMachine) -> None:
        period = c.SYSTEM_ALARM_PERIOD
        for name, metric, what in (
            ("PipelineFailed", state_machine.metric_failed(period=period), "failed"),
            ("PipelineTimedOut", state_machine.metric_timed_out(period=period), "timed out"),
            ("PipelineThrottled", state_machine.metric_throttled(period=period), "throttled"),
        ):
            self._alarm(name, metric, threshold=0, description=f"pipeline executions {what}")

    def watch_functions(self, functions: Mapping[str, lambda_.IFunction]) -> None:
        """Errors and throttles alarms for these functions (also for functions built after this construct)."""
        period = c.SYSTEM_ALARM_PERIOD
        for name, fn in sorted(functions.items()):
            label = "".join(part.capitalize() for part in name.split("_"))
            self._alarm(
                f"{label}Errors", fn.metric_errors(period=period), threshold=0, description=f"{name} function errors"
            )
            self._alarm(
                f"{label}Throttles",
                fn.metric_throttles(period=period),
                threshold=0,
                description=f"{name} function throttled",
            )

    def _predict_alarms(self, predict: lambda_.IFunction) -> None:
        period = c.SYSTEM_ALARM_PERIOD
        self._alarm(
            "PredictDurationP99",
            predict.metric_duration(statistic="p99", period=period),
            threshold=c.PREDICT_DURATION_P99_MS,
            description=f"predict p99 duration above {c.PREDICT_DURATION_P99_MS} ms",
        )
        self._alarm(
            "PredictConcurrency",
            predict.metric("ConcurrentExecutions", statistic="Maximum", period=period),
            threshold=c.PREDICT_MAX_CONCURRENCY,
            description=f"predict concurrency above {c.PREDICT_MAX_CONCURRENCY}",
        )

    def _serving_alarms(self, api: apigw.RestApi, capture_stream: firehose.DeliveryStream) -> None:
        period = c.SYSTEM_ALARM_PERIOD
        self._alarm(
            "Api5XX", api.metric_server_error(period=period, statistic="Sum"), threshold=0, description="API 5XX errors"
        )
        self._alarm(
            "ApiLatencyP99",
            api.metric_latency(period=period, statistic="p99"),
            threshold=c.API_LATENCY_P99_MS,
            description=f"API p99 latency above {c.API_LATENCY_P99_MS} ms",
        )
        self._alarm(
            "CaptureDeliveryFailed",
            capture_stream.metric("DeliveryToS3.Success", statistic="Minimum", period=period),
            threshold=1,
            comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            description="capture records failed delivery to S3",
        )
        self._alarm(
            "CaptureThrottled",
            capture_stream.metric("ThrottledRecords", statistic="Sum", period=period),
            threshold=0,
            description="capture records throttled by Firehose",
        )

    # the action function ------------------------------------------------------------------
    def _action_function(
        self, factory: FunctionFactory, table: dynamodb.ITable, state_machine: sfn.StateMachine
    ) -> lambda_.Function:
        fn = factory.zip_function(
            self, c.Fn.ALARM_ACTION, extra_environment={"STATE_MACHINE_ARN": state_machine.state_machine_arn}
        )
        fn.add_event_source(
            event_sources.SqsEventSource(
                self.queue, batch_size=c.ALARM_ACTION_BATCH_SIZE, report_batch_item_failures=True
            )
        )
        # Changes what serves (a rollback or kill on alarm): the routing record, statuses, episodes, settings.
        grant_routing_write(table, fn)
        self.topic.grant_publish(fn)
        nag.topic_publisher(fn)
        events.EventBus.from_event_bus_name(self, "DefaultBus", "default").grant_put_events_to(fn)
        state_machine.grant_start_execution(fn)  # a retrain run
        fn.add_to_role_policy(
            iam.PolicyStatement(actions=["cloudwatch:DescribeAlarms"], resources=[stack_alarms_arn(self)])
        )
        return fn

    def _subscriptions(self) -> None:
        """A chat webhook (HTTPS) from context; the stage's alert e-mails are subscribed by
        infra/stage_policy.py (``-c alert_emails=...``)."""
        webhook = self.node.try_get_context(c.CONTEXT_ALERT_WEBHOOK)
        if webhook:
            if not str(webhook).startswith("https://"):
                raise ValueError(f"{c.CONTEXT_ALERT_WEBHOOK} must be an https:// URL, not {webhook!r}")
            self.topic.add_subscription(
                subscriptions.UrlSubscription(str(webhook), protocol=sns.SubscriptionProtocol.HTTPS)
            )
