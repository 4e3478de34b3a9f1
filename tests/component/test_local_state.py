"""The local cloud's data directory: snapshot format, atomic swap, and refusal of directories it must not load."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conveyor.cli.app import app
from conveyor.localcloud.persist.store import FORMAT_VERSION, MARKER, DataDir, StateDirError


def _tree(path: Path) -> dict[str, str]:
    """Every file under ``path`` with the sha256 of its bytes (to show nothing changed)."""
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest() for p in path.rglob("*") if p.is_file()
    }


def _write(data: DataDir, records: list[dict[str, object]]) -> None:
    with data.new_snapshot() as writer:
        writer.add("things", records)


@pytest.fixture
def data(tmp_path: Path) -> DataDir:
    directory = DataDir(tmp_path / "data")
    directory.open()
    yield directory
    directory.close()


def test_a_snapshot_reads_back_and_becomes_current(data: DataDir) -> None:
    assert data.read_current() is None
    blob = data.put_blob(b"body")
    _write(data, [{"a": 1, "blob": blob}, {"b": [1, 2]}])
    _write(data, [{"a": 2, "blob": blob}])
    snapshot = data.read_current()
    assert snapshot is not None and snapshot.name == "000002"
    assert snapshot.section("things") == [{"a": 2, "blob": blob}]
    assert data.read_blob(blob) == b"body"
    for _ in range(3):
        _write(data, [])
    kept = sorted(p.name for p in data.snapshots.iterdir())
    assert kept == ["000004", "000005"], "the current snapshot and the one before it are kept"


def test_a_blob_is_written_once(data: DataDir) -> None:
    first = data.put_blob(b"x" * 1000)
    path = data.blob_path(first)
    written = path.stat().st_mtime_ns
    assert data.put_blob(b"x" * 1000) == first
    assert path.stat().st_mtime_ns == written


def test_a_failed_snapshot_leaves_the_current_one(data: DataDir) -> None:
    _write(data, [{"kept": True}])
    with pytest.raises(RuntimeError), data.new_snapshot() as writer:
        writer.add("things", [{"kept": False}])
        raise RuntimeError("the disk is full")
    assert data.read_current().section("things") == [{"kept": True}]  # type: ignore[union-attr]
    assert not list(data.snapshots.glob(".tmp-*"))


def test_a_snapshot_cut_short_by_a_crash_is_never_read(data: DataDir) -> None:
    """kill -9 while writing: the half-written directory sits beside the current one, which stays current."""
    _write(data, [{"n": 1}])
    half = data.snapshots / ".tmp-000002"
    half.mkdir()
    (half / "sections.jsonl").write_text('{"n": 2')
    assert data.read_current().section("things") == [{"n": 1}]  # type: ignore[union-attr]
    _write(data, [{"n": 3}])
    assert data.read_current().section("things") == [{"n": 3}]  # type: ignore[union-attr]
    assert not half.exists()


def test_unreferenced_blobs_are_collected(data: DataDir) -> None:
    kept, dropped = data.put_blob(b"kept"), data.put_blob(b"dropped")
    assert data.collect_garbage({kept}) == 1
    assert data.has_blob(kept) and not data.has_blob(dropped)


def test_one_cloud_per_directory(data: DataDir) -> None:
    with pytest.raises(StateDirError, match="in use"):
        DataDir(data.path).open()
    assert DataDir(data.path).in_use()


def test_a_foreign_directory_is_refused_and_left_alone(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    before = _tree(tmp_path)
    with pytest.raises(StateDirError, match="not a Conveyor data directory"):
        DataDir(tmp_path).open()
    with pytest.raises(StateDirError):
        DataDir(tmp_path).delete()
    assert _tree(tmp_path) == before


def test_state_of_another_format_version_is_refused_with_what_to_do(tmp_path: Path) -> None:
    (tmp_path / MARKER).write_text(json.dumps({"format": "conveyor-local-state", "version": FORMAT_VERSION + 1}))
    before = _tree(tmp_path)
    with pytest.raises(StateDirError, match="--fresh"):
        DataDir(tmp_path).open()
    assert _tree(tmp_path) == before


def _damaged(tmp_path: Path) -> Path:
    data = DataDir(tmp_path / "data")
    data.open()
    _write(data, [{"n": 1}])
    data.close()
    section = data.snapshots / "000001" / "sections.jsonl"
    section.write_bytes(section.read_bytes().replace(b"1", b"2"))
    return data.path


def test_a_damaged_snapshot_is_refused_before_anything_is_loaded(tmp_path: Path) -> None:
    path = _damaged(tmp_path)
    data = DataDir(path)
    data.open()
    with pytest.raises(StateDirError, match="checksum"):
        data.read_current()
    data.close()


def test_a_missing_blob_is_refused(data: DataDir) -> None:
    with pytest.raises(StateDirError, match="missing"):
        data.verify_blobs(["ab" * 32])


def test_fresh_moves_the_old_state_aside(data: DataDir) -> None:
    _write(data, [{"n": 1}])
    data.close()
    moved = DataDir(data.path).move_aside()
    assert moved is not None and moved.name.startswith("data.moved-") and not data.path.exists()
    assert DataDir(moved).read_current().section("things") == [{"n": 1}]  # type: ignore[union-attr]


@pytest.mark.parametrize("kind", ["foreign", "damaged"])
def test_up_refuses_a_directory_it_must_not_load_with_exit_2(tmp_path: Path, kind: str) -> None:
    if kind == "foreign":
        path = tmp_path / "data"
        path.mkdir()
        (path / "thesis.tex").write_text("years of work")
    else:
        path = _damaged(tmp_path)
    before = _tree(path)
    result = CliRunner().invoke(app, ["up", "--data-dir", str(path), "--state", str(tmp_path / "local.json")])
    assert result.exit_code == 2, result.output
    assert "nothing" in result.output
    assert _tree(path) == before
    assert not (tmp_path / "local.json").exists()


def test_reset_asks_then_deletes(data: DataDir) -> None:
    _write(data, [{"n": 1}])
    data.close()
    runner = CliRunner()
    assert runner.invoke(app, ["reset", "--data-dir", str(data.path)], input="n\n").exit_code == 1
    assert data.path.exists()
    result = runner.invoke(app, ["reset", "--data-dir", str(data.path), "--yes"])
    assert result.exit_code == 0, result.output
    assert not data.path.exists()
