"""The spec's ``deployment:`` section: strategies, their phases, bake checks, and errors naming the bad key."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor.errors import SpecError
from conveyor.spec import parse_spec


def _deployment(spec_dict: dict[str, Any], **deployment: Any) -> Any:
    return parse_spec({**spec_dict, "deployment": deployment}).deployment


def _error(spec_dict: dict[str, Any], **deployment: Any) -> str:
    with pytest.raises(SpecError) as caught:
        parse_spec({**spec_dict, "deployment": deployment})
    return str(caught.value)


def test_defaults_are_all_at_once_auto_with_bake_checks(spec_dict: dict[str, Any]) -> None:
    deployment = _deployment(spec_dict)
    assert deployment.strategy == "all_at_once" and deployment.approval == "auto"
    assert deployment.phases() == []
    assert deployment.approval_timeout_seconds == 3 * 86400
    bake = deployment.bake
    assert (bake.max_p99_latency_ms, bake.max_error_rate, bake.max_score_shift) == (250.0, 0.01, 0.2)
    assert (bake.min_requests, bake.max_extensions) == (100, 2)


def test_canary_linear_and_shadow_then_canary_become_phases(spec_dict: dict[str, Any]) -> None:
    canary = _deployment(spec_dict, strategy="canary", canary={"weight": 0.5, "bake_seconds": 4})
    assert canary.phases() == [{"kind": "challenger", "weight": 0.5, "bake_seconds": 4}]
    assert _deployment(spec_dict, strategy="canary").phases() == [
        {"kind": "challenger", "weight": 0.1, "bake_seconds": 600}
    ]
    linear = _deployment(spec_dict, strategy="linear", linear={"steps": [0.1, 0.5], "bake_seconds": 60})
    assert [(p["weight"], p["bake_seconds"]) for p in linear.phases()] == [(0.1, 60), (0.5, 60)]
    stride = _deployment(spec_dict, strategy="linear", linear={"step": 0.25})
    assert [p["weight"] for p in stride.phases()] == [0.25, 0.5, 0.75]
    shadow = _deployment(spec_dict, strategy="shadow_then_canary", shadow={"bake_seconds": 30}, canary={"weight": 0.2})
    assert [(p["kind"], p["weight"], p["bake_seconds"]) for p in shadow.phases()] == [
        ("shadow", 0.0, 30),
        ("challenger", 0.2, 600),
    ]


@pytest.mark.parametrize(
    ("deployment", "message"),
    [
        ({"strategy": "blue_green"}, "deployment.strategy: must be one of all_at_once, canary, linear"),
        ({"approval": "maybe"}, "deployment.approval: must be one of auto, manual"),
        ({"strategy": "canary", "canary": {"weight": 1.0}}, "deployment.canary.weight: Input should be less than 1"),
        ({"strategy": "canary", "canary": {"weight": 0}}, "deployment.canary.weight: Input should be greater than 0"),
        ({"strategy": "canary", "canary": {"bake_seconds": 0}}, "deployment.canary.bake_seconds"),
        ({"strategy": "canary", "canary": {"percent": 10}}, "deployment.canary.percent: unknown key"),
        ({"strategy": "canary", "linear": {"steps": [0.5]}}, "deployment.linear: not used by strategy canary"),
        ({"shadow": {"bake_seconds": 5}}, "deployment.shadow: not used by strategy all_at_once"),
        ({"strategy": "linear", "linear": {"steps": [0.5, 0.2]}}, "deployment.linear.steps: weights must increase"),
        ({"strategy": "linear", "linear": {"steps": []}}, "deployment.linear.steps: list at least one weight"),
        ({"strategy": "linear", "linear": {"steps": [0.2], "step": 0.1}}, "deployment.linear.steps: give either"),
        ({"strategy": "linear", "linear": {"steps": [0.2, 1.5]}}, "deployment.linear.steps[1]: Input should be less"),
        ({"bake": {"max_error_rate": 2}}, "deployment.bake.max_error_rate: Input should be less than or equal to 1"),
        ({"bake": {"min_requests": -1}}, "deployment.bake.min_requests: Input should be greater than or equal to 0"),
        ({"bake": {"max_p99": 3}}, "deployment.bake.max_p99: unknown key"),
        (
            {"approval_timeout_seconds": 10**7},
            "deployment.approval_timeout_seconds: Input should be less than or equal",
        ),
        (
            {"strategy": "canary", "canary": {"bake_seconds": 3 * 86400}},
            "deployment.bake: the bakes could last 777600 s with extensions",
        ),
    ],
)
def test_bad_deployment_keys_are_named(spec_dict: dict[str, Any], deployment: dict[str, Any], message: str) -> None:
    assert message in _error(spec_dict, **deployment)


def test_thresholds_can_be_switched_off(spec_dict: dict[str, Any]) -> None:
    bake = _deployment(spec_dict, bake={"max_score_shift": None, "max_p99_latency_ms": None}).bake
    assert bake.max_score_shift is None and bake.max_p99_latency_ms is None and bake.max_error_rate == 0.01
