"""One stage of the data gate, run in its own process (as in its own Lambda) by the benchmark.

``python data_gate_stage.py STAGE FORMAT DIR`` prints one JSON line: seconds per step and the
process's peak resident memory (``VmHWM``, the number Lambda's memory limit is about; it
includes the interpreter and imported libraries, which tracemalloc would not see, nor memory
allocated by Arrow or the pandas CSV parser outside Python's allocator).

Stages: ``validate`` (validate_bytes of the current file), ``profile`` (read the reference file,
build and write its profile), ``drift`` (load the profile, read the current file, drift report),
``drift_features`` (the same without the domain classifier).
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path


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
    stage, fmt, directory = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    started = time.perf_counter()
    from conveyor.drift import DriftSettings, drift_report
    from conveyor.profile import Profile, build_profile
    from conveyor.spec import load_spec
    from conveyor.tabular import read_table
    from conveyor.validation import validate_bytes

    spec = load_spec(directory / "spec.yaml")
    seconds: dict[str, float] = {"import": time.perf_counter() - started}
    result: dict[str, object] = {}
    if stage == "validate":
        path = directory / f"current.{fmt}"
        data = path.read_bytes()
        t = time.perf_counter()
        report = validate_bytes(data, path.name, spec)
        seconds["validate"] = time.perf_counter() - t
        result["accepted"] = report.accepted
    elif stage == "profile":
        path = directory / f"reference.{fmt}"
        t = time.perf_counter()
        frame = read_table(path.read_bytes(), path.name)
        seconds["read"] = time.perf_counter() - t
        t = time.perf_counter()
        profile = build_profile(frame, spec)
        seconds["profile"] = time.perf_counter() - t
        (directory / f"profile-{fmt}.json").write_text(profile.to_json())
        result["profile_bytes"] = (directory / f"profile-{fmt}.json").stat().st_size
    elif stage in ("drift", "drift_features"):
        profile = Profile.from_json((directory / f"profile-{fmt}.json").read_bytes())
        path = directory / f"current.{fmt}"
        t = time.perf_counter()
        frame = read_table(path.read_bytes(), path.name)
        seconds["read"] = time.perf_counter() - t
        settings = DriftSettings.from_spec(spec)
        if stage == "drift_features":
            settings = DriftSettings(domain_classifier=False)
        t = time.perf_counter()
        report = drift_report(profile, frame, spec, settings=settings)
        seconds["drift"] = time.perf_counter() - t
        seconds["domain_classifier"] = report.domain_classifier.seconds
        result["verdict"] = report.verdict
        result["drifted"] = report.drifted_features
        result["auc"] = report.domain_classifier.auc
    else:
        raise SystemExit(f"unknown stage {stage}")
    seconds["total"] = time.perf_counter() - started
    peak_mb = peak_rss_mb()
    print(json.dumps({"stage": stage, "format": fmt, "seconds": seconds, "peak_rss_mb": peak_mb, **result}))


if __name__ == "__main__":
    main()
