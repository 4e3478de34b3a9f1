"""The spec's ``deployment:`` section: strategy (all at once, canary, linear, shadow then canary),
approval, and the bake checks of each phase (``conveyor.deployment``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from conveyor.spec_base import Strict as _Strict

# Longest a deployment may wait for a reviewer, and the longest its bakes may last in all: the pipeline's
# state machine (which runs the deployment) times out after both plus training (infra.constants.PIPELINE_TIMEOUT).
MAX_APPROVAL_TIMEOUT_SECONDS = 7 * 86400
MAX_TOTAL_BAKE_SECONDS = 7 * 86400


class CanaryPlan(_Strict):
    """``weight`` of the traffic to the new version for ``bake_seconds``, then all of it."""

    weight: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.1
    bake_seconds: Annotated[int, Field(ge=1)] = 600


class LinearPlan(_Strict):
    """Traffic shifted in steps (each baked for ``bake_seconds``), then all of it.

    ``steps`` lists the challenger's weights (increasing, each in (0, 1)); or ``step`` gives an even
    stride: ``step: 0.25`` is ``steps: [0.25, 0.5, 0.75]``.
    """

    steps: list[Annotated[float, Field(gt=0.0, lt=1.0)]] | None = None
    step: Annotated[float, Field(gt=0.0, lt=1.0)] | None = None
    bake_seconds: Annotated[int, Field(ge=1)] = 600

    @model_validator(mode="after")
    def _one_form(self) -> LinearPlan:
        if self.steps is not None and self.step is not None:
            raise ValueError("steps: give either steps (a list of weights) or step (an even stride), not both")
        if self.steps is not None:
            if not self.steps:
                raise ValueError("steps: list at least one weight")
            if any(later <= earlier for earlier, later in zip(self.steps, self.steps[1:], strict=False)):
                raise ValueError(f"steps: weights must increase, got {self.steps}")
        return self

    def weights(self) -> list[float]:
        if self.steps is not None:
            return list(self.steps)
        stride = self.step if self.step is not None else 0.25
        weights: list[float] = []
        while stride * (len(weights) + 1) < 1.0 - 1e-9:
            weights.append(round(stride * (len(weights) + 1), 9))
        return weights


class ShadowPlan(_Strict):
    """The new version scores every request beside the champion (never answering) for ``bake_seconds``."""

    bake_seconds: Annotated[int, Field(ge=1)] = 600


class BakeChecks(_Strict):
    """What every bake checks, on the new version's captured requests since its phase began.

    A threshold set to null is not checked. ``max_score_shift`` is a debiased PSI of the new version's
    scores against the champion's over the same window (``conveyor.deployment``). Below ``min_requests``
    requests there is no decision: the bake is extended (by its own length, at most ``max_extensions``
    times), and a version still short of evidence then is rolled back, never promoted: missing evidence
    is not evidence of health. A breach that more requests could not undo (e.g. more errors than
    ``max_error_rate`` x ``min_requests``) is decided at once.
    """

    max_p99_latency_ms: Annotated[float, Field(gt=0.0)] | None = 250.0
    max_error_rate: Annotated[float, Field(ge=0.0, le=1.0)] | None = 0.01
    max_score_shift: Annotated[float, Field(gt=0.0)] | None = 0.2
    min_requests: Annotated[int, Field(ge=0)] = 100
    max_extensions: Annotated[int, Field(ge=0, le=10)] = 2


class Deployment(_Strict):
    """How a new version reaches production (``conveyor.deployment`` builds the plan the pipeline runs).

    ``strategy``: ``all_at_once`` (promote), ``canary`` (``canary.weight`` for ``canary.bake_seconds``, then
    all), ``linear`` (``linear`` steps, each baked), ``shadow_then_canary`` (``shadow.bake_seconds`` of
    shadow scoring, then the canary). ``approval: manual`` waits for ``conveyor approve`` / ``reject`` (at
    most ``approval_timeout_seconds``) before any traffic moves.
    """

    strategy: Literal["all_at_once", "canary", "linear", "shadow_then_canary"] = "all_at_once"
    approval: Literal["auto", "manual"] = "auto"
    approval_timeout_seconds: Annotated[int, Field(ge=1, le=MAX_APPROVAL_TIMEOUT_SECONDS)] = 3 * 86400
    canary: CanaryPlan | None = None
    linear: LinearPlan | None = None
    shadow: ShadowPlan | None = None
    bake: BakeChecks = Field(default_factory=BakeChecks)

    @model_validator(mode="after")
    def _sections_fit_the_strategy(self) -> Deployment:
        used = {
            "all_at_once": set(),
            "canary": {"canary"},
            "linear": {"linear"},
            "shadow_then_canary": {"shadow", "canary"},
        }[self.strategy]
        for section in ("canary", "linear", "shadow"):
            if getattr(self, section) is not None and section not in used:
                raise ValueError(f"{section}: not used by strategy {self.strategy} (remove it or change strategy)")
        if "canary" in used and self.canary is None:
            self.canary = CanaryPlan()
        if "linear" in used and self.linear is None:
            self.linear = LinearPlan()
        if "shadow" in used and self.shadow is None:
            self.shadow = ShadowPlan()
        worst = self.total_bake_seconds() * (1 + self.bake.max_extensions)
        if worst > MAX_TOTAL_BAKE_SECONDS:
            raise ValueError(
                f"bake: the bakes could last {worst} s with extensions, more than {MAX_TOTAL_BAKE_SECONDS} s "
                "(7 days); shorten bake_seconds or lower bake.max_extensions"
            )
        return self

    def phases(self) -> list[dict[str, Any]]:
        """The trial phases in order: ``{"kind": "shadow"|"challenger", "weight", "bake_seconds"}``."""
        phases: list[dict[str, Any]] = []
        if self.shadow is not None:
            phases.append({"kind": "shadow", "weight": 0.0, "bake_seconds": self.shadow.bake_seconds})
        if self.canary is not None:
            phases.append(
                {"kind": "challenger", "weight": self.canary.weight, "bake_seconds": self.canary.bake_seconds}
            )
        if self.linear is not None:
            phases += [
                {"kind": "challenger", "weight": w, "bake_seconds": self.linear.bake_seconds}
                for w in self.linear.weights()
            ]
        return phases

    def total_bake_seconds(self) -> int:
        return sum(int(p["bake_seconds"]) for p in self.phases())
