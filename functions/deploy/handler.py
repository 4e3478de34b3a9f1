"""Lambda entry point of the promotion (all traffic to the version): parse the event, call one domain function."""

from aws_lambda_powertools import Logger

from conveyor.stages.deployment import promote
from conveyor.stages.entry import stage_entry

logger = Logger(service="conveyor")
lambda_handler = stage_entry(promote, logger)
