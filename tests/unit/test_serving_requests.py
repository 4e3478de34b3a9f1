import numpy as np
import pytest

from conveyor.serving import InvalidInput, TooManyRows, columns_from_instances, request_id_from

FEATURES = {"age": "number", "edlevel": "category"}


def test_instances_become_typed_columns():
    columns = columns_from_instances([{"age": 40, "edlevel": "3"}, {"age": None, "edlevel": 2}], FEATURES, 10)
    assert columns["age"].dtype == np.float32 and columns["age"].shape == (2, 1)
    assert np.isnan(columns["age"][1, 0])
    assert columns["edlevel"].tolist() == [["3"], ["2"]]


def test_every_bad_field_is_reported_with_its_path():
    with pytest.raises(InvalidInput) as caught:
        columns_from_instances(
            [{"age": "forty", "edlevel": "1"}, "row", {"age": 1, "edlevel": 1.5, "x": 1}], FEATURES, 10
        )
    fields = [d["field"] for d in caught.value.details]
    assert fields == ["instances[0].age", "instances[1]", "instances[2].edlevel", "instances[2]"]
    assert caught.value.status == 400


@pytest.mark.parametrize("instances", [None, [], {"age": 1}, "rows"])
def test_instances_must_be_a_non_empty_list(instances):
    with pytest.raises(InvalidInput):
        columns_from_instances(instances, FEATURES, 10)


def test_non_finite_numbers_are_refused():
    with pytest.raises(InvalidInput):
        columns_from_instances([{"age": float("inf"), "edlevel": "1"}], FEATURES, 10)


def test_too_many_rows_is_413():
    with pytest.raises(TooManyRows) as caught:
        columns_from_instances([{"age": 1, "edlevel": "1"}] * 11, FEATURES, 10)
    assert caught.value.status == 413


def test_request_id_is_honoured_in_any_header_case_or_generated():
    assert request_id_from({"x-request-id": "abc"}) == "abc"
    assert request_id_from({"X-Request-Id": "abc"}) == "abc"
    generated = request_id_from({})
    assert len(generated) == 36 and generated != request_id_from({})
