"""The spec's ``value:`` section: what a prediction earns or costs, in the business's own unit.

Classifiers give a value per outcome on the positive class (``true_positive``, ``false_positive``,
``false_negative``, ``true_negative``; costs are negative values); regressors give a
``cost_per_unit_error`` (the cost of one unit of absolute error). :func:`conveyor.value.value_per_1000`
turns either into value per 1,000 predictions, on the holdout at registration and on labelled live
traffic in the monitor.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

CLASSIFICATION_OUTCOMES = ("true_positive", "false_positive", "false_negative", "true_negative")


class ValueSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Classification: value of each outcome (unset outcomes are worth 0).
    true_positive: float | None = None
    false_positive: float | None = None
    false_negative: float | None = None
    true_negative: float | None = None
    # Regression: cost of one unit of absolute error (value per prediction = -cost x |error|).
    cost_per_unit_error: Annotated[float, Field(ge=0.0)] | None = None
    unit: Annotated[str, Field(max_length=16)] = ""  # shown beside the numbers ("EUR", "USD", "visits")

    @model_validator(mode="after")
    def _one_form(self) -> ValueSpec:
        outcomes = [getattr(self, name) for name in CLASSIFICATION_OUTCOMES]
        if self.cost_per_unit_error is not None and any(v is not None for v in outcomes):
            raise ValueError(
                "give either outcome values (classification) or cost_per_unit_error (regression), not both"
            )
        if self.cost_per_unit_error is None and all(v is None for v in outcomes):
            raise ValueError(
                "give the value of true_positive, false_positive, false_negative, true_negative (classification) "
                "or cost_per_unit_error (regression)"
            )
        return self

    @property
    def task(self) -> str:
        """The task this section is written for."""
        return "regression" if self.cost_per_unit_error is not None else "classification"

    def outcome_values(self) -> dict[str, float]:
        """Each classification outcome's value (0 when unset)."""
        return {name: float(getattr(self, name) or 0.0) for name in CLASSIFICATION_OUTCOMES}


def check_value_fits(value: ValueSpec | None, task: str, min_value_per_1000: float | None) -> None:
    """``value`` matches the spec's task, and the value gate has a value section to read.

    Raises
    ------
    ValueError
        With the dotted path of the bad key, as every spec error.
    """
    if value is not None and value.task != task:
        wanted = "cost_per_unit_error" if task == "regression" else "outcome values (true_positive, ...)"
        raise ValueError(f"value: a {task} model's value section gives {wanted}")
    if min_value_per_1000 is not None and value is None:
        raise ValueError("gates.min_value_per_1000: needs a value: section saying what each prediction is worth")
