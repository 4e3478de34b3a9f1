"""Lambda entry point of the retrain start (train once the burst settled, or wait more): parse the event, call one domain function."""

from aws_lambda_powertools import Logger

from conveyor.stages.bursts import start_retrain
from conveyor.stages.entry import stage_entry

logger = Logger(service="conveyor")
lambda_handler = stage_entry(start_retrain, logger)
