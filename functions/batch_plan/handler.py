"""Lambda entry point of the batch state machine's "Plan chunks": parse the event, call one domain function."""

from aws_lambda_powertools import Logger

from conveyor.stages.batch import plan_batch
from conveyor.stages.entry import stage_entry

logger = Logger(service="conveyor")
lambda_handler = stage_entry(plan_batch, logger)
