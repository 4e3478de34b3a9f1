"""Deployments: the plan a version follows to production, the bake analysis, approvals.

A deployment moves a registered version to production by the spec's ``deployment:`` section:
every strategy is a list of *phases* (shadow scoring, or a challenger with a traffic weight),
each baked for a while and checked on the captured requests of its window, then a promotion.
The pipeline's state machine runs the plan (``infra/pipeline_definition.py``); the functions
here decide, and touch storage only through the ports (``ObjectStore`` for the capture bucket,
``Table`` for the deployment records, ``TaskCallbacks`` for approvals).

- :mod:`~conveyor.deployment.plan`: the plan and its phases;
- :mod:`~conveyor.deployment.capture_reader`: the capture records of a window;
- :mod:`~conveyor.deployment.request_stats`: requests, errors, latency and scores of one version,
  and the (debiased) shift of its scores against the champion's;
- :mod:`~conveyor.deployment.bake`: the bake's verdict from those;
- :mod:`~conveyor.deployment.records`: the deployment records in the registry table;
- :mod:`~conveyor.deployment.approval`: a reviewer's approval or rejection;
- :mod:`~conveyor.deployment.errors`: the errors the stages map to retries and failures.

The deployment's zip functions import this package: it needs numpy, never pandas or scikit-learn.
"""

from typing import TYPE_CHECKING, Any

from conveyor.deployment.approval import REJECTED_ERROR, approve, reject
from conveyor.deployment.capture_reader import capture_prefixes, read_capture, read_capture_prefix
from conveyor.deployment.errors import ApprovalExpired, DeploymentError, DeploymentInProgress, NoApprovalPending
from conveyor.deployment.plan import describe_phase, next_phase, plan_deployment
from conveyor.deployment.records import FINISHED, IN_PROGRESS, Deployments, deployment_sk
from conveyor.workflow import BREACH, EXTEND, INSUFFICIENT, INTERRUPTED

if TYPE_CHECKING:
    from conveyor.deployment.bake import PASS, BakeAssessment, Checks, assess_bake
    from conveyor.deployment.request_stats import SHIFT_BINS, ScoreShift, VersionStats, score_shift, version_stats

# The bake and the version statistics need numpy; the approval path (``conveyor approve``, ``status``)
# does not, so they load on first use (PEP 562) instead of with the package.
_LAZY = {
    "PASS": "bake",
    "BakeAssessment": "bake",
    "Checks": "bake",
    "assess_bake": "bake",
    "SHIFT_BINS": "request_stats",
    "ScoreShift": "request_stats",
    "VersionStats": "request_stats",
    "score_shift": "request_stats",
    "version_stats": "request_stats",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'conveyor.deployment' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"conveyor.deployment.{module}"), name)


__all__ = [
    "BREACH",
    "EXTEND",
    "FINISHED",
    "INSUFFICIENT",
    "INTERRUPTED",
    "IN_PROGRESS",
    "PASS",
    "REJECTED_ERROR",
    "SHIFT_BINS",
    "ApprovalExpired",
    "BakeAssessment",
    "Checks",
    "DeploymentError",
    "DeploymentInProgress",
    "Deployments",
    "NoApprovalPending",
    "ScoreShift",
    "VersionStats",
    "approve",
    "assess_bake",
    "capture_prefixes",
    "deployment_sk",
    "describe_phase",
    "next_phase",
    "plan_deployment",
    "read_capture",
    "read_capture_prefix",
    "reject",
    "score_shift",
    "version_stats",
]
