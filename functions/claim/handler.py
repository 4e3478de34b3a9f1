"""Lambda entry point of the retrain claim (own the model's next training, or fold into the run that does): parse the event, call one domain function."""

from aws_lambda_powertools import Logger

from conveyor.stages.bursts import claim_retrain
from conveyor.stages.entry import stage_entry

logger = Logger(service="conveyor")
lambda_handler = stage_entry(claim_retrain, logger)
