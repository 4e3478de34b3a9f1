"""What a drift check reports: per feature, the domain classifier, and the whole report
(its verdict, JSON document, messages and CloudWatch-style metrics)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from conveyor.drift.settings import DriftSettings
from conveyor.jsonsafe import json_safe


@dataclass
class FeatureDrift:
    """The drift of one feature: effect sizes, tests, thresholds and the decision."""

    name: str
    type: str
    kind: str  # numeric | categorical | skipped
    method: str
    psi: float | None = None
    ks: float | None = None
    ks_pvalue: float | None = None
    js: float | None = None
    chi2_pvalue: float | None = None
    pvalue: float | None = None  # the feature's raw p-value
    pvalue_adjusted: float | None = None  # Holm-adjusted over the report's features
    thresholds: dict[str, float] = field(default_factory=dict)
    reference: dict[str, Any] = field(default_factory=dict)
    current: dict[str, Any] = field(default_factory=dict)
    effect_exceeded: bool = False
    significant: bool = False
    drifted: bool = False
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "kind": self.kind,
            "method": self.method,
            "values": {"psi": self.psi, "ks": self.ks, "js": self.js},
            "thresholds": self.thresholds,
            "pvalues": {"ks": self.ks_pvalue, "chi2": self.chi2_pvalue},
            "pvalue": self.pvalue,
            "pvalue_adjusted": self.pvalue_adjusted,
            "reference": self.reference,
            "current": self.current,
            "effect_exceeded": self.effect_exceeded,
            "significant": self.significant,
            "drifted": self.drifted,
            "message": self.message,
        }


@dataclass
class DomainClassifierResult:
    """Whether a classifier can tell reference rows from current rows."""

    enabled: bool
    auc: float | None = None
    threshold: float = 0.6
    pvalue: float | None = None
    drifted: bool = False
    top_features: list[dict[str, float | str]] = field(default_factory=list)
    reference_source: str = "profile_sample"  # or "rows"
    rows_reference: int = 0
    rows_current: int = 0
    seconds: float = 0.0
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "auc": self.auc,
            "threshold": self.threshold,
            "pvalue": self.pvalue,
            "drifted": self.drifted,
            "top_features": self.top_features,
            "reference_source": self.reference_source,
            "rows_reference": self.rows_reference,
            "rows_current": self.rows_current,
            "seconds": round(self.seconds, 3),
            "message": self.message,
        }


@dataclass
class DriftReport:
    """Per-feature drift, the domain classifier and the verdict."""

    features: list[FeatureDrift]
    domain_classifier: DomainClassifierResult
    rows_reference: int
    rows_current: int
    settings: DriftSettings
    warnings: list[str] = field(default_factory=list)

    @property
    def drifted_features(self) -> list[str]:
        return [f.name for f in self.features if f.drifted]

    @property
    def checked_features(self) -> list[str]:
        return [f.name for f in self.features if f.kind != "skipped"]

    @property
    def drifted_share(self) -> float:
        checked = len(self.checked_features)
        return len(self.drifted_features) / checked if checked else 0.0

    @property
    def drifted(self) -> bool:
        by_features = bool(self.drifted_features) and self.drifted_share > self.settings.max_drifted_share
        return by_features or self.domain_classifier.drifted

    @property
    def verdict(self) -> str:
        return "drift" if self.drifted else "no_drift"

    @property
    def summary(self) -> str:
        names = self.drifted_features
        checked = len(self.checked_features)
        head = f"{self.verdict}: {len(names)} of {checked} features drifted"
        if names:
            head += f" ({', '.join(names)})"
        dc = self.domain_classifier
        if dc.enabled and dc.auc is not None:
            op = ">" if dc.auc > dc.threshold else "<="
            head += f"; domain classifier AUC {dc.auc:.3f} {op} {dc.threshold:.2f}"
            if dc.drifted and dc.top_features:
                head += f" (top: {', '.join(str(t['name']) for t in dc.top_features[:3])})"
        return head + f"; {self.rows_current} rows vs reference of {self.rows_reference}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able (non-finite numbers become ``None``)."""
        return json_safe(
            {
                "verdict": self.verdict,
                "summary": self.summary,
                "drifted_features": self.drifted_features,
                "drifted_share": self.drifted_share,
                "rows_reference": self.rows_reference,
                "rows_current": self.rows_current,
                "features": [f.to_dict() for f in self.features],
                "domain_classifier": self.domain_classifier.to_dict(),
                "settings": self.settings.to_dict(),
                "warnings": self.warnings,
            }
        )

    def metrics(self, model: str) -> list[tuple[str, dict[str, str], float]]:
        """CloudWatch-style datapoints ``(metric_name, dimensions, value)`` for this report."""
        points: list[tuple[str, dict[str, str], float]] = []
        for feature in self.features:
            dims = {"Model": model, "Feature": feature.name}
            if feature.psi is not None:
                points.append(("FeaturePSI", dims, feature.psi))
            if feature.ks is not None:
                points.append(("FeatureKS", dims, feature.ks))
            if feature.js is not None:
                points.append(("FeatureJS", dims, feature.js))
            if feature.kind != "skipped":
                points.append(("FeatureDrifted", dims, 1.0 if feature.drifted else 0.0))
        model_dims = {"Model": model}
        points.append(("DriftedFeatures", model_dims, float(len(self.drifted_features))))
        points.append(("DriftedFeatureShare", model_dims, self.drifted_share))
        if self.domain_classifier.auc is not None:
            points.append(("DomainClassifierAUC", model_dims, self.domain_classifier.auc))
        points.append(("DriftDetected", model_dims, 1.0 if self.drifted else 0.0))
        points.append(("DriftRowsChecked", model_dims, float(self.rows_current)))
        return points


def format_p(p: float | None) -> str:
    if p is None:
        return "n/a"
    return f"{p:.2g}" if p >= 1e-3 else f"{p:.0e}"


def _cmp(value: float, threshold: float) -> str:
    return f"{value:.2f} {'>' if value > threshold else '<='} {threshold:.2f}"


def feature_message(f: FeatureDrift, alpha: float) -> str:
    if f.kind == "skipped":
        return f.message
    if f.kind == "numeric":
        assert f.psi is not None and f.ks is not None
        effect = f"PSI {_cmp(f.psi, f.thresholds['psi'])}, KS {_cmp(f.ks, f.thresholds['ks'])}"
    else:
        assert f.js is not None
        effect = f"JS {_cmp(f.js, f.thresholds['js'])}"
    text = f"{f.name}: {effect} (p={format_p(f.pvalue_adjusted)})"
    if f.drifted:
        return text
    if f.effect_exceeded:
        return text + f"; not significant at alpha {alpha:g}, no drift"
    if f.significant:
        return text + "; significant but below the effect thresholds, no drift"
    return text + "; no drift"
