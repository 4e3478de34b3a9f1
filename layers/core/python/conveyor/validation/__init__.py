"""The data gate: is a dropped file usable for this spec? Never raises, whatever the bytes.

What each check means, and which module holds it, is in ``docs/validation.md``.
"""

from conveyor.validation.context import ValidationContext
from conveyor.validation.gate import validate_and_split, validate_bytes, validate_frame
from conveyor.validation.leakage import LEAKAGE_CORRELATION, LEAKAGE_MAX_ROWS
from conveyor.validation.quarantine import REASON_COLUMN, ROW_COLUMN, RowSplit, part_bytes
from conveyor.validation.report import Check, Severity, ValidationReport
from conveyor.validation.schema import ID_NAME
from conveyor.validation.values import COMMON_SENTINELS, IDENTIFIER_MIN_ROWS, OUT_OF_RANGE_ERROR_SHARE

__all__ = [
    "COMMON_SENTINELS",
    "IDENTIFIER_MIN_ROWS",
    "ID_NAME",
    "LEAKAGE_CORRELATION",
    "LEAKAGE_MAX_ROWS",
    "OUT_OF_RANGE_ERROR_SHARE",
    "REASON_COLUMN",
    "ROW_COLUMN",
    "Check",
    "RowSplit",
    "Severity",
    "ValidationContext",
    "ValidationReport",
    "part_bytes",
    "validate_and_split",
    "validate_bytes",
    "validate_frame",
]
