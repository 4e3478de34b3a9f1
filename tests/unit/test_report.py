"""The evidence report: self-contained, well-formed, escaped, and tolerant of missing sections."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from typing import Any

import pytest

from conveyor.report import render_report

VOID = frozenset({"meta", "br", "hr", "img", "input", "link", "area", "base", "col", "embed", "source", "wbr"})
EVIL = '<script>alert("x")</script><img src=x onerror=alert(1)>'


class _TagChecker(HTMLParser):
    """Records tags and fails on an end tag that does not close the innermost open tag."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.seen: list[str] = []
        self.errors: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.append(tag)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(page: str) -> _TagChecker:
    checker = _TagChecker()
    checker.feed(page)
    checker.close()
    assert checker.errors == [] and checker.stack == [], (checker.errors, checker.stack)
    return checker


def _minimal() -> dict[str, Any]:
    return {"model": "doctor-visits", "version": "3", "status": "passed"}


def _full() -> dict[str, Any]:
    return {
        "model": "doctor-visits",
        "version": "7",
        "status": "rejected",
        "decision": "Rejected: slice_gap failed (female fpr gap 0.54 > 0.25).",
        "metrics": {
            "candidate": {"roc_auc": 0.61, "accuracy": 0.63, "log_loss": 0.65},
            "champion": {"roc_auc": 0.60, "accuracy": 0.62, "log_loss": 0.66},
        },
        "gates": [
            {"name": "primary_metric_vs_champion", "value": 0.61, "threshold": 0.595, "passed": True, "message": "ok"},
            {"name": "slice_gap", "value": 0.54, "threshold": 0.25, "passed": False, "message": "female fpr"},
            {"name": "inference_agreement", "value": None, "threshold": 0.7, "passed": True, "message": "no champion"},
        ],
        "slices": {
            "female": {
                "slices": {
                    "0": {"rows": 775, "positive_rate": 0.43, "tpr": 0.48, "fpr": 0.38, "auc": 0.58},
                    "1": {"rows": 698, "positive_rate": 0.94, "tpr": 0.94, "fpr": 0.92, "auc": None},
                },
                "gaps": {"fpr": {"gap": 0.54, "low": "0", "high": "1", "low_value": 0.38, "high_value": 0.92}},
                "small_slices": ["2"],
            },
            "region": {"error": "column 'region' is not in the holdout"},
        },
        "importance": {
            "metric": "roc_auc",
            "rows": 1473,
            "n_repeats": 3,
            "features": [
                {"name": "age", "importance": 0.03, "share": 0.6},
                {"name": "female", "importance": 0.02, "share": 0.4},
                {"name": "self", "importance": -0.001, "share": 0.0},
            ],
            "top": ["age", "female", "self"],
        },
        "latency": {
            "single": {"p50_ms": 0.05, "p99_ms": 0.08},
            "batch": {"p50_ms": 0.3, "p99_ms": 0.4},
            "single_runs": 200,
            "batch_runs": 50,
            "batch_rows": 100,
            "model_mb": 0.108,
        },
        "drift": {
            "verdict": "drift",
            "summary": "drift: 1 of 9 features drifted (age)",
            "features": [
                {"name": "age", "method": "psi+ks", "value": 0.31, "threshold": 0.2, "drifted": True, "message": "psi"},
                {
                    "name": "hhninc",
                    "method": "psi+ks+chi2_binned",
                    "values": {"psi": 0.01, "ks": 0.02, "js": None},
                    "thresholds": {"psi": 0.2, "ks": 0.1},
                    "drifted": False,
                    "message": "stable",
                },
            ],
        },
        "robustness": {"flip_rate": 0.08},
        "agreement": {"holdout": 0.97, "live": 0.95, "live_rows": 40},
        "lineage": {
            "data": [{"uri": "s3://bucket/data/1985.csv", "sha256": "ab" * 32, "rows": 6195}],
            "spec_hash": "cd" * 32,
            "code_version": "3fd245c",
            "libraries": {"scikit-learn": "1.8.0", "onnxruntime": "1.32.0"},
            "parameters": {"max_iter": 100, "learning_rate": 0.1},
            "parent_champion": None,
            "execution": "local",
        },
    }


