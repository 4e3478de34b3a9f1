"""Lambda entry point of the bake check (capture records of the phase's window): parse the event, call one domain function."""

from aws_lambda_powertools import Logger

from conveyor.stages.deployment import check_bake
from conveyor.stages.entry import stage_entry

logger = Logger(service="conveyor")
lambda_handler = stage_entry(check_bake, logger)
