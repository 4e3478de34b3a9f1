"""Lambda entry point of the end of a run (release the retrain lease or queue the follow-up round; settle the version): parse the event, call one domain function."""

from aws_lambda_powertools import Logger

from conveyor.stages.bursts import finish_run
from conveyor.stages.entry import stage_entry

logger = Logger(service="conveyor")
lambda_handler = stage_entry(finish_run, logger)
