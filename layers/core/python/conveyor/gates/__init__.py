"""Model gates: every check a candidate passes before it is registered.

One module per kind of gate, each with the measurement and the :class:`Gate` it judges:

- :mod:`~conveyor.gates.primary`: the primary metric against the champion's on the same holdout;
- :mod:`~conveyor.gates.parity`: the scikit-learn / ONNX parity measured at training time;
- :mod:`~conveyor.gates.slices`: the largest metric gap between slices of a sensitive or slice column;
- :mod:`~conveyor.gates.robustness`: predictions that change under small input noise;
- :mod:`~conveyor.gates.agreement`: agreement with the champion, on the holdout and live requests;
- :mod:`~conveyor.gates.importance`: permutation importance of sensitive and identifier features;
- :mod:`~conveyor.gates.latency`: p99 latency on 1 and 100 rows, and the model's size;
- :mod:`~conveyor.gates.assess`: :func:`run_gates` and :func:`assess_candidate`, every gate together
  (the Evaluate stage and ``conveyor evaluate`` both call it).

:mod:`~conveyor.gates.common` holds the :class:`Gate` verdict, :class:`GateThresholds` and the
ONNX scoring helpers. Every model is scored through ONNX, with inputs built by
:mod:`conveyor.tabular` from the feature types the model was exported with, exactly as the
serving path builds them. Randomness (noise, category swaps, permutations) comes from ``numpy``
generators seeded with ``GateThresholds.seed``: the same models and holdout give the same report,
except for the latency numbers.

The functions ``agreement`` and ``latency`` re-exported here share their module's name: import
the modules with ``importlib.import_module("conveyor.gates.latency")`` (or ``from
conveyor.gates.latency import ...``), not as attributes of this package.
"""

from conveyor.gates.agreement import agreement
from conveyor.gates.assess import CandidateAssessment, GateReport, assess_candidate, run_gates, thresholds_of
from conveyor.gates.common import Gate, GateThresholds
from conveyor.gates.importance import importance_shares, permutation_importance
from conveyor.gates.latency import latency
from conveyor.gates.parity import LABEL_AGREEMENT_GATE, PARITY_GATE, parity_gates
from conveyor.gates.primary import Evaluation, evaluate_candidate
from conveyor.gates.robustness import noise_flip_rate
from conveyor.gates.slices import slice_metrics
from conveyor.jsonsafe import json_safe  # re-exported for the callers that import it from here

__all__ = [
    "LABEL_AGREEMENT_GATE",
    "PARITY_GATE",
    "CandidateAssessment",
    "Evaluation",
    "Gate",
    "GateReport",
    "GateThresholds",
    "agreement",
    "assess_candidate",
    "evaluate_candidate",
    "importance_shares",
    "json_safe",
    "latency",
    "noise_flip_rate",
    "parity_gates",
    "permutation_importance",
    "run_gates",
    "slice_metrics",
    "thresholds_of",
]
