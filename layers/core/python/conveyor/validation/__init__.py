"""The data gate: is a dropped file usable for this spec? Never raises, whatever the bytes.

What each check means, and which module holds it, is in ``docs/validation.md``.
"""

from conveyor.validation.context import ValidationContext
from conveyor.validation.gate import validate_bytes, validate_frame
from conveyor.validation.leakage import (
    CATEGORY_MIN_SUPPORT,
    LEAKAGE_CORRELATION,
    LEAKAGE_MAX_ROWS,
    LEAKAGE_MIN_PER_CLASS,
    binary_auc,
    category_scores,
    leakage_strength,
)
from conveyor.validation.report import Check, Severity, ValidationReport
from conveyor.validation.schema import ID_NAME
from conveyor.validation.values import COMMON_SENTINELS, IDENTIFIER_MIN_ROWS, OUT_OF_RANGE_ERROR_SHARE

__all__ = [
    "CATEGORY_MIN_SUPPORT",
    "COMMON_SENTINELS",
    "IDENTIFIER_MIN_ROWS",
    "ID_NAME",
    "LEAKAGE_CORRELATION",
    "LEAKAGE_MAX_ROWS",
    "LEAKAGE_MIN_PER_CLASS",
    "OUT_OF_RANGE_ERROR_SHARE",
    "Check",
    "Severity",
    "ValidationContext",
    "ValidationReport",
    "binary_auc",
    "category_scores",
    "leakage_strength",
    "validate_bytes",
    "validate_frame",
]
