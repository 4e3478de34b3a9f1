"""The circuit breaker's states with an injected clock: closed, open, half-open, closed again; the
error-rate threshold; and the settings as the spec and the serving contract carry them."""

from __future__ import annotations

import pytest

from conveyor.breaker import CLOSED, HALF_OPEN, OPEN, Breaker, BreakerSettings
from conveyor.contract import ServingContract, contract_from_spec
from conveyor.spec import SpecError, load_spec, parse_spec, spec_hash
from tests.conftest import DEMO_SPEC


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _breaker(**settings: float) -> tuple[Breaker, Clock]:
    clock = Clock()
    return Breaker(BreakerSettings(**settings), clock), clock  # type: ignore[arg-type]


def test_consecutive_failures_open_it_and_a_trial_after_the_cooldown_closes_it() -> None:
    breaker, clock = _breaker(failures=3, cooldown_seconds=30)
    for _ in range(2):
        assert breaker.allow()
        assert breaker.record(failed=True) is False
    assert breaker.state == CLOSED and breaker.failures == 2
    assert breaker.record(failed=True) is True  # the third in a row opens it
    assert breaker.state == OPEN and breaker.opened_at == 100.0 and breaker.openings == 1
    clock.now += 29.9
    assert not breaker.allow() and breaker.state == OPEN
    clock.now += 0.1
    assert breaker.state == HALF_OPEN
    assert breaker.allow()  # the one trial request
    assert not breaker.allow()  # the others are still answered by the champion
    assert breaker.record(failed=False) is False
    assert breaker.state == CLOSED and breaker.failures == 0
    assert breaker.allow() and breaker.allow()


def test_a_failed_trial_opens_it_again_for_another_cooldown() -> None:
    breaker, clock = _breaker(failures=1, cooldown_seconds=10)
    assert breaker.record(failed=True) is True
    clock.now += 10
    assert breaker.allow()
    assert breaker.record(failed=True) is True
    assert breaker.state == OPEN and breaker.opened_at == clock.now and breaker.openings == 2
    clock.now += 9
    assert not breaker.allow()
    clock.now += 1
    assert breaker.allow() and breaker.record(failed=False) is False and breaker.state == CLOSED


def test_a_success_resets_the_consecutive_count() -> None:
    breaker, _ = _breaker(failures=3, min_requests=100)
    for _ in range(10):
        breaker.record(failed=True)
        breaker.record(failed=True)
        breaker.record(failed=False)
    assert breaker.state == CLOSED


def test_an_error_rate_above_the_threshold_in_the_window_opens_it() -> None:
    breaker, _ = _breaker(failures=100, window_seconds=10, error_rate=0.5, min_requests=10)
    outcomes = [True, False] * 4 + [True]  # 5 of 9 failed: too few requests to judge a rate
    for failed in outcomes:
        assert breaker.record(failed=failed) is False
    assert breaker.record(failed=True) is True  # 6 of 10 > 50%
    assert breaker.state == OPEN


def test_only_the_window_counts_for_the_rate() -> None:
    breaker, clock = _breaker(failures=100, window_seconds=10, error_rate=0.5, min_requests=4)
    for _ in range(3):
        breaker.record(failed=True)
        clock.now += 6  # each failure leaves the window before the next two arrive
        breaker.record(failed=False)
    assert breaker.state == CLOSED
    breaker.record(failed=True)
    breaker.record(failed=True)
    assert breaker.state == OPEN  # 3 of the last 4 (within 10 s) failed


def test_a_trial_that_never_reports_frees_its_place_after_a_cooldown() -> None:
    breaker, clock = _breaker(failures=1, cooldown_seconds=5)
    breaker.record(failed=True)
    clock.now += 5
    assert breaker.allow() and not breaker.allow()
    clock.now += 5
    assert breaker.allow()


def test_describe_reads_opened_at_on_the_wall_clock() -> None:
    breaker, _ = _breaker(failures=1)
    assert breaker.describe(1000.0) == {"state": CLOSED, "opened_at": None, "failures": 0}
    breaker.record(failed=True)
    assert breaker.describe(1000.0) == {"state": OPEN, "opened_at": 1100.0, "failures": 1}


def test_the_spec_section_has_defaults_and_reaches_the_serving_contract() -> None:
    spec = load_spec(DEMO_SPEC.read_bytes())
    assert spec.serving.breaker.failures == 5 and spec.serving.breaker.window_seconds == 10
    assert spec.serving.breaker.cooldown_seconds == 30
    default = contract_from_spec(spec)
    assert default.breaker == BreakerSettings()
    data = spec.model_dump(mode="json")
    data["serving"] = {"breaker": {"failures": 2, "window_seconds": 4, "cooldown_seconds": 7}}
    custom = contract_from_spec(parse_spec(data))
    read = ServingContract.from_json(custom.to_json())
    assert read.breaker == BreakerSettings(failures=2, window_seconds=4, cooldown_seconds=7)
    # A contract written before the section existed reads as the defaults.
    old = default.to_dict()
    del old["serving"]
    assert ServingContract.from_dict(old).breaker == BreakerSettings()
    # A spec that leaves the section out keeps the hash it had before the section existed.
    assert spec_hash(spec) != spec_hash(parse_spec(data))
    data.pop("serving")
    assert spec_hash(parse_spec(data)) == spec_hash(spec)


@pytest.mark.parametrize("bad", [{"failures": 0}, {"cooldown_seconds": 0}, {"error_rate": 1.5}, {"typo": 1}])
def test_bad_breaker_settings_are_named(bad: dict[str, float]) -> None:
    data = load_spec(DEMO_SPEC.read_bytes()).model_dump(mode="json")
    data["serving"] = {"breaker": bad}
    with pytest.raises(SpecError, match=r"serving\.breaker"):
        parse_spec(data)
