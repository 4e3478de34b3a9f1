"""Lambda entry point of manual approval (stores the task token, tells the reviewers): parse the event, call one domain function."""

from aws_lambda_powertools import Logger

from conveyor.stages.deployment import request_approval
from conveyor.stages.entry import stage_entry

logger = Logger(service="conveyor")
lambda_handler = stage_entry(request_approval, logger)
