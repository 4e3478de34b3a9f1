"""S3 and metric data in the local cloud's snapshots, on a moto server: a snapshot costs what changed, tags
and versions come back, restored bodies are read on first use, and a state written in format 1 still loads."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from conveyor.localcloud.persist import s3state
from conveyor.localcloud.persist.snapshotter import Persistence
from conveyor.localcloud.persist.store import DataDir, StateDirError
from tests.component.conftest import moto_server

REGION = "us-east-1"
BUCKET = "kept"


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    with moto_server() as (url, _port):
        yield url


def _persistence(path: Path) -> Persistence:
    persistence = Persistence(DataDir(path), REGION, interval=3600)
    persistence.restore(persistence.open())
    return persistence


def _restart(endpoint: str, persistence: Persistence) -> Persistence:
    """Stop (the last snapshot), empty moto's backends as a new process would have them, restore."""
    persistence.stop()
    requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
    return _persistence(persistence.data.path)


def _section(persistence: Persistence, name: str) -> bytes:
    snapshot = persistence.data.read_current()
    assert snapshot is not None
    return b"".join(line + b"\n" for line in snapshot.section_lines(name))


def _objects(data: DataDir, section: bytes) -> list[dict[str, Any]]:
    """The key records an objects section names (through its segments)."""
    found: list[dict[str, Any]] = []
    for reference in map(json.loads, section.splitlines()):
        found.extend(map(json.loads, data.read_blob(reference["segment"]).splitlines()))
    return found


def _s3(endpoint: str) -> Any:
    client = boto3.client("s3", endpoint_url=endpoint, region_name=REGION)
    client.create_bucket(Bucket=BUCKET)
    client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return client


def test_a_snapshot_encodes_only_the_keys_that_changed(endpoint: str, tmp_path: Path) -> None:
    s3 = _s3(endpoint)
    for n in range(30):
        s3.put_object(Bucket=BUCKET, Key=f"k/{n}", Body=f"body {n}".encode())
    persistence = _persistence(tmp_path / "data")
    assert persistence.snapshot(force=True)
    assert persistence._s3.encoded == 30 and persistence._s3.segments_written == 1
    s3.put_object(Bucket=BUCKET, Key="k/1", Body=b"second version")  # a PUT over HTTP touches moto's tagger too
    s3.put_object_tagging(Bucket=BUCKET, Key="k/2", Tagging={"TagSet": [{"Key": "team", "Value": "ml"}]})
    assert persistence.snapshot(force=True)
    assert persistence._s3.encoded == 31, "one key re-encoded: the one with a new version"
    assert persistence._s3.segments_written == 2
    assert persistence.snapshot(force=True)
    assert persistence._s3.encoded == 31 and persistence._s3.segments_written == 2, "nothing changed: nothing written"
    records = {r["key"]: r for r in _objects(persistence.data, _section(persistence, s3state.SECTION_OBJECTS))}
    assert len(records) == 30 and len(records["k/1"]["versions"]) == 2
    tags = [json.loads(line) for line in _section(persistence, s3state.SECTION_TAGS).splitlines()]
    assert [t["tags"] for t in tags] == [{"team": "ml"}] and tags[0]["arn"].startswith(f"arn:aws:s3:::{BUCKET}/k/2/")
    persistence.stop()


def test_objects_versions_and_tags_come_back_and_bodies_are_read_on_first_use(endpoint: str, tmp_path: Path) -> None:
    s3 = _s3(endpoint)
    s3.put_object(Bucket=BUCKET, Key="a.csv", Body=b"v1", Metadata={"origin": "drop"})
    s3.put_object(Bucket=BUCKET, Key="a.csv", Body=b"v2")
    s3.put_object(Bucket=BUCKET, Key="gone.csv", Body=b"x")
    s3.delete_object(Bucket=BUCKET, Key="gone.csv")  # a delete marker over a version
    s3.put_object_tagging(Bucket=BUCKET, Key="a.csv", Tagging={"TagSet": [{"Key": "k", "Value": "v"}]})
    persistence = _persistence(tmp_path / "data")
    assert persistence.snapshot(force=True)
    written = _section(persistence, s3state.SECTION_OBJECTS)

    restored = _restart(endpoint, persistence)
    version = s3state.backend().buckets[BUCKET].keys.getlist("a.csv")[-1]
    assert isinstance(version._value_buffer, s3state.LazyBody) and not version._value_buffer.loaded
    assert restored.snapshot(force=True)
    assert restored._s3.encoded == restored._s3.segments_written == 0, "the first snapshot reuses what was read"
    assert _section(restored, s3state.SECTION_OBJECTS) == written
    assert s3.get_object(Bucket=BUCKET, Key="a.csv")["Body"].read() == b"v2"
    assert version._value_buffer.loaded
    versions = s3.list_object_versions(Bucket=BUCKET, Prefix="a.csv")["Versions"]
    first = s3.get_object(Bucket=BUCKET, Key="a.csv", VersionId=versions[-1]["VersionId"])
    assert first["Body"].read() == b"v1" and first["Metadata"] == {"origin": "drop"}
    assert s3.get_object_tagging(Bucket=BUCKET, Key="a.csv")["TagSet"] == [{"Key": "k", "Value": "v"}]
    assert s3.list_object_versions(Bucket=BUCKET, Prefix="gone.csv")["DeleteMarkers"][0]["IsLatest"]
    restored.stop()


