"""The serving contract: derived from the spec, round-tripped as JSON, validating requests."""

import math

import pytest
import yaml

from conveyor import contract as contract_module
from conveyor import spec as spec_module
from conveyor import tabular
from conveyor.contract import MASK, ContractViolation, ServingContract, TooMany, contract_from_spec
from conveyor.spec import parse_spec
from tests.unit.conftest import SPEC_PATH

ROW = {
    "age": 40,
    "hhninc": 3.2,
    "educ": 12,
    "female": True,
    "married": 1,
    "kids": 0.0,
    "outwork": "no",
    "self": False,
    "edlevel": "2",
}


@pytest.fixture
def contract() -> ServingContract:
    data = yaml.safe_load(SPEC_PATH.read_text())
    data["capture"] = {"sample_rate": 0.25, "pii": ["hhninc"]}
    data["features"]["region"] = {"type": "category", "nullable": True, "mapping": {"old-north": "north"}}
    data["features"]["region"]["allowed"] = ["north", "south"]
    data["features"]["visits"] = {"type": "integer", "range": [0, 10], "nullable": True}
    data["features"]["seen"] = {"type": "datetime", "nullable": True}
    return contract_from_spec(parse_spec(data))


def test_the_contract_carries_what_serving_needs_of_the_spec(contract):
    assert contract.model == "doctor-visits" and contract.task == "classification"
    assert contract.features["age"].range == (25.0, 64.0) and not contract.features["age"].nullable
    assert contract.features["edlevel"].allowed == {"1", "2", "3", "4"}
    assert contract.features["hhninc"].sentinels == {"-1", "9999"}
    assert contract.masked == {"hhninc", "id", "Unnamed: 0"}
    assert {"id", "year", "hospvis", "docvis"} <= contract.ignored
    assert contract.sample_rate == 0.25 and len(contract.spec_hash) == 64


def test_json_round_trip_is_canonical(contract):
    data = contract.to_json()
    again = ServingContract.from_json(data)
    assert again == contract and again.to_json() == data


def test_a_valid_row_becomes_model_values(contract):
    scoring = contract.columns([ROW], 10)
    assert scoring.columns["female"] == [1.0] and scoring.columns["kids"] == [0.0]
    assert scoring.columns["outwork"] == [0.0] and scoring.columns["edlevel"] == ["2"]
    assert scoring.columns["region"] == [""] and math.isnan(scoring.columns["visits"][0])
    assert scoring.warnings == []


def test_required_types_and_allowed_values_are_refused_with_field_paths(contract):
    rows = [
        {**ROW, "age": None},
        {k: v for k, v in ROW.items() if k != "educ"},
        {**ROW, "edlevel": "7"},
        {**ROW, "female": 0.5},
        {**ROW, "visits": 2.5},
        {**ROW, "region": "east"},
        {**ROW, "seen": "last tuesday"},
        {**ROW, "surprise": 1},
    ]
    with pytest.raises(ContractViolation) as caught:
        contract.columns(rows, 10)
    assert [(d["field"], d["message"].split(";")[0]) for d in caught.value.details] == [
        ("instances[0].age", "required"),
        ("instances[1].educ", "required"),
        ("instances[2].edlevel", "must be one of 1, 2, 3, 4"),
        ("instances[3].female", "must be true or false (or 1/0)"),
        ("instances[4].visits", "must be an integer, got 2.5"),
        ("instances[5].region", "must be one of north, south"),
        ("instances[6].seen", "must be an ISO 8601 date-time or epoch seconds"),
        ("instances[7]", "unknown fields: surprise"),
    ]


def test_out_of_range_values_are_served_with_warnings(contract):
    scoring = contract.columns([ROW, {**ROW, "age": 90}, {**ROW, "visits": 11}], 10)
    assert scoring.columns["age"] == [40.0, 90.0, 40.0]
    assert [(w["row"], w["field"]) for w in scoring.warnings] == [(1, "age"), (2, "visits")]
    assert "outside the training range [25, 64]" in scoring.warnings[0]["message"]


def _with_sentinels(contract: ServingContract, **features: dict) -> ServingContract:
    rules = dict(contract.features)
    for name, changes in features.items():
        rules[name] = contract_module.FeatureRule.from_dict({**rules[name].to_dict(), **changes})
    return ServingContract.from_dict({**contract.to_dict(), "features": {n: r.to_dict() for n, r in rules.items()}})


