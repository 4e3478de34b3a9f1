"""The ONNX parity gates: the scikit-learn / onnxruntime difference measured at training time."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from conveyor.gates.common import Gate

PARITY_GATE = "onnx_parity"
LABEL_AGREEMENT_GATE = "onnx_label_agreement"


def parity_gates(parity: Mapping[str, Any] | None, *, missing_reason: str = "") -> list[Gate]:
    """Gates on the scikit-learn / onnxruntime parity measured on the holdout at training time.

    ``parity`` is :meth:`conveyor.onnx_export.ParityReport.to_dict` (the Train stage's
    ``$.training.parity``, or ``training.json`` of ``conveyor train``), with the tolerances it was
    measured with. Classification gives two gates: ``onnx_parity`` (largest probability difference
    against ``tolerance``) and ``onnx_label_agreement`` (share of identical labels, which must be 1).
    Regression gives one: ``onnx_parity`` with the worst value's share of its allowed difference
    ``tolerance + rtol * |value|`` (at most 1), the largest absolute and relative differences in
    its message.

    Without a measurement (no scikit-learn model at hand, e.g. ``conveyor evaluate`` on ONNX files
    alone) ``onnx_parity`` passes with no value and ``missing_reason`` as its message: it was not
    measured, and says so.
    """
    if parity is None:
        reason = missing_reason or "no parity measurement"
        return [Gate(PARITY_GATE, None, None, True, f"not measured: {reason}")]
    diff, rows = float(parity["max_abs_diff"]), int(parity.get("rows", 0))
    agreement = float(parity.get("label_agreement", 1.0))
    tolerance = float(parity.get("tolerance", 1e-5))
    if parity.get("task") == "regression":
        rtol = float(parity.get("rtol", 0.0))
        used = parity.get("tolerance_used")
        used = float(used) if used is not None else diff / tolerance
        passed = used <= 1.0 and agreement == 1.0
        sign = "<=" if passed else ">"
        relative = parity.get("max_rel_diff")
        message = (
            f"{agreement:.2%} of {rows} holdout values within {tolerance:.0e} + {rtol:.0e} x |value|; "
            f"worst at {used:.2f} of its allowance {sign} 1 (max |sklearn - onnx| {diff:.2e}"
            + (f", max relative {float(relative):.2e})" if relative is not None else ")")
        )
        return [Gate(PARITY_GATE, used, 1.0, passed, message)]
    passed = diff <= tolerance
    sign = "<=" if passed else ">"
    probability = Gate(
        PARITY_GATE,
        diff,
        tolerance,
        passed,
        f"max |sklearn - onnx| probability {diff:.2e} {sign} {tolerance:.0e} on {rows} holdout rows",
    )
    agreed = agreement == 1.0
    labels = Gate(
        LABEL_AGREEMENT_GATE,
        agreement,
        1.0,
        agreed,
        f"sklearn and onnx labels agree on {agreement:.2%} of {rows} holdout rows" + ("" if agreed else " (< 100%)"),
    )
    return [probability, labels]
