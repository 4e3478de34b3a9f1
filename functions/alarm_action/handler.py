"""Lambda entry point of the alarm actions: alarm-queue messages (CloudWatch alarm state changes, routed
by an EventBridge rule) -> the model's ``monitoring.on_alarm`` action (conveyor.monitoring.actions)."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from conveyor.monitoring.actions import AlarmContext, on_alarm_event

logger = Logger(service="conveyor")
processor = BatchProcessor(event_type=EventType.SQS)
_context: AlarmContext | None = None


def _alarm_context() -> AlarmContext:
    global _context  # noqa: PLW0603 - built once per container, on first use, not at import
    if _context is None:
        from conveyor.adapters.aws import (
            CloudWatchAlarms,
            DynamoTable,
            EventBridgePublisher,
            SnsNotifier,
            StepFunctionsStarter,
        )
        from conveyor.config import Settings

        settings = Settings.from_env()
        _context = AlarmContext(
            table=DynamoTable(settings.registry_table),
            notifier=SnsNotifier(settings.alerts_topic_arn),
            events=EventBridgePublisher(),
            starter=StepFunctionsStarter(settings.state_machine_arn),
            alarms=CloudWatchAlarms(),
            stack=settings.stack_name,
            topic_arn=settings.alerts_topic_arn,
        )
    return _context


def record_handler(record: SQSRecord) -> dict[str, Any]:
    outcome = on_alarm_event(json.loads(record.body), _alarm_context())
    logger.info("alarm state change handled", extra=outcome)
    return outcome


@logger.inject_lambda_context(log_event=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(response)
