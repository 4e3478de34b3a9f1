from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conveyor.errors import DataError
from conveyor.spec import ModelSpec
from conveyor.tabular import category_strings, feature_frame, onnx_inputs, read_table, target_vector


def test_read_csv_names_the_unnamed_index_column(sample_df: pd.DataFrame) -> None:
    data = sample_df.head(50).to_csv(index=False).encode()
    frame = read_table(data, "drop.csv")
    assert list(frame.columns) == list(sample_df.columns)
    assert "Unnamed: 0" in frame.columns
    assert len(frame) == 50


def test_read_parquet_round_trip(sample_df: pd.DataFrame) -> None:
    buffer = io.BytesIO()
    sample_df.head(20).to_parquet(buffer, index=False)
    frame = read_table(buffer.getvalue(), "part-0.PARQUET")
    pd.testing.assert_frame_equal(frame, sample_df.head(20).reset_index(drop=True))


@pytest.mark.parametrize(
    ("data", "filename", "reason"),
    [
        (b"", "empty.csv", "empty"),
        (b"\n\n", "blank.csv", "empty"),
        (b"a,b\n\xff\xfe,1\n", "latin.csv", "encoding"),
        (b"not parquet at all", "x.parquet", "parse"),
        (b"a,b\n1,2\n", "data.json", "format"),
        (b'a,b\n"1,2\n', "quote.csv", "parse"),
    ],
)
def test_unreadable_input_names_file_and_reason(data: bytes, filename: str, reason: str) -> None:
    with pytest.raises(DataError) as caught:
        read_table(data, filename)
    assert caught.value.message.startswith(f"{filename}:")
    assert caught.value.details == {"file": filename, "reason": reason}


def test_target_vector_applies_positive_when(sample_df: pd.DataFrame, spec: ModelSpec) -> None:
    y = target_vector(sample_df, spec)
    assert y.dtype == np.int64
    np.testing.assert_array_equal(y, (sample_df["docvis"] > 0).to_numpy().astype(int))
    assert 0 < y.mean() < 1


@pytest.mark.parametrize(
    ("op", "expected"), [("ge", [0, 1, 1]), ("lt", [1, 0, 0]), ("eq", [0, 1, 0]), ("ne", [1, 0, 1])]
)
def test_target_vector_operators(op: str, expected: list[int], make_spec: Callable[..., ModelSpec]) -> None:
    spec = make_spec(target={"column": "docvis", "positive_when": {"op": op, "value": 1}})
    frame = pd.DataFrame({"docvis": [0, 1, 5]})
    assert target_vector(frame, spec).tolist() == expected


def test_target_vector_errors(spec: ModelSpec) -> None:
    with pytest.raises(DataError, match="'docvis' is missing"):
        target_vector(pd.DataFrame({"age": [1]}), spec)
    with pytest.raises(DataError, match="must be numeric"):
        target_vector(pd.DataFrame({"docvis": ["none", "some"]}), spec)
    with pytest.raises(DataError, match="null"):
        target_vector(pd.DataFrame({"docvis": [1.0, None]}), spec)


def test_feature_frame_order_and_types(sample_df: pd.DataFrame, spec: ModelSpec) -> None:
    shuffled = sample_df[list(reversed(sample_df.columns))]
    frame = feature_frame(shuffled, spec)
    assert list(frame.columns) == list(spec.features)
    for name, feature in spec.features.items():
        if feature.is_category:
            assert pd.api.types.is_string_dtype(frame[name])
            assert set(frame[name]) <= {"1", "2", "3", "4"}
        else:
            assert frame[name].dtype == np.float32
    assert frame["age"].iloc[0] == np.float32(sample_df["age"].iloc[0])


def test_feature_frame_missing_and_bad_columns(sample_df: pd.DataFrame, spec: ModelSpec) -> None:
    with pytest.raises(DataError, match="missing feature column\\(s\\): age, edlevel"):
        feature_frame(sample_df.drop(columns=["age", "edlevel"]), spec)
    sample_df["age"] = sample_df["age"].astype(object)
    sample_df.iloc[3, sample_df.columns.get_loc("age")] = "old"
    with pytest.raises(DataError, match="'age': not numeric") as caught:
        feature_frame(sample_df, spec)
    assert caught.value.details["examples"] == ["old"]


