"""Lambda entry point of the pipeline's register stage: parse the event, call one domain function."""

from aws_lambda_powertools import Logger

from conveyor.stages.entry import stage_entry
from conveyor.stages.release import register

logger = Logger(service="conveyor")
lambda_handler = stage_entry(register, logger)
