"""Lambda entry point of the dispatcher: ingest-queue messages -> one pipeline execution per drop, label files to the label ingest."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from conveyor.dispatch import dispatch

logger = Logger(service="conveyor")
processor = BatchProcessor(event_type=EventType.SQS)
_ports: tuple[Any, Any, Any, Any] | None = None


def _adapters() -> tuple[Any, Any, Any, Any]:
    global _ports  # noqa: PLW0603 - built once per container, on first use, not at import
    if _ports is None:
        from conveyor.adapters.aws import LambdaInvoker, S3ObjectStore, StepFunctionsStarter
        from conveyor.config import Settings

        settings = Settings.from_env()
        labels = LambdaInvoker(settings.labels_function) if settings.labels_function else None
        batch = StepFunctionsStarter(settings.batch_state_machine_arn) if settings.batch_state_machine_arn else None
        _ports = (StepFunctionsStarter(settings.state_machine_arn), S3ObjectStore(), labels, batch)
    return _ports


def record_handler(record: SQSRecord) -> list[dict[str, Any]]:
    starter, store, labels, batch_starter = _adapters()
    outcomes = dispatch(record.body, starter=starter, store=store, labels=labels, batch_starter=batch_starter)
    for outcome in outcomes:
        logger.info("drop dispatched", extra=outcome)
    return outcomes


@logger.inject_lambda_context(log_event=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(response)
