"""Evidently's data drift report on the benchmark files; runs in Evidently's own virtualenv.

``python evidently_runner.py FORMAT DIR`` prints one JSON line: the report computation alone
(``Report([DataDriftPreset()]).run``: per-column drift tests and dataset drift), the total
(imports, reading both files, the report), peak RSS and the drifted columns Evidently found.
Imports nothing from Conveyor (only ``data_gate_data``'s column lists, beside this file).
"""

from __future__ import annotations

import json
import resource
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB: ``VmHWM`` of /proc/self/status (reset by exec).

    Not ``getrusage(RUSAGE_SELF).ru_maxrss``: on Linux a child started by fork + exec keeps the
    parent's high-water mark there, so every stage would report the benchmark runner's memory.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    fmt, directory = sys.argv[1], Path(sys.argv[2])
    started = time.perf_counter()
    warnings.filterwarnings("ignore")
    import evidently
    import pandas as pd
    from data_gate_data import BOOLEANS, CATEGORIES, INTEGERS, NUMBERS
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    imported = time.perf_counter()
    read = pd.read_csv if fmt == "csv" else pd.read_parquet
    reference = read(directory / f"reference.{fmt}")
    current = read(directory / f"current.{fmt}")
    loaded = time.perf_counter()
    definition = DataDefinition(numerical_columns=NUMBERS + INTEGERS, categorical_columns=BOOLEANS + CATEGORIES)
    t = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(
        current_data=Dataset.from_pandas(current, data_definition=definition),
        reference_data=Dataset.from_pandas(reference, data_definition=definition),
    )
    report_seconds = time.perf_counter() - t
    drifted = []
    for metric in snapshot.dict().get("metrics", []):
        name = str(metric.get("metric_name", metric.get("metric_id", "")))
        value = metric.get("value")
        if name.startswith("ValueDrift") and isinstance(value, (int, float)):
            config = metric.get("config", {})
            column = config.get("column") or name
            threshold = config.get("threshold")
            method = str(config.get("method", ""))
            is_distance = "p_value" not in method and "pvalue" not in method
            if threshold is not None and ((value >= threshold) if is_distance else (value < threshold)):
                drifted.append(column)
    print(
        json.dumps(
            {
                "evidently": evidently.__version__,
                "pandas": pd.__version__,
                "format": fmt,
                "seconds": {
                    "import": imported - started,
                    "read": loaded - imported,
                    "report": report_seconds,
                    "total": time.perf_counter() - started,
                },
                "peak_rss_mb": peak_rss_mb(),
                "drifted": sorted(set(drifted)),
            }
        )
    )


if __name__ == "__main__":
    main()
