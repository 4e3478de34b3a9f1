"""The evidence bundle the pipeline stores with a version, built by the real stages on the in-memory
adapters: v1 is trained on 1984-1985 and serves; 1988 arrives (household income has risen), the drift
check compares it with v1's profile, and v2 is trained, gated against v1 and registered with its
evidence.json and report.html."""

from __future__ import annotations

import io
import json
from html.parser import HTMLParser
from typing import Any

import pandas as pd
import pytest
import yaml

from conveyor.adapters.memory import MemoryEvents, MemoryMetrics, MemoryNotifier, MemoryObjectStore, MemoryTable
from conveyor.config import Settings
from conveyor.layout import version_key
from conveyor.registry import sha256_hex
from conveyor.stages.context import PipelineContext, StageEvent
from conveyor.stages.drift import check_drift
from conveyor.stages.evaluate import evaluate
from conveyor.stages.release import register
from conveyor.stages.train import train_candidate
from tests.conftest import DEMO_SPEC

MODEL = "doctor-visits"
DATA, ARTIFACTS = "data-bucket", "artifact-bucket"
SECTIONS = ("metrics", "gates", "robustness", "slices", "importance", "latency", "drift", "lineage")


def _spec() -> dict[str, Any]:
    spec = yaml.safe_load(DEMO_SPEC.read_text())
    spec["slices"] = ["year", "female"]
    # machine-dependent gates loose, so both versions are registered by the same rules on any machine
    spec["gates"].update(max_p99_ms_single=2000.0, max_p99_ms_batch=5000.0, max_flip_rate=0.5, max_slice_gap=1.0)
    spec["drift"]["domain_classifier"]["enabled"] = False  # per-feature drift is enough here, and faster
    return spec


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.ids.extend(value for name, value in attrs if name == "id" and value)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _drop(ctx: PipelineContext, frame: pd.DataFrame, name: str, at: float) -> dict[str, Any]:
    """An accepted drop, stored and recorded as the Validate stage leaves it."""
    raw = frame.to_csv(index=False).encode()
    key = f"{MODEL}/accepted/{name}.csv"
    ref = ctx.store.put(DATA, key, raw)
    dataset = {
        "bucket": DATA,
        "key": key,
        "version_id": ref.version_id,
        "etag": ref.etag,
        "sha256": sha256_hex(raw),
        "rows": len(frame),
        "accepted_at": at,
    }
    assert ctx.registry.record_dataset(MODEL, dataset)
    return {"model": MODEL, "dataset": dataset, "data_key": key}


def _pipeline(ctx: PipelineContext, state: dict[str, Any], execution: str) -> dict[str, Any]:
    for name, stage in (("training", train_candidate), ("evaluation", evaluate), ("registration", register)):
        state[name] = stage(StageEvent(state=state, execution_id=execution), ctx)
    if state["registration"]["status"] == "approved":  # all at once, as the Deploy stage does
        state["deployment"] = ctx.registry.promote(MODEL, state["registration"]["version"]).revision
    return state


@pytest.fixture(scope="module")
def second_version(full_df: pd.DataFrame) -> dict[str, Any]:
    settings = Settings(
        data_bucket=DATA, artifact_bucket=ARTIFACTS, capture_bucket="", registry_table="t", alerts_topic_arn=""
    )
    store = MemoryObjectStore()
    ctx = PipelineContext(settings, store, MemoryTable(), MemoryNotifier(), MemoryMetrics(), MemoryEvents())
    store.put(ARTIFACTS, f"{MODEL}/spec.yaml", yaml.safe_dump(_spec()).encode())
    early = full_df[full_df["year"] <= 1985].head(3000)
    first = _pipeline(ctx, {"validation": _drop(ctx, early, "1984-1985", 1.0)}, "arn:exec:first")
    assert first["registration"]["status"] == "approved", first["evaluation"]["reason"]
    state: dict[str, Any] = {"validation": _drop(ctx, full_df[full_df["year"] == 1988].head(2000), "1988", 2.0)}
    state["drift"] = check_drift(StageEvent(state=state, execution_id="arn:exec:second"), ctx)
    state = _pipeline(ctx, state, "arn:exec:second")
    version = state["registration"]["version"]
    evidence = json.loads(store.get(ARTIFACTS, version_key(MODEL, version, "evidence.json")))
    page = store.get(ARTIFACTS, version_key(MODEL, version, "report.html")).decode()
    return {"state": state, "evidence": evidence, "page": page, "ctx": ctx}


