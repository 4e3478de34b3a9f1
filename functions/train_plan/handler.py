"""Lambda entry point of "Choose compute" (where the retrain runs; the training input staged for a
container): parse the event, call one domain function."""

from aws_lambda_powertools import Logger

from conveyor.stages.entry import stage_entry
from conveyor.stages.train import plan_training

logger = Logger(service="conveyor")
lambda_handler = stage_entry(plan_training, logger)
