"""Lambda entry point of the rollback of a trial (champion takes all traffic again): parse the event, call one domain function."""

from aws_lambda_powertools import Logger

from conveyor.stages.deployment import roll_back
from conveyor.stages.entry import stage_entry

logger = Logger(service="conveyor")
lambda_handler = stage_entry(roll_back, logger)
