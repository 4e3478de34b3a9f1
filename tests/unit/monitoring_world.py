"""A served model in memory for the live-monitor and label tests: the demo model trained on
1984-1985, registered and promoted, its spec and profile stored, and capture records written the
way the prediction API writes them (``docs/capture.md``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import yaml

from conveyor.adapters.memory import MemoryMetrics, MemoryObjectStore, MemoryStarter, MemoryTable
from conveyor.capture import record_line
from conveyor.config import Settings
from conveyor.layout import artifact_key, capture_key, spec_key, version_key
from conveyor.monitoring.context import MonitorContext
from conveyor.profile import build_profile
from conveyor.registry import ModelVersion, Registry
from conveyor.spec import parse_spec
from conveyor.tabular import feature_frame
from conveyor.training import holdout_scores
from tests.conftest import DEMO_SPEC

MODEL = "watched"
NOW = 1_800_000_000.0  # a fixed clock: 2027-01-15T08:00:00Z
SETTINGS = Settings(
    data_bucket="data", artifact_bucket="artifacts", capture_bucket="capture", registry_table="t", alerts_topic_arn=""
)


@dataclass
class World:
    ctx: MonitorContext
    store: MemoryObjectStore
    metrics: MemoryMetrics
    starter: MemoryStarter
    trained: Any
    spec: Any
    records: list[dict[str, Any]] = field(default_factory=list)

    def serve(
        self, frame: pd.DataFrame, *, start: float, seconds: float = 600.0, version: int = 1, **overrides: Any
    ) -> list[dict[str, Any]]:
        """One request per row of ``frame``, spread over [start, start + seconds], captured."""
        features = list(self.spec.features)
        pipeline = self.trained.result.pipeline
        proba = pipeline.predict_proba(feature_frame(frame, self.spec))
        labels = pipeline.predict(feature_frame(frame, self.spec))
        records = []
        for i, row in enumerate(frame.to_dict("records")):
            inputs = {name: _plain(row[name]) for name in features}
            for name in self.spec.capture.pii:
                inputs[name] = "***"
            record = {
                "model": MODEL,
                "model_version": version,
                "role": "champion",
                "served": True,
                "request_id": f"r-{version}-{int(start)}-{i}",
                "timestamp": start + seconds * i / max(len(frame), 1),
                "latency_ms": 1.0,
                "status": 200,
                "error_code": None,
                "inputs": [inputs],
                "predictions": [int(labels[i])],
                "probabilities": [{"0": float(proba[i][0]), "1": float(proba[i][1])}],
                "warnings": [],
                **overrides,
            }
            records.append(record)
        self.write(records)
        return records

    def write(self, records: list[dict[str, Any]]) -> None:
        self.records += records
        for chunk in range(0, len(records), 100):
            batch = records[chunk : chunk + 100]
            body = b"".join(record_line(r) for r in batch)
            self.store.put("capture", capture_key(MODEL, float(batch[0]["timestamp"])), body)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def make_world(trained: Any, *, spec_changes: dict[str, Any] | None = None, scores: bool = True) -> World:
    spec_doc = yaml.safe_load(DEMO_SPEC.read_text())
    spec_doc.update({"name": MODEL, **(spec_changes or {})})
    spec = parse_spec(spec_doc)
    store, table, metrics, starter = MemoryObjectStore(), MemoryTable(), MemoryMetrics(), MemoryStarter()
    ctx = MonitorContext(settings=SETTINGS, store=store, table=table, metrics=metrics, starter=starter)
    spec_bytes = yaml.safe_dump(spec_doc).encode()
    store.put("artifacts", spec_key(MODEL), spec_bytes)
    registry = Registry(table)
    version = registry.register(
        ModelVersion(
            model=MODEL,
            version=0,
            status="approved",
            artifact_key=artifact_key(MODEL, "a" * 64),
            sha256="a" * 64,
            metrics=dict(trained.result.metrics),
            created_at=NOW - 86400,
        )
    )
    registry.promote(MODEL, version.version)
    profile = build_profile(trained.result.train_df, spec)
    if scores:
        from conveyor.monitoring.scores import distribution

        profile.scores = distribution(holdout_scores(trained.result, spec))
    store.put("artifacts", version_key(MODEL, version.version, "profile.json"), json.dumps(profile.to_dict()).encode())
    store.put("artifacts", version_key(MODEL, version.version, "spec.yaml"), spec_bytes)
    return World(ctx=ctx, store=store, metrics=metrics, starter=starter, trained=trained, spec=spec)