def test_evidence_holds_every_section_that_decided_the_version(second_version: dict[str, Any]) -> None:
    evidence, state = second_version["evidence"], second_version["state"]
    assert evidence["model"] == MODEL and evidence["version"] == 2
    # metrics against the champion, on the same holdout
    metrics = evidence["metrics"]
    assert metrics["primary"] == "roc_auc"
    assert set(metrics["candidate"]) == set(metrics["champion"]) == {"roc_auc", "accuracy", "log_loss"}
    gates = {g["name"]: g for g in evidence["gates"]}
    assert list(gates)[:3] == ["primary_metric_vs_champion", "onnx_parity", "onnx_label_agreement"]
    for gate in evidence["gates"]:
        assert {"name", "value", "threshold", "passed", "message"} <= set(gate)
    primary = gates["primary_metric_vs_champion"]
    assert primary["value"] == pytest.approx(metrics["candidate"]["roc_auc"])
    assert primary["threshold"] == pytest.approx(metrics["champion"]["roc_auc"] - 0.005)
    assert gates["onnx_label_agreement"]["value"] == 1.0
    assert gates["onnx_parity"]["value"] == pytest.approx(state["training"]["parity"]["max_abs_diff"])
    # slices over the spec's slices columns
    assert set(evidence["slices"]) == {"year", "female"}
    assert gates["slice_gap"]["value"] is not None
    # drift of the drop that triggered the run, against v1's profile
    drift = evidence["drift"]
    assert drift["reference_version"] == 1 and drift["verdict"] == state["drift"]["verdict"] == "drift"
    assert "hhninc" in drift["drifted_features"]
    # robustness and agreement with the champion
    assert 0.0 <= evidence["robustness"]["flip_rate"] <= 1.0
    assert evidence["robustness"]["flip_rate"] == gates["noise_robustness"]["value"]
    assert evidence["agreement"]["holdout"] == gates["inference_agreement"]["value"]
    # permutation importance
    importance = evidence["importance"]
    assert importance["metric"] == "roc_auc" and len(importance["features"]) == 9
    assert sum(f["share"] for f in importance["features"]) == pytest.approx(1.0)
    # the decision and why
    registered = second_version["ctx"].registry.get(MODEL, 2)
    assert evidence["status"] == state["registration"]["status"]
    assert registered.status == ("production" if "deployment" in state else evidence["status"])
    assert evidence["decision"] == registered.decision == state["evaluation"]["reason"]
    verdict = evidence["verdict"]
    assert verdict["passed"] is state["evaluation"]["passed"] and verdict["reason"] == evidence["decision"]
    assert verdict["failed_gates"] == [g["name"] for g in evidence["gates"] if not g["passed"]]
    assert evidence["lineage"]["parent_champion"] == 1
    assert [d["key"] for d in evidence["lineage"]["data"]] == [
        f"{MODEL}/accepted/1984-1985.csv",
        f"{MODEL}/accepted/1988.csv",
    ]


def test_report_html_shows_the_same_sections(second_version: dict[str, Any]) -> None:
    evidence, page = second_version["evidence"], second_version["page"]
    parsed = _Text()
    parsed.feed(page)
    assert set(SECTIONS) <= set(parsed.ids)
    text = " ".join(" ".join(parsed.text).split())
    assert "Metrics vs champion" in text and "No champion" not in text
    assert evidence["decision"][:60] in text and evidence["status"].upper() in text
    for name in ("primary_metric_vs_champion", "onnx_parity", "onnx_label_agreement", "slice_gap", "explainability"):
        assert name in text
    assert "verdict: drift" in text and "hhninc" in text
    assert "Predictions changed under input noise" in text and "Agreement with the champion" in text
    assert "share of total permutation importance" in text
    assert "http://" not in page and "https://" not in page and "<script" not in page


def test_train_hands_the_serving_contract_to_register(second_version: dict[str, Any]) -> None:
    """Register runs where the spec cannot be parsed (a zip function without yaml or pydantic): the
    contract must come from Train, and the version must carry it, content-addressed and verifiable."""
    state, ctx = second_version["state"], second_version["ctx"]
    handed = state["training"]["contract"]
    assert set(handed["features"]) == set(_spec()["features"])
    stored = ctx.registry.get(MODEL, state["registration"]["version"])
    assert stored.contract_key and stored.contract_sha256
    body = ctx.store.get(ARTIFACTS, stored.contract_key)
    assert sha256_hex(body) == stored.contract_sha256
    assert json.loads(body)["features"].keys() == handed["features"].keys()


