"""Lambda entry point of the pipeline's drift stage: parse the event, call one domain function."""

from aws_lambda_powertools import Logger

from conveyor.stages.drift import check_drift
from conveyor.stages.entry import stage_entry

logger = Logger(service="conveyor")
lambda_handler = stage_entry(check_drift, logger)
