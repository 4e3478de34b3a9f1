"""Lambda entry point of the deployment plan (the version's spec, the champion): parse the event, call one domain function."""

from aws_lambda_powertools import Logger

from conveyor.stages.deployment import plan
from conveyor.stages.entry import stage_entry

logger = Logger(service="conveyor")
lambda_handler = stage_entry(plan, logger)