def test_training_with_no_accepted_data_names_the_problem() -> None:
    """Every object excluded (an erasure request) or none accepted yet: a clear error, not a pandas one."""
    from conveyor.errors import TrainingError

    settings = Settings(
        data_bucket=DATA, artifact_bucket=ARTIFACTS, capture_bucket="", registry_table="t", alerts_topic_arn=""
    )
    store = MemoryObjectStore()
    ctx = PipelineContext(settings, store, MemoryTable(), MemoryNotifier(), MemoryMetrics(), MemoryEvents())
    store.put(ARTIFACTS, f"{MODEL}/spec.yaml", yaml.safe_dump(_spec()).encode())
    with pytest.raises(TrainingError, match="no accepted data to train on"):
        train_candidate(StageEvent(state={"validation": {"model": MODEL}}, execution_id="arn:exec:x"), ctx)


def _capture_line(model: str, at: float, row: dict[str, Any], **fields: Any) -> dict[str, Any]:
    record = {
        "model": model,
        "model_version": 1,
        "role": "champion",
        "served": True,
        "request_id": f"r-{at}",
        "timestamp": at,
        "latency_ms": 0.4,
        "status": 200,
        "error_code": None,
        "inputs": [row],
        "predictions": [1],
    }
    record.update(fields)
    return record


def test_the_agreement_gate_reads_the_live_requests_the_champion_served(full_df: pd.DataFrame) -> None:
    """Issue 4: agreement with the champion on the holdout *and* on captured live requests."""
    from datetime import UTC, datetime

    from conveyor.stages.evaluate import live_instances

    settings = Settings(
        data_bucket=DATA, artifact_bucket=ARTIFACTS, capture_bucket="capture", registry_table="t", alerts_topic_arn=""
    )
    store = MemoryObjectStore()
    ctx = PipelineContext(settings, store, MemoryTable(), MemoryNotifier(), MemoryMetrics(), MemoryEvents())
    store.put(ARTIFACTS, f"{MODEL}/spec.yaml", yaml.safe_dump(_spec()).encode())
    first = _pipeline(ctx, {"validation": _drop(ctx, full_df[full_df["year"] <= 1985].head(3000), "a", 1.0)}, "e1")
    assert first["registration"]["status"] == "approved"

    now = datetime.now(tz=UTC).timestamp()
    features = list(_spec()["features"])
    rows = full_df[full_df["year"] == 1987].head(40)[features].to_dict(orient="records")
    for row in rows:
        row["edlevel"] = str(row["edlevel"])
    lines = [_capture_line(MODEL, now - 60 + i, row) for i, row in enumerate(rows[:30])]
    lines += [
        _capture_line(MODEL, now - 5, rows[30], role="shadow", served=False),  # never served: not live traffic
        _capture_line(MODEL, now - 4, rows[31], status=503, error_code="model_unavailable"),  # refused
        _capture_line(MODEL, now - 3, {**rows[32], "age": "***"}),  # a masked feature cannot be rescored
        _capture_line("other-model", now - 2, rows[33]),
    ]
    hour = datetime.fromtimestamp(now - 60, tz=UTC).strftime("%Y/%m/%d/%H")
    store.put("capture", f"{MODEL}/capture/{hour}/batch.jsonl", "\n".join(json.dumps(x) for x in lines).encode())

    picked = live_instances(ctx, MODEL, {name: "x" for name in features}, now=now)
    assert len(picked) == 30 and all(set(row) == set(features) for row in picked)

    state = _pipeline(ctx, {"validation": _drop(ctx, full_df[full_df["year"] == 1986].head(2500), "b", 2.0)}, "e2")
    (gate,) = [g for g in state["evaluation"]["gates"] if g["name"] == "inference_agreement"]
    assert "of 30 live requests" in gate["message"], gate
    details = json.loads(store.get(ARTIFACTS, state["evaluation"]["details_key"]))
    assert details["agreement"]["live_rows"] == 30 and details["agreement"]["live"] is not None


def test_the_holdout_moves_under_its_version_out_of_staging(second_version: dict[str, Any]) -> None:
    """staging/ expires after 30 days (a lifecycle rule); a registered version keeps its holdout."""
    state, ctx = second_version["state"], second_version["ctx"]
    staged = state["training"]["holdout_key"]
    assert staged.startswith("staging/" + MODEL + "/")
    kept = version_key(MODEL, state["registration"]["version"], "holdout.parquet")
    assert ctx.store.get(ARTIFACTS, kept) == ctx.store.get(ARTIFACTS, staged)
    assert pd.read_parquet(io.BytesIO(ctx.store.get(ARTIFACTS, kept))).shape[0] == state["training"]["n_holdout"]
