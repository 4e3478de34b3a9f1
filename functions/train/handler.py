"""Lambda entry point of the pipeline's train stage: parse the event, call one domain function."""

from aws_lambda_powertools import Logger

from conveyor.stages.entry import stage_entry
from conveyor.stages.train import train_candidate

logger = Logger(service="conveyor")
lambda_handler = stage_entry(train_candidate, logger)