def test_a_large_body_is_stored_in_chunks(endpoint: str, tmp_path: Path) -> None:
    body = bytes(range(256)) * (s3state.LARGE_BODY // 256 + 4099)
    _s3(endpoint).put_object(Bucket=BUCKET, Key="big.bin", Body=body)
    persistence = _persistence(tmp_path / "data")
    assert persistence.snapshot(force=True)
    digest = hashlib.sha256(body).hexdigest()
    assert persistence.data.read_blob(digest) == body
    assert not list((persistence.data.blobs / ".incoming").iterdir())
    persistence.stop()


def test_the_blob_of_a_body_not_read_yet_outlives_garbage_collection(endpoint: str, tmp_path: Path) -> None:
    s3 = _s3(endpoint)
    s3.put_object(Bucket=BUCKET, Key="held.csv", Body=b"held")
    persistence = _persistence(tmp_path / "data")
    persistence.snapshot(force=True)
    restored = _restart(endpoint, persistence)
    held = s3state.backend().buckets[BUCKET].keys.getlist("held.csv")[-1]
    dict.pop(s3state.backend().buckets[BUCKET].keys, "held.csv")  # out of the bucket, still held (a GET in flight)
    restored.snapshot(force=True)
    restored.snapshot(force=True)
    restored.collect_garbage()
    assert held.value == b"held"
    restored.stop()


def test_metric_data_points_are_encoded_once_and_come_back(endpoint: str, tmp_path: Path) -> None:
    cloudwatch = boto3.client("cloudwatch", endpoint_url=endpoint, region_name=REGION)
    data = [{"MetricName": "Latency", "Value": float(n), "Unit": "Milliseconds"} for n in range(3)]
    cloudwatch.put_metric_data(Namespace="Conveyor", MetricData=data)
    persistence = _persistence(tmp_path / "data")
    assert persistence.snapshot(force=True)
    written = _section(persistence, "cloudwatch_metrics")
    restored = _restart(endpoint, persistence)
    assert len(restored._metrics.tail) == 3
    assert restored.snapshot(force=True)
    assert _section(restored, "cloudwatch_metrics") == written
    stats = cloudwatch.get_metric_statistics(
        Namespace="Conveyor",
        MetricName="Latency",
        StartTime="2000-01-01",
        EndTime="2100-01-01",
        Period=86400 * 365 * 100,
        Statistics=["Sum", "SampleCount"],
    )["Datapoints"]
    assert stats and stats[0]["SampleCount"] == 3 and stats[0]["Sum"] == 3.0
    restored.stop()


def _as_format_1(data: DataDir) -> None:
    """Rewrite the current snapshot as Conveyor wrote it in format 1: a file per section, one line per key
    with the object tags inside its version records."""
    snapshot = data.read_current()
    assert snapshot is not None
    directory = data.snapshots / snapshot.name
    tags = {t["arn"]: t["tags"] for t in snapshot.section("s3_tags")}
    sections = {name: b"".join(line + b"\n" for line in lines) for name, lines in snapshot.lines.items()}
    records = []
    for record in _objects(data, sections.pop("s3_objects")):
        for version in record["versions"]:
            arn = f"arn:aws:s3:::{record['bucket']}/{record['key']}/{version['version_id']}"
            if arn in tags:
                version["tags"] = tags[arn]
        records.append(json.dumps(record, separators=(",", ":")) + "\n")
    sections["s3_objects"] = "".join(records).encode()
    del sections["s3_tags"]
    entries = {}
    for name, content in sections.items():
        (directory / f"{name}.jsonl").write_bytes(content)
        entries[name] = {"file": f"{name}.jsonl", "sha256": hashlib.sha256(content).hexdigest()}
    (directory / "sections.jsonl").unlink()
    manifest = {"format": "conveyor-local-state", "version": 1, "created_at": 0, "sections": entries}
    (directory / "manifest.json").write_text(json.dumps(manifest))
    (data.path / "conveyor-state.json").write_text(json.dumps({"format": "conveyor-local-state", "version": 1}))


def test_a_state_written_in_format_1_loads(endpoint: str, tmp_path: Path) -> None:
    s3 = _s3(endpoint)
    s3.put_object(Bucket=BUCKET, Key="t.csv", Body=b"tagged")
    s3.put_object_tagging(Bucket=BUCKET, Key="t.csv", Tagging={"TagSet": [{"Key": "k", "Value": "v"}]})
    persistence = _persistence(tmp_path / "data")
    persistence.snapshot(force=True)
    persistence.stop()
    _as_format_1(persistence.data)
    requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
    restored = _persistence(tmp_path / "data")
    assert json.loads((tmp_path / "data" / "conveyor-state.json").read_text())["version"] == 2
    assert s3.get_object_tagging(Bucket=BUCKET, Key="t.csv")["TagSet"] == [{"Key": "k", "Value": "v"}]
    assert s3.get_object(Bucket=BUCKET, Key="t.csv")["Body"].read() == b"tagged"
    restored.snapshot(force=True)
    assert json.loads(_section(restored, s3state.SECTION_TAGS))["tags"] == {"k": "v"}
    restored.stop()


def test_a_large_bucket_rewrites_only_the_segment_of_a_changed_key(endpoint: str, tmp_path: Path) -> None:
    from moto.s3.models import s3_backends

    s3 = _s3(endpoint)
    backend = s3_backends["123456789012"]["aws"]
    for n in range(s3state.SMALL_BUCKET):
        backend.put_object(BUCKET, f"many/{n}", b"x")
    persistence = _persistence(tmp_path / "data")
    assert persistence.snapshot(force=True)
    references = [json.loads(line) for line in _section(persistence, s3state.SECTION_OBJECTS).splitlines()]
    assert len(references) == s3state.LARGE_BUCKET_SEGMENTS == persistence._s3.segments_written
    s3.delete_object(Bucket=BUCKET, Key="many/7")
    s3.put_object(Bucket=BUCKET, Key="many/8", Body=b"y")
    assert persistence.snapshot(force=True)
    assert persistence._s3.segments_written == s3state.LARGE_BUCKET_SEGMENTS + 2, "the segments of many/7 and many/8"
    restored = _restart(endpoint, persistence)
    assert s3.get_object(Bucket=BUCKET, Key="many/8")["Body"].read() == b"y"
    assert len(s3.list_object_versions(Bucket=BUCKET, Prefix="many/")["Versions"]) == 1000  # a page: all came back
    listed = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="many/")
    assert sum(page["KeyCount"] for page in listed) == s3state.SMALL_BUCKET - 1  # many/7 is behind a delete marker
    restored.stop()


