"""Lambda entry point of the pipeline's evaluate stage: parse the event, call one domain function."""

from aws_lambda_powertools import Logger

from conveyor.stages.entry import stage_entry
from conveyor.stages.evaluate import evaluate

logger = Logger(service="conveyor")
lambda_handler = stage_entry(evaluate, logger)
