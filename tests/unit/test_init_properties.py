"""``conveyor init`` on arbitrary CSVs: it never raises; it writes a spec or exits 2 with a message;
it exits 2 wherever the data gate rejects the file on file-level or target checks; and the data gate
accepts every file with the spec init wrote for it (the round trip).

Init and validate run in-process through Typer's CliRunner, as a user would call them.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from conveyor.cli.app import build_app
from conveyor.spec import parse_spec
from conveyor.validation import validate_bytes

BOOLEAN_SPELLINGS = ["yes", "no", "Y", "N", "true", "False", "T", "f", "1", "0", "YES", "n"]
# Checks that reject a file whatever its features are: the file itself, its rows, its target.
FILE_OR_TARGET = {
    "empty_file",
    "compressed",
    "file_type",
    "encoding",
    "delimiter",
    "readable",
    "truncated",
    "ragged_rows",
    "duplicate_columns",
    "not_empty",
    "min_rows",
    "target",
}

names = st.sampled_from(["a", "b", "age", "flag", "größe", "名前", "x y", "id", "when", "a"])
cells = st.one_of(
    st.just(""),
    st.sampled_from(BOOLEAN_SPELLINGS),
    st.integers(-5, 60).map(str),
    st.sampled_from(["-1", "9999", "99999"]),
    st.floats(-1e6, 1e6, allow_nan=False).map(lambda v: f"{v:.3f}"),
    st.integers(0, 40).map(lambda v: f'"{v}"'),  # a quoted number
    st.sampled_from(["north", "south", "café", "東京", "a,b", 'say "hi"', "2024-01-05", " spaced "]),
)
labels = st.sampled_from(["0", "1", "yes", "no", "", "spam", "ham"])


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    """A CSV with a target column ``y`` among 0-4 others (names may repeat), 1-40 rows, column
    styles that are each of one kind (a boolean spelling pair, numbers, text) or mixed."""
    others = draw(st.lists(names, min_size=0, max_size=4))
    header = [*others, "y"]
    draw_order = draw(st.permutations(header))
    rows = draw(st.integers(1, 40))
    columns: dict[int, list[str]] = {}
    for position, column in enumerate(draw_order):
        if column == "y":
            pool = draw(st.lists(labels, min_size=1, max_size=3, unique=True))
            columns[position] = draw(st.lists(st.sampled_from(pool), min_size=rows, max_size=rows))
            continue
        style = draw(st.sampled_from(["boolean", "mixed", "number", "text"]))
        if style == "boolean":
            pair = draw(st.sampled_from([("yes", "no"), ("Y", "N"), ("true", "false"), ("T", "F"), ("1", "0")]))
            pair = tuple(v.upper() if draw(st.booleans()) else v for v in pair)
            values = st.sampled_from([*pair, ""])
        elif style == "number":
            values = st.one_of(st.integers(0, 80).map(str), st.sampled_from(["", "-1", "9999"]))
        elif style == "text":
            values = st.sampled_from(["north", "south", "east", "café", ""])
        else:
            values = cells
        columns[position] = draw(st.lists(values, min_size=rows, max_size=rows))
    lines = [",".join(_quoted(name) for name in draw_order)]
    lines += [",".join(_field(columns[p][r]) for p in range(len(draw_order))) for r in range(rows)]
    ending = draw(st.sampled_from(["\n", "\r\n"]))
    text = ending.join(lines) + ending
    bom = b"\xef\xbb\xbf" if draw(st.booleans()) else b""
    return bom + text.encode("utf-8")


def _quoted(value: str) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow([value])
    return buffer.getvalue()


def _field(value: str) -> str:
    return value if value.startswith('"') and value.endswith('"') and len(value) > 1 else _quoted(value)


def _probe_rejects(data: bytes) -> list[str]:
    """The file-level and target checks the data gate fails on this file, whatever the features."""
    text = data.decode("utf-8-sig")
    header = next(csv.reader(io.StringIO(text)), [])
    others = [n for n in header if n and n != "y"]
    feature = others[0] if others else "__absent__"  # a missing feature fails required_column, not counted
    spec = parse_spec(
        {
            "name": "probe",
            "task": "classification",
            "target": {"column": "y"},
            "features": {feature: {"type": "category", "nullable": True}},
            "estimator": {"type": "logistic_regression"},
        }
    )
    report = validate_bytes(data, "sample.csv", spec)
    return sorted({c.name for c in report.failures()} & FILE_OR_TARGET)


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    return CliRunner()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=csv_files())
@example(data=b"flag,a,y\nyes,3,1\nno,4,0\nYES,5,1\nNo,6,0\n")
@example(data=b"\xef\xbb\xbfflag,y\r\nY,1\r\nN,0\r\nY,1\r\n")
@example(data=b"a,a,y\n1,2,0\n3,4,1\n")
@example(data=b"a,y\n1,0\n")
def test_init_never_raises_and_round_trips(data: bytes, runner: CliRunner, tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("init")
    sample = folder / "sample.csv"
    sample.write_bytes(data)
    spec_path = folder / "model.yaml"
    app = _app()
    result = runner.invoke(app, ["init", "m", "--from", str(sample), "--target", "y", "--out", str(spec_path)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.exit_code in (0, 2), result.output
    rejects = _probe_rejects(data)
    if result.exit_code == 2:
        assert "error:" in result.output
        assert "please report this sample" not in result.output, result.output
        if "data gate would reject" in result.output:  # only for what no spec could fix
            assert rejects, result.output
        return
    assert not rejects, f"init wrote a spec for a file the gate rejects on {rejects}"
    spec = yaml.safe_load(spec_path.read_text(encoding="utf-8"))
    for feature in spec["features"].values():  # two-valued yes/no-like columns are booleans
        assert feature["type"] in ("boolean", "category", "number", "integer", "datetime")
    checked = runner.invoke(app, ["validate", str(sample), "--spec", str(spec_path), "--json"])
    assert checked.exception is None or isinstance(checked.exception, SystemExit), checked.output
    assert checked.exit_code in (0, 1), checked.output


def _app():
    return build_app()


def test_yes_no_booleans_are_typed_boolean(tmp_path: Path, runner: CliRunner) -> None:
    rows = ["smoker,married,age,y"] + [
        f"{'yes' if i % 3 else 'no'},{'Y' if i % 5 < 2 else 'N'},{20 + i},{i % 2}" for i in range(40)
    ]
    sample = tmp_path / "sample.csv"
    sample.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(rows).encode() + b"\r\n")
    out = tmp_path / "model.yaml"
    result = runner.invoke(_app(), ["init", "m", "--from", str(sample), "--target", "y", "--out", str(out)])
    assert result.exit_code == 0, result.output
    features = yaml.safe_load(out.read_text())["features"]
    assert features["smoker"] == {"type": "boolean"}
    assert features["married"] == {"type": "boolean"}