def test_categories_nulls_and_integral_floats() -> None:
    assert category_strings(pd.Series([1.0, None, 3.0])).tolist() == ["1", "", "3"]
    assert category_strings(pd.Series([1.5, None])).tolist() == ["1.5", ""]
    assert category_strings(pd.Series(["a", None])).tolist() == ["a", ""]
    assert category_strings(pd.Series([True, False])).tolist() == ["1", "0"]


def test_boolean_text_values_are_parsed(spec: ModelSpec, sample_df: pd.DataFrame) -> None:
    small = sample_df.head(4).copy()
    small["female"] = ["yes", "False", "1", None]
    values = feature_frame(small, spec)["female"].tolist()
    assert values[:3] == [1.0, 0.0, 1.0] and np.isnan(values[3])
    small["female"] = ["yes", "maybe", "1", "0"]
    with pytest.raises(DataError, match="not boolean"):
        feature_frame(small, spec)


def test_onnx_inputs_shapes_and_dtypes(sample_df: pd.DataFrame, spec: ModelSpec) -> None:
    inputs = onnx_inputs(feature_frame(sample_df, spec), spec)
    assert list(inputs) == list(spec.features)
    for name, array in inputs.items():
        assert array.shape == (len(sample_df), 1)
        assert array.dtype == (object if spec.features[name].is_category else np.float32)
    assert isinstance(inputs["edlevel"][0, 0], str)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(-(10**6), 10**6)), min_size=1, max_size=30))
def test_number_features_survive_as_float32(make_spec: Callable[..., ModelSpec], values: list[int | None]) -> None:
    spec = make_spec(features={"x": {"type": "number", "nullable": True}}, identifiers=[], time_column=None)
    frame = feature_frame(pd.DataFrame({"x": values}), spec)
    got = frame["x"].to_numpy()
    expected = np.array([np.nan if v is None else v for v in values], dtype=np.float32)
    np.testing.assert_array_equal(got, expected)


def test_feature_frame_applies_category_mapping(sample_df: pd.DataFrame, make_spec: Callable[..., ModelSpec]) -> None:
    import yaml
    from conftest import SPEC_PATH

    features = yaml.safe_load(SPEC_PATH.read_text())["features"]
    features["edlevel"] = {"type": "category", "allowed": ["1", "2", "3", "4"], "mapping": {9: 4, 8: "3"}}
    spec = make_spec(features=features)
    frame = sample_df.head(6).copy()
    frame["edlevel"] = [9, 8, 1, 2, 9, 4]
    assert feature_frame(frame, spec)["edlevel"].tolist() == ["4", "3", "1", "2", "4", "4"]


def test_datetime_features_become_epoch_seconds(make_spec: Callable[..., ModelSpec]) -> None:
    spec = make_spec(features={"seen": {"type": "datetime", "nullable": True}}, identifiers=[], time_column=None)
    frame = pd.DataFrame({"seen": ["1970-01-02", "2024-03-01T12:00:00Z", None]})
    values = feature_frame(frame, spec)["seen"].tolist()
    assert values[0] == 86400.0 and values[1] == np.float32(1709294400.0) and np.isnan(values[2])
    with pytest.raises(DataError, match="not a date/time"):
        feature_frame(pd.DataFrame({"seen": ["yesterday"]}), spec)


def test_read_csv_handles_bom_crlf_empty_and_repeated_header_names() -> None:
    frame = read_table(b'\xef\xbb\xbf"",a,a\r\n1,2,3\r\n', "x.csv")
    assert list(frame.columns) == ["Unnamed: 0", "a", "a.1"]
    with pytest.raises(DataError, match="row 2 has 1 fields"):
        read_table(b"a,b\n1,2\n3\n", "x.csv")


def test_category_strings_survive_integral_floats_beyond_int64():
    """Found by hypothesis: 9.2e18 is integral but does not fit an int64."""
    import pandas as pd

    from conveyor.tabular import category_strings

    assert category_strings(pd.Series([1.0, 9.223372036854776e18])).tolist()[0] == "1.0"
    assert category_strings(pd.Series([1.0, 2.0])).tolist() == ["1", "2"]
