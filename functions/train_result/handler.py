"""Lambda entry point of "Read training result" (a training container's result into the state): parse
the event, call one domain function."""

from aws_lambda_powertools import Logger

from conveyor.stages.entry import stage_entry
from conveyor.stages.train_result import read_training_result

logger = Logger(service="conveyor")
lambda_handler = stage_entry(read_training_result, logger)
