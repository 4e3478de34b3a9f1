"""Lambda entry point of the batch state machine's chunk scorer (an item of the Distributed Map)."""

from aws_lambda_powertools import Logger

from conveyor.stages.batch import score_chunk
from conveyor.stages.entry import stage_entry

logger = Logger(service="conveyor")
lambda_handler = stage_entry(score_chunk, logger)
