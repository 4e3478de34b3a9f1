"""What the gate knows beyond the file: earlier arrivals and the reference profile."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ValidationContext:
    """What the gate knows beyond the file: earlier arrivals and the reference profile.

    Parameters
    ----------
    usual_rows
        The usual row count of an arrival (e.g. the reference profile's rows); far fewer warns.
    accepted_hashes
        Sha256 (hex) of every object already accepted for the model; a repeat is rejected.
    reference_categories
        Feature -> categories seen in the reference data; others are reported (warn) when the
        spec has no ``allowed`` list for that feature.
    """

    usual_rows: int | None = None
    accepted_hashes: frozenset[str] = frozenset()
    reference_categories: dict[str, list[str]] | None = None

    @classmethod
    def from_profile(
        cls, profile: Mapping[str, Any], accepted_hashes: frozenset[str] = frozenset()
    ) -> ValidationContext:
        """From a reference profile (``profile.json`` of ``conveyor.profile``, or the shorter form
        ``{"rows": n, "features": {name: {"categories": {value: count}}}}``).

        A categorical profile that lumped rare values into ``__other__`` is not a complete list of
        the known categories, so that feature gets no unseen-category check.
        """
        rows = profile.get("rows")
        categories: dict[str, list[str]] = {}
        features = profile.get("features")
        if isinstance(features, Mapping):
            for name, item in features.items():
                if not isinstance(item, Mapping):
                    continue
                known = item.get("categories", item.get("frequencies"))
                if isinstance(known, Mapping | list) and "__other__" not in known:
                    categories[str(name)] = [str(value) for value in known]
        return cls(
            usual_rows=int(rows) if isinstance(rows, int | float) and not isinstance(rows, bool) else None,
            accepted_hashes=accepted_hashes,
            reference_categories=categories or None,
        )