def test_full_report_is_well_formed_and_self_contained() -> None:
    page = render_report(_full())
    checker = _parse(page)
    lowered = page.lower()
    assert "http://" not in lowered and "https://" not in lowered and "<script" not in lowered
    assert "<link" not in lowered and "@import" not in lowered and "url(" not in lowered
    for tag in ("html", "head", "body", "main", "header", "table", "svg", "dl"):
        assert tag in checker.seen, tag
    assert checker.seen.count("section") == 8
    text = "".join(checker.text)
    for name in ("primary_metric_vs_champion", "slice_gap", "inference_agreement"):
        assert name in text
    assert 'class="rejected"' in page and "Rejected: slice_gap failed" in text
    assert "column 'region' is not in the holdout" in text and "Too small to gate: 2" in text
    assert "s3://bucket/data/1985.csv" in text and "3fd245c" in text
    assert "psi 0.01, ks 0.02" in text  # a drift.py feature dict shows its per-method values


def test_malicious_strings_are_escaped_everywhere() -> None:
    evidence = _full()
    evidence["model"] = EVIL
    evidence["decision"] = EVIL
    evidence["gates"][0]["message"] = EVIL
    evidence["gates"][1]["name"] = EVIL
    evidence["slices"][EVIL] = {"slices": {EVIL: {"rows": 40, "auc": 0.5}}}
    evidence["importance"]["features"][0]["name"] = EVIL
    evidence["drift"]["features"][0]["message"] = EVIL
    evidence["lineage"][EVIL] = {EVIL: [EVIL]}
    page = render_report(evidence)
    _parse(page)
    assert "<script" not in page.lower() and "<img" not in page.lower()
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "onerror=alert(1)&gt;" in page


def test_minimal_evidence_renders_only_the_header() -> None:
    page = render_report(_minimal())
    checker = _parse(page)
    assert "section" not in checker.seen
    assert 'class="passed"' in page and "doctor-visits" in page


@pytest.mark.parametrize(
    "evidence",
    [
        {},
        {"model": "m", "version": 1, "status": "pending_approval", "decision": "Waiting for approval."},
        {**_minimal(), "metrics": {"candidate": {"rmse": 1.2}, "champion": None}, "gates": [], "lineage": {}},
        {**_minimal(), "importance": {"age": 0.2, "female": float("nan")}, "latency": {}, "drift": {"features": []}},
    ],
)
def test_partial_evidence_renders(evidence: dict[str, Any]) -> None:
    page = render_report(evidence)
    _parse(page)
    assert "http" not in page


def test_no_champion_metrics_table_says_so() -> None:
    evidence = {**_minimal(), "metrics": {"candidate": {"roc_auc": 0.6}, "champion": None}}
    page = render_report(evidence)
    assert "No champion" in page and "roc_auc" in page


def test_renders_a_real_gate_report(trained_model: Any) -> None:
    from conveyor.gates import run_gates
    from conveyor.scoring import OnnxModel

    model = OnnxModel(trained_model.onnx)
    report = run_gates(
        model,
        model,
        trained_model.result.holdout_df,
        trained_model.spec,
        candidate_bytes=trained_model.onnx,
        slice_columns=["female", "age"],
    ).to_dict()
    evidence = {
        **_minimal(),
        "gates": report["gates"],
        "slices": report["slices"],
        "importance": report["importance"],
        "latency": report["latency"],
        "robustness": {"flip_rate": report["flip_rate"]},
        "agreement": report["agreement"],
    }
    json.dumps(evidence, allow_nan=False)
    page = render_report(evidence)
    checker = _parse(page)
    text = "".join(checker.text)
    for gate in report["gates"]:
        assert gate["name"] in text
    assert checker.seen.count("svg") >= 3
