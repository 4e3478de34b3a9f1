"""One stage of the live-monitor benchmark, in its own process (its own seconds and peak RSS).

    python monitor_stage.py write DIR ROWS    capture files (1988-like rows), profile, spec, registry
    python monitor_stage.py monitor DIR       run_monitor over the capture files (a directory-backed store)
    python monitor_stage.py offline DIR       `conveyor drift`'s code on the same rows (current.csv vs profile.json)

Prints one JSON line: {"seconds", "peak_mb", ...}. The capture files are written as Firehose does
(large JSON-lines objects, ~50,000 records each) under one hour's prefix.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
MODEL = "bench-live"
NOW = 1_800_000_000.0
PER_FILE = 50_000
FEATURES = ("age", "hhninc", "educ", "female", "married", "kids", "outwork", "self", "edlevel")


class DirectoryStore:
    """The ObjectStore port over a directory (bucket/key -> DIR/bucket/key): enough for the monitor."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def get(self, bucket: str, key: str, version_id: str | None = None) -> bytes:
        path = self.root / bucket / key
        if not path.exists():
            raise KeyError(key)
        return path.read_bytes()

    def put(self, bucket: str, key: str, data: bytes, content_type: str = "") -> Any:
        path = self.root / bucket / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        base = self.root / bucket
        return sorted(
            str(p.relative_to(base))
            for p in base.rglob("*")
            if p.is_file() and str(p.relative_to(base)).startswith(prefix)
        )

    def head(self, bucket: str, key: str, version_id: str | None = None) -> Any:
        return None

    def copy(self, source: Any, bucket: str, key: str) -> Any:
        raise NotImplementedError("the monitor benchmark only reads, lists and writes objects; it never copies one")

    def delete(self, bucket: str, key: str) -> None:
        (self.root / bucket / key).unlink(missing_ok=True)


def _context(root: Path) -> Any:
    from conveyor.adapters.memory import MemoryMetrics, MemoryStarter, MemoryTable
    from conveyor.config import Settings
    from conveyor.layout import artifact_key
    from conveyor.monitoring.context import MonitorContext
    from conveyor.registry import ModelVersion, Registry

    table = MemoryTable()
    registry = Registry(table)
    metrics = json.loads((root / "metrics.json").read_text())
    registry.register(
        ModelVersion(MODEL, 0, "approved", artifact_key(MODEL, "a" * 64), "a" * 64, metrics=metrics, created_at=NOW)
    )
    registry.promote(MODEL, 1)
    settings = Settings("data", "artifacts", "capture", "table", "")
    return MonitorContext(settings, DirectoryStore(root), table, MemoryMetrics(), MemoryStarter())


def write(root: Path, rows: int) -> dict[str, Any]:
    import yaml

    from conveyor.capture import record_line
    from conveyor.layout import spec_key, version_key
    from conveyor.monitoring.scores import distribution
    from conveyor.profile import build_profile
    from conveyor.spec import load_spec
    from conveyor.training import holdout_scores, train_model

    spec_doc = yaml.safe_load((ROOT / "events" / "specs" / "doctor-visits.yaml").read_text())
    spec_doc["name"] = MODEL
    spec_bytes = yaml.safe_dump(spec_doc).encode()
    spec = load_spec(spec_bytes)
    frame = pd.read_csv(ROOT / "events" / "data" / "german_health_1984_1988.csv")
    result = train_model(frame[frame["year"] <= 1985].reset_index(drop=True), spec)
    profile = build_profile(result.train_df, spec)
    profile.scores = distribution(holdout_scores(result, spec))
    store = DirectoryStore(root)
    store.put("artifacts", spec_key(MODEL), spec_bytes)
    store.put("artifacts", version_key(MODEL, 1, "spec.yaml"), spec_bytes)
    store.put("artifacts", version_key(MODEL, 1, "profile.json"), profile.to_json().encode())
    (root / "metrics.json").write_text(json.dumps(result.metrics))
    live = frame[frame["year"] == 1988].sample(rows, replace=True, random_state=3).reset_index(drop=True)
    rng = np.random.default_rng(3)
    p1 = rng.random(rows)
    columns = {name: live[name].tolist() for name in FEATURES}
    columns["edlevel"] = [str(v) for v in columns["edlevel"]]
    current = pd.DataFrame(columns)
    current.to_csv(root / "current.csv", index=False)
    hour = "2027/01/15/07"
    for start in range(0, rows, PER_FILE):
        lines = []
        for i in range(start, min(start + PER_FILE, rows)):
            record = {
                "model": MODEL,
                "model_version": 1,
                "role": "champion",
                "served": True,
                "request_id": f"r-{i}",
                "timestamp": NOW - 3000 + 2400 * i / rows,
                "latency_ms": 1.0,
                "status": 200,
                "error_code": None,
                "inputs": [{name: columns[name][i] for name in FEATURES}],
                "predictions": [int(p1[i] > 0.5)],
                "probabilities": [{"0": 1 - p1[i], "1": p1[i]}],
                "warnings": [],
            }
            lines.append(record_line(record))
        store.put("capture", f"{MODEL}/capture/{hour}/part-{start // PER_FILE:04d}.jsonl", b"".join(lines))
    (root / "spec.yaml").write_bytes(spec_bytes)
    (root / "profile.json").write_text(profile.to_json())
    return {"rows": rows, "bytes": sum(p.stat().st_size for p in (root / "capture").rglob("*.jsonl"))}


def monitor(root: Path) -> dict[str, Any]:
    from conveyor.monitoring.live import run_monitor

    ctx = _context(root)
    run = run_monitor(MODEL, ctx, NOW, 3600)
    document = run.primary()
    assert document is not None
    return {
        "requests": document["requests"],
        "verdict": document["drift"]["verdict"],
        "drifted_features": document["drift"]["drifted_features"],
        "score_shift": (document["score_shift"] or {}).get("shift"),
    }


def offline(root: Path) -> dict[str, Any]:
    """What ``conveyor drift profile.json current.csv --spec spec.yaml`` runs, on the same rows."""
    from conveyor.drift import drift_report
    from conveyor.profile import Profile
    from conveyor.spec import load_spec
    from conveyor.tabular import read_table

    spec = load_spec((root / "spec.yaml").read_bytes())
    profile = Profile.from_json((root / "profile.json").read_bytes())
    report = drift_report(profile, read_table((root / "current.csv").read_bytes(), "current.csv"), spec)
    return {"rows": report.rows_current, "verdict": report.verdict, "drifted_features": report.drifted_features}


if __name__ == "__main__":
    started = time.perf_counter()
    mode, folder = sys.argv[1], Path(sys.argv[2])
    steps = {"monitor": monitor, "offline": offline}
    outcome = write(folder, int(sys.argv[3])) if mode == "write" else steps[mode](folder)
    outcome["seconds"] = round(time.perf_counter() - started, 2)
    outcome["peak_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(outcome))
