"""Lambda entry point of a deployment phase (moves traffic to the version as shadow or challenger): parse the event, call one domain function."""

from aws_lambda_powertools import Logger

from conveyor.stages.deployment import start_phase
from conveyor.stages.entry import stage_entry

logger = Logger(service="conveyor")
lambda_handler = stage_entry(start_phase, logger)
