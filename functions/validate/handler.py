"""Lambda entry point of the pipeline's validate stage: parse the event, call one domain function."""

from aws_lambda_powertools import Logger

from conveyor.stages.entry import stage_entry
from conveyor.stages.validate import validate_drop

logger = Logger(service="conveyor")
lambda_handler = stage_entry(validate_drop, logger)
