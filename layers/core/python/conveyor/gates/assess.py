"""Every gate together: :func:`run_gates` (slices, robustness, agreement, explainability, latency,
size) and :func:`assess_candidate`, which adds the primary metric and ONNX parity. The Evaluate
stage and ``conveyor evaluate`` both call :func:`assess_candidate`."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from conveyor.errors import ArtifactError, DataError
from conveyor.gates.agreement import agreement_evidence, agreement_gate
from conveyor.gates.common import Gate, GateThresholds
from conveyor.gates.importance import explainability_gate, importance_evidence
from conveyor.gates.latency import latency, latency_gates
from conveyor.gates.parity import parity_gates
from conveyor.gates.primary import Evaluation, evaluate_candidate
from conveyor.gates.robustness import noise_flip_rate, noise_gate
from conveyor.gates.slices import slice_gate, slice_metrics
from conveyor.gates.value import value_gate
from conveyor.jsonsafe import json_safe
from conveyor.scoring import OnnxModel
from conveyor.spec import ModelSpec
from conveyor.tabular import target_vector

logger = logging.getLogger(__name__)


@dataclass
class GateReport:
    """The gates of :func:`run_gates` and the evidence behind them; ``to_dict()`` is JSON-able."""

    gates: list[Gate]
    slices: dict[str, Any] = field(default_factory=dict)
    importance: dict[str, Any] = field(default_factory=dict)
    latency: dict[str, Any] = field(default_factory=dict)
    flip_rate: float | None = None
    agreement: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return all(gate.passed for gate in self.gates)

    @property
    def failed(self) -> list[str]:
        """Names of the gates that failed."""
        return [gate.name for gate in self.gates if not gate.passed]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["passed"] = self.passed
        data["seconds"] = round(self.seconds, 3)
        return json_safe(data)


def run_gates(
    candidate: OnnxModel,
    champion: OnnxModel | None,
    holdout: pd.DataFrame,
    spec: ModelSpec,
    *,
    candidate_bytes: bytes,
    thresholds: GateThresholds | None = None,
    live_instances: Sequence[Mapping[str, Any]] | None = None,
    slice_columns: Sequence[str] = (),
) -> GateReport:
    """Run the slice, robustness, agreement, explainability, latency and size gates on a holdout.

    Gates, in order: ``slice_gap`` (columns ``spec.sensitive`` + ``spec.slices`` + ``slice_columns``),
    ``noise_robustness``, ``inference_agreement`` (holdout, plus ``live_instances`` when given;
    passes with a message without a champion or when the champion cannot score the rows),
    ``explainability`` (on at most ``IMPORTANCE_MAX_ROWS`` rows), ``latency_single``,
    ``latency_batch``, ``model_size``.

    Raises
    ------
    DataError, ArtifactError
        If the candidate cannot score the holdout or the target is missing.
    """
    thresholds = thresholds or GateThresholds()
    started = time.perf_counter()
    y_true = target_vector(holdout, spec)
    columns = list(dict.fromkeys([*spec.sensitive, *spec.slices, *slice_columns]))
    try:
        slices = slice_metrics(candidate, holdout, y_true, columns, min_slice_rows=thresholds.min_slice_rows)
        flip_rate = noise_flip_rate(candidate, holdout, spec, thresholds)
        importance = importance_evidence(candidate, holdout, y_true, spec, thresholds.seed)
        timing = latency(candidate, holdout, model_bytes=candidate_bytes, champion=champion)
    except ValueError as exc:  # sklearn metric errors, e.g. labels the model does not know
        raise DataError(f"candidate cannot score the holdout: {str(exc)[:300]}") from None
    except ArtifactError as exc:
        raise DataError(f"candidate cannot score the holdout: {exc}") from None
    agreed = agreement_evidence(candidate, champion, holdout, live_instances)
    gates = [
        slice_gate(slices, thresholds),
        noise_gate(flip_rate, thresholds),
        agreement_gate(agreed, champion is not None, thresholds),
        explainability_gate(importance, spec, thresholds),
        *latency_gates(timing, thresholds),
    ]
    report = GateReport(
        gates=gates,
        slices=slices,
        importance=importance,
        latency=timing,
        flip_rate=flip_rate,
        agreement=agreed,
        seconds=time.perf_counter() - started,
    )
    logger.info(
        "gates run",
        extra={"model": spec.name, "passed": report.passed, "failed": report.failed, "seconds": report.seconds},
    )
    return report


def thresholds_of(spec: ModelSpec) -> GateThresholds:
    """The spec's gate thresholds, over the defaults for anything it leaves out."""
    fields = GateThresholds.__dataclass_fields__
    given = {k: v for k, v in spec.gates.model_dump().items() if k in fields and v is not None}
    return GateThresholds(**given)


@dataclass
class CandidateAssessment:
    """Every gate of one candidate on one holdout, and the evidence behind them."""

    evaluation: Evaluation
    report: GateReport
    gates: list[Gate]

    @property
    def passed(self) -> bool:
        return all(gate.passed for gate in self.gates)

    @property
    def failed(self) -> list[Gate]:
        return [gate for gate in self.gates if not gate.passed]

    @property
    def reason(self) -> str:
        """The primary metric's verdict when every gate passes, else every failed gate's message."""
        failed = self.failed
        return "; ".join(gate.message for gate in failed) if failed else self.evaluation.reason

    def to_dict(self) -> dict[str, Any]:
        """The evaluation (metric, candidate and champion metrics...) with every gate, ``passed`` and ``reason``."""
        result = self.evaluation.to_dict()
        result["gates"] = [json_safe(asdict(gate)) for gate in self.gates]
        result["passed"] = self.passed
        result["reason"] = self.reason
        return result

    def details(self) -> dict[str, Any]:
        """Slices, importance, latency, flip rate and agreement (the gate list is in :meth:`to_dict`)."""
        return {key: value for key, value in self.report.to_dict().items() if key != "gates"}


def assess_candidate(
    candidate: OnnxModel,
    champion: OnnxModel | None,
    holdout: pd.DataFrame,
    spec: ModelSpec,
    *,
    candidate_bytes: bytes,
    parity: Mapping[str, Any] | None,
    parity_missing_reason: str = "",
    live_instances: Sequence[Mapping[str, Any]] | None = None,
) -> CandidateAssessment:
    """Run every gate: the primary metric against the champion, ONNX parity, then :func:`run_gates`
    (slices over ``spec.sensitive`` and ``spec.slices``, noise robustness, agreement with the
    champion, explainability, latency, size), with the spec's thresholds.

    Raises
    ------
    DataError
        If the candidate cannot score the holdout (missing target or feature columns).
    """
    evaluation = evaluate_candidate(candidate, champion, holdout, spec)
    report = run_gates(
        candidate,
        champion,
        holdout,
        spec,
        candidate_bytes=candidate_bytes,
        thresholds=thresholds_of(spec),
        live_instances=live_instances,
    )
    unit = spec.value.unit if spec.value is not None else ""
    worth = value_gate(evaluation.candidate, spec.gates.min_value_per_1000, unit)
    gates = [
        *evaluation.gates,
        *parity_gates(parity, missing_reason=parity_missing_reason),
        *report.gates,
        *([worth] if worth is not None else []),
    ]
    return CandidateAssessment(evaluation=evaluation, report=report, gates=gates)
