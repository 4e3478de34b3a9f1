"""``json_safe``: any report, record or value as strict JSON can hold it.

Standard library only at import (it is on the predict path): numpy and pandas values are
recognised only when those libraries are already loaded, since no such value can exist otherwise.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from datetime import date, datetime, time
from typing import Any


def json_safe(value: Any) -> Any:
    """A copy of ``value`` that ``json.dumps(..., allow_nan=False)`` accepts, with no ``default``.

    - mappings become dicts with ``str`` keys; lists, tuples, sets and numpy arrays become lists;
    - numpy scalars become the Python value they hold (``np.float64`` -> ``float``, ...);
    - NaN and +-inf, ``None``, pandas' ``NaT`` and ``NA`` become ``None``;
    - dates, datetimes, times and pandas ``Timestamp`` become ISO 8601 strings;
    - bytes are decoded as UTF-8 (undecodable bytes replaced);
    - ``bool``, ``int``, ``float`` and ``str`` (and their subclasses, e.g. a ``str`` enum) are kept;
    - anything else becomes ``str(value)``.
    """
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v) for v in value]
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        if isinstance(value, numpy.ndarray):
            return [json_safe(v) for v in value.tolist()]
        if isinstance(value, numpy.generic):
            value = value.item()
    if value is None or _is_pandas_missing(value):
        return None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _is_pandas_missing(value: Any) -> bool:
    pandas = sys.modules.get("pandas")
    return pandas is not None and (value is pandas.NaT or value is pandas.NA)
