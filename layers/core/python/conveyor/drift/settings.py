"""The thresholds of the drift checks: the spec's ``drift:`` section, or defaults."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def _setting(section: Any, key: str, default: Any) -> Any:
    if section is None:
        return default
    value = section.get(key, default) if isinstance(section, dict) else getattr(section, key, default)
    return default if value is None else value


@dataclass(frozen=True)
class DriftSettings:
    """Thresholds of the drift checks (the spec's ``drift:`` section, or these defaults)."""

    psi_threshold: float = 0.2
    ks_threshold: float = 0.1
    js_threshold: float = 0.1
    alpha: float = 0.01
    domain_classifier: bool = True
    auc_threshold: float = 0.6
    max_rows: int = 20000
    max_drifted_share: float = 0.0

    @classmethod
    def from_spec(cls, spec: Any) -> DriftSettings:
        """Settings from ``spec.drift`` (an object or a mapping); defaults for what is absent."""
        section = getattr(spec, "drift", None)
        default = cls()
        if section is None:
            return default
        classifier = _setting(section, "domain_classifier", None)
        return cls(
            psi_threshold=float(_setting(section, "psi_threshold", default.psi_threshold)),
            ks_threshold=float(_setting(section, "ks_threshold", default.ks_threshold)),
            js_threshold=float(_setting(section, "js_threshold", default.js_threshold)),
            alpha=float(_setting(section, "alpha", default.alpha)),
            domain_classifier=bool(_setting(classifier, "enabled", default.domain_classifier)),
            auc_threshold=float(_setting(classifier, "auc_threshold", default.auc_threshold)),
            max_rows=int(_setting(classifier, "max_rows", default.max_rows)),
            max_drifted_share=float(_setting(section, "max_drifted_share", default.max_drifted_share)),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "psi_threshold": self.psi_threshold,
            "ks_threshold": self.ks_threshold,
            "js_threshold": self.js_threshold,
            "alpha": self.alpha,
            "domain_classifier": {
                "enabled": self.domain_classifier,
                "auc_threshold": self.auc_threshold,
                "max_rows": self.max_rows,
            },
            "max_drifted_share": self.max_drifted_share,
        }