def test_a_declared_sentinel_is_scored_as_missing_with_a_warning(contract):
    nullable = _with_sentinels(
        contract,
        hhninc={"nullable": True},
        region={"sentinels": ["unknown"]},
        visits={"sentinels": ["99"]},
    )
    rows = [
        {**ROW, "hhninc": -1, "region": "unknown", "visits": 99},
        {**ROW, "hhninc": "9999", "region": " unknown ", "visits": 99.0},
        {**ROW, "hhninc": None, "region": None, "visits": None},
    ]
    scoring = nullable.columns(rows, 10)
    assert all(math.isnan(v) for v in scoring.columns["hhninc"]) and scoring.columns["region"] == ["", "", ""]
    assert all(math.isnan(v) for v in scoring.columns["visits"])
    warned = [(w["row"], w["field"]) for w in scoring.warnings]
    assert warned == [(0, "hhninc"), (0, "region"), (0, "visits"), (1, "hhninc"), (1, "region"), (1, "visits")]
    assert all("declared in the spec" in w["message"] and "scored as missing" in w["message"] for w in scoring.warnings)


def test_a_declared_sentinel_in_a_non_nullable_field_is_refused_as_a_null_is(contract):
    with pytest.raises(ContractViolation) as caught:
        contract.columns([{**ROW, "hhninc": -1}], 10)
    assert caught.value.details[0]["field"] == "instances[0].hhninc"
    assert "declared sentinel" in caught.value.details[0]["message"]


def test_the_contract_and_the_data_gate_agree_on_which_values_are_sentinels():
    import pandas as pd

    feature = spec_module.Feature(type="number", nullable=True, sentinels=[-1, 9999, "unknown"])
    rule = contract_module.FeatureRule(type="number", sentinels=frozenset({"-1", "9999", "unknown"}))
    values = ["-1", " -1.0 ", "9999", "unknown", "Unknown", "0", "-10", "9999.5", "x"]
    in_file = tabular.sentinel_mask(pd.Series(values, dtype=object), feature).tolist()
    assert in_file == [contract_module._is_sentinel(rule, v) for v in values]
    numbers = [-1, -1.0, 9999, 0, 1.5]
    assert tabular.sentinel_mask(pd.Series(numbers), feature).tolist() == [
        contract_module._is_sentinel(rule, v) for v in numbers
    ]


def test_renamed_codes_and_datetimes(contract):
    scoring = contract.columns([{**ROW, "region": "old-north", "seen": "1970-01-02T00:00:00Z"}], 10)
    assert scoring.columns["region"] == ["north"] and scoring.columns["seen"] == [86400.0]


def test_row_limit(contract):
    with pytest.raises(TooMany):
        contract.columns([ROW] * 11, 10)


def test_masking_keeps_only_named_non_personal_scalars(contract):
    masked = contract.mask({**ROW, "id": 42, "year": 1986, "ssn": "123", "age": {"nested": 1}, "educ": math.inf})
    assert masked["hhninc"] == MASK and masked["id"] == MASK and masked["ssn"] == MASK
    assert masked["age"] == MASK and masked["educ"] is None
    assert masked["year"] == 1986 and masked["edlevel"] == "2"
    derived = ServingContract.from_model_inputs("m", "classification", {"age": "number"})
    assert derived.mask({"age": 40}) == {"age": MASK}  # no spec: nothing is known to be safe


def test_conventions_match_the_training_side():
    assert contract_module.BOOLEAN_TRUE == tabular.BOOLEAN_TRUE
    assert contract_module.BOOLEAN_FALSE == tabular.BOOLEAN_FALSE
    for value in (3, 3.0, 2.5, True, False, "x"):
        assert contract_module.category_key(value) == spec_module.category_key(value)


def test_spec_capture_section_is_validated():
    data = yaml.safe_load(SPEC_PATH.read_text())
    data["capture"] = {"sample_rate": 1.5}
    with pytest.raises(spec_module.SpecError, match=r"capture\.sample_rate"):
        parse_spec(data)
    data["capture"] = {"sampel_rate": 0.5}
    with pytest.raises(spec_module.SpecError, match=r"capture\.sampel_rate: unknown key"):
        parse_spec(data)


def test_the_documents_number_bounds_are_what_the_contract_accepts(contract):
    """schemathesis's valid requests from the document were refused for their magnitude (a number
    beyond float32 range): the document now states the bounds the contract checks."""
    from conveyor.openapi import _instance_schema

    properties = _instance_schema(contract)["properties"]
    bounds = {name: (p.get("minimum"), p.get("maximum")) for name, p in properties.items() if p.get("type") == "number"}
    assert bounds and set(bounds.values()) == {(-contract_module.FLOAT32_MAX, contract_module.FLOAT32_MAX)}
    assert properties["visits"]["maximum"] == contract_module.FLOAT32_MAX
    name = next(iter(bounds))
    contract.columns([{**ROW, name: contract_module.FLOAT32_MAX}], 10)  # at the bound: accepted
    with pytest.raises(ContractViolation):
        contract.columns([{**ROW, name: 1e39}], 10)  # beyond it: refused, as the document says
