"""Validation of one big CSV in its own process (as in its own Lambda), for the scale benchmark.

``python scale_validate_stage.py MODE CSV SPEC`` prints one JSON line: seconds, peak RSS (VmHWM)
and the verdict. MODE ``chunked`` streams the file from disk (``validate_file``, what the
Validate stage runs); ``whole`` reads its bytes and validates them at once (``validate_bytes``,
the gate before streaming).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from data_gate_stage import peak_rss_mb


def main() -> None:
    mode, path, spec_path = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    from conveyor.spec import load_spec
    from conveyor.validation import validate_bytes
    from conveyor.validation.chunked import validate_file

    spec = load_spec(spec_path)
    baseline = peak_rss_mb()
    started = time.perf_counter()
    if mode == "chunked":
        report, _ = validate_file(path, path.name, spec)
    else:
        report = validate_bytes(path.read_bytes(), path.name, spec)
    seconds = time.perf_counter() - started
    result = {
        "mode": mode,
        "bytes": path.stat().st_size,
        "rows": report.rows,
        "verdict": report.verdict,
        "errors": [c.message for c in report.failures()][:3],
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "rss_after_imports_mb": round(baseline, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