def test_a_damaged_segment_is_refused_before_anything_is_loaded(endpoint: str, tmp_path: Path) -> None:
    _s3(endpoint).put_object(Bucket=BUCKET, Key="a", Body=b"a")
    persistence = _persistence(tmp_path / "data")
    persistence.snapshot(force=True)
    persistence.stop()
    reference = json.loads(_section(persistence, s3state.SECTION_OBJECTS))
    segment = persistence.data.blob_path(reference["segment"])
    segment.write_bytes(segment.read_bytes().replace(b'"a"', b'"b"'))
    with pytest.raises(StateDirError, match="damaged"):
        Persistence(DataDir(tmp_path / "data"), REGION).open()


def test_an_unchanged_bucket_is_not_walked_and_an_overwrite_is_seen(endpoint: str, tmp_path: Path) -> None:
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION)
    s3.create_bucket(Bucket="plain")  # not versioned: a PUT replaces the key's only version
    s3.put_object(Bucket="plain", Key="spec.yaml", Body=b"one")
    persistence = _persistence(tmp_path / "data")
    assert persistence.snapshot(force=True)
    compared = persistence._s3.buckets_compared
    assert persistence.snapshot(force=True)
    assert persistence._s3.buckets_compared == compared, "nothing changed: no key compared one by one"
    s3.put_object(Bucket="plain", Key="spec.yaml", Body=b"two")
    assert persistence.snapshot(force=True)
    assert persistence._s3.buckets_compared == compared + 1
    restored = _restart(endpoint, persistence)
    assert s3.get_object(Bucket="plain", Key="spec.yaml")["Body"].read() == b"two"
    restored.stop()
