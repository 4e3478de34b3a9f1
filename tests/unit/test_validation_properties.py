"""Properties of the data gate: it answers with a verdict whatever it is given, and never raises."""

from __future__ import annotations

import json
import string
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conveyor.spec import ModelSpec, parse_spec
from conveyor.validation import validate_bytes

SPEC = Path(__file__).resolve().parents[2] / "events" / "specs" / "doctor-visits.yaml"
_SPEC: ModelSpec = parse_spec(yaml.safe_load(SPEC.read_text()))
_COLUMNS = ["docvis", "age", "hhninc", "educ", "female", "married", "kids", "outwork", "self", "edlevel", "x", ""]
_CELLS = st.one_of(
    st.integers(-100_000, 100_000).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["", "NA", "null", "true", "no", "forty", "-1", "9999", '"', '""', "1,5", "\r", " 3 "]),
    st.text(alphabet=string.printable, max_size=8),
)


def _assert_report(data: bytes, filename: str) -> None:
    report = validate_bytes(data, filename, _SPEC)
    assert report.verdict in ("accepted", "rejected")
    assert "internal_error" not in {c.name for c in report.checks}, report.summary
    assert report.errors == len(report.failures()) and (report.verdict == "rejected") == (report.errors > 0)
    json.dumps(report.to_dict(), allow_nan=False)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=2048), filename=st.sampled_from(["d.csv", "d.parquet", "d.txt", "d"]))
def test_arbitrary_bytes_never_raise(data: bytes, filename: str) -> None:
    _assert_report(data, filename)


@st.composite
def csv_texts(draw: st.DrawFn) -> str:
    columns = draw(st.lists(st.sampled_from(_COLUMNS), min_size=1, max_size=8))
    rows = draw(st.lists(st.lists(_CELLS, min_size=max(len(columns) - 1, 0), max_size=len(columns) + 1), max_size=25))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    text = newline.join([",".join(columns), *(",".join(row) for row in rows)])
    return text + (newline if draw(st.booleans()) else "")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=csv_texts())
def test_arbitrary_csv_text_never_raises(text: str) -> None:
    _assert_report(text.encode("utf-8"), "drop.csv")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ages=st.lists(st.one_of(st.none(), st.integers(-10, 200)), min_size=1, max_size=40),
    incomes=st.lists(st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False)), min_size=1, max_size=40),
)
def test_well_formed_csv_with_random_values_gets_a_verdict(ages: list[int | None], incomes: list[float | None]) -> None:
    n = min(len(ages), len(incomes))
    header = "docvis,age,hhninc,educ,female,married,kids,outwork,self,edlevel"
    lines = [header]
    for i in range(n):
        age = "" if ages[i] is None else str(ages[i])
        income = "" if incomes[i] is None else repr(incomes[i])
        lines.append(f"{i % 3},{age},{income},12,1,0,1,0,0,{1 + i % 4}")
    report = validate_bytes(("\n".join(lines) + "\n").encode(), "drop.csv", _SPEC)
    valid_ages = all(a is not None and 25 <= a <= 64 for a in ages[:n])
    valid_incomes = all(v is not None and 0 <= v <= 40 for v in incomes[:n])
    if not valid_ages or not valid_incomes:
        assert report.verdict == "rejected" or report.warnings > 0, report.summary
