"""The board's charts: each one metric of namespace ``Conveyor`` with one statistic, per version
(dimensions ``{model, version}``) or per model (``{model}``).

The local board reads these series from the local cloud's CloudWatch store; the CloudWatch dashboard
(``infra/constructs/dashboard.py``) turns each panel into a SEARCH expression over every model, so
models that appear after a deploy are on it without one.
"""

from __future__ import annotations

from dataclasses import dataclass

from conveyor.monitoring import metrics as m

NAMESPACE = m.NAMESPACE


@dataclass(frozen=True)
class Panel:
    key: str  # id in the board document
    title: str
    metric: str
    stat: str  # a CloudWatch statistic: Sum, Average, SampleCount, Maximum, pNN
    by_version: bool  # dimensions {model, version}, else {model}
    unit: str = ""
    reference: str = ""  # a horizontal line drawn from the registry ("holdout": the serving version's metric)

    @property
    def dimensions(self) -> tuple[str, ...]:
        return ("model", "version") if self.by_version else ("model",)


PANELS: tuple[Panel, ...] = (
    Panel("requests", "Requests", m.LATENCY, "SampleCount", True, "per period"),
    Panel("latency_p50", "Latency p50", m.LATENCY, "p50", True, "ms"),
    Panel("latency_p99", "Latency p99", m.LATENCY, "p99", True, "ms"),
    Panel("error_rate", "5xx rate", m.ERRORS, "Average", True, "share"),
    Panel("drifted_features", "Drifted features (live)", m.LIVE_DRIFTED_FEATURES, "Maximum", False),
    Panel("domain_auc", "Domain classifier AUC (live)", m.LIVE_DOMAIN_CLASSIFIER_AUC, "Maximum", False),
    Panel("live_metric", "Live metric vs holdout", m.LIVE_METRIC, "Average", True, reference="holdout"),
    Panel("value", "Value per 1,000 predictions (live)", m.LIVE_VALUE_PER_1000, "Average", True),
)
PANEL_BY_KEY = {panel.key: panel for panel in PANELS}


def search_expression(panel: Panel, period: int, model: str | None = None) -> str:
    """The CloudWatch SEARCH expression of a panel over every model (or one): one line per dimension set."""
    schema = "{" + ",".join((NAMESPACE, *panel.dimensions)) + "}"
    terms = [f'MetricName="{panel.metric}"']
    if model is not None:
        terms.append(f'model="{model}"')
    return f"SEARCH('{schema} {' '.join(terms)}', '{panel.stat}', {period})"
