"""S3 in a snapshot: every bucket, every object with all its versions and delete markers, metadata and tags.

A snapshot costs what changed since the last one, not what is stored. The collector keeps, per key, a
copy of moto's version list as it was when the key's record was encoded, and the encoded record: a key
whose list holds the same version objects (one C-level list comparison, no allocation) reuses its record.
A moto key version never changes its body (a PUT makes a new one), so only new versions have their
body hashed and stored. The records are written in segments, blobs named by their sha256: one per bucket
below ``SMALL_BUCKET`` keys, else ``LARGE_BUCKET_SEGMENTS`` (a key's segment: the crc32 of its name); only
a segment holding a changed, new or removed key is written again, and the objects section lists the
segments. Object tags are a section of their own, copied from moto's tagger each time (every PUT over
HTTP touches the tagger: tags inside the records would make every key look changed).

Restoring builds moto's key objects directly in the backend (no HTTP, no notifications) with bodies
read from their blobs on first use (:class:`LazyBody`), and seeds the collector with the records read,
so the first snapshot after a start writes no more than the changes since.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
import threading
import weakref
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from operator import attrgetter, itemgetter
from typing import Any

from conveyor.localcloud.persist.store import DataDir, Snapshot, StateDirError, sha256_hex
from conveyor.localcloud.resolver import ACCOUNT

SECTION_BUCKETS = "s3_buckets"
SECTION_OBJECTS = "s3_objects"
SECTION_TAGS = "s3_tags"
SEGMENT_REFERENCES = "s3_segments"  # not a section on disk: the segment references, once read_segments expanded them
SMALL_BUCKET = (
    2048  # a bucket with fewer keys is one segment; a larger one, LARGE_BUCKET_SEGMENTS of them (by crc32 of the key)
)
LARGE_BUCKET_SEGMENTS = 64
_OBJECT_ARN = "arn:aws:s3:::"
LARGE_BODY = 8 * 1024 * 1024  # bodies from this size on are stored in chunks of CHUNK bytes
CHUNK = 1024 * 1024


def backend() -> Any:
    from moto.s3.models import s3_backends

    return s3_backends[ACCOUNT]["aws"]


def _time(value: Any) -> str:
    return value.isoformat() if isinstance(value, dt.datetime) else str(value)


@dataclass
class Encoded:
    """One key as last written: its versions then (a copy of moto's list), their records, the line, its blobs,
    and the crc32 of its name (which of its bucket's segments holds it)."""

    versions: list[Any]
    records: list[dict[str, Any]]
    line: bytes
    blobs: tuple[str, ...]
    crc: int
    parts: list[bytes] | None = None  # each version's record encoded (None until needed, for a restored key)


@dataclass
class BucketRecords:
    """A bucket's keys as last written, and its segments: part -> (blob, number of keys)."""

    keys: dict[str, Encoded] = field(default_factory=dict)
    parts: int = 0
    segments: dict[int, tuple[str, int]] = field(default_factory=dict)
    shape: Shape | None = None  # of ``keys`` (see ``shape``)

    def section_lines(self, bucket: str) -> list[bytes]:
        return [
            _encode_line({"bucket": bucket, "segment": blob, "keys": n, "part": part, "parts": self.parts})
            for part, (blob, n) in sorted(self.segments.items())
        ]


# A bucket's shape: its key names in order, each key's number of versions and the id of its latest version.
Shape = tuple[list[str], list[int], list[int]]


def shape(names: Iterable[str], versions: Iterable[list[Any]]) -> Shape | None:
    """Computed in C (no Python code per key, no allocation the garbage collector tracks but three lists).
    moto only appends versions to a key's list or replaces the list, so a key whose list has the same
    length and the same latest version object as the one encoded (held by the collector, so no other object
    can have its id) holds the same versions; None when a list is empty (then each key is compared)."""
    lists = list(versions)
    try:
        latest = list(map(id, map(itemgetter(-1), lists)))
    except IndexError:
        return None
    return list(names), list(map(len, lists)), latest


def segment_count(keys: int) -> int:
    """How many segments a bucket of ``keys`` keys is written in (a change rewrites one of them)."""
    return 1 if keys < SMALL_BUCKET else LARGE_BUCKET_SEGMENTS


@dataclass
class Collected:
    """What ``S3Collector.collect`` copied: the bucket records, each bucket's key dict, the object tags."""

    buckets: list[dict[str, Any]]
    keys: list[tuple[str, dict[str, list[Any]]]]
    tags: list[dict[str, Any]]


@dataclass
class S3Collector:
    """Keeps, across snapshots, each key's encoded record and each bucket's segments (module docstring)."""

    cache: dict[str, BucketRecords] = field(default_factory=dict)
    encoded = 0  # keys encoded since the collector was made (what a snapshot cost; read by tests)
    segments_written = 0  # likewise, segments
    buckets_compared = 0  # likewise, buckets whose keys were compared one by one

    def collect(self) -> Collected:
        """The quick part: a copy of each bucket's key dict (C-level, atomic under the GIL) and of the tags."""
        s3 = backend()
        buckets: list[dict[str, Any]] = []
        keys: list[tuple[str, dict[str, list[Any]]]] = []
        for name, bucket in list(s3.buckets.items()):
            buckets.append({"bucket": name, "versioning": bucket.versioning_status, "region": bucket.region_name})
            keys.append((name, dict.copy(bucket.keys)))  # moto's own copy() is not atomic
        tags = [
            {"arn": arn, "tags": dict(tags)}
            for arn, tags in list(s3.tagger.tags.items())
            if tags and arn.startswith(_OBJECT_ARN) and "/" in arn
        ]
        return Collected(buckets, keys, tags)

    def lines(self, data: DataDir, collected: Collected) -> list[bytes]:
        """The objects section: per bucket, its segments; a key is re-encoded only where its versions changed
        (new bodies stored first), and only the segments holding a changed, new or removed key are rewritten."""
        found: list[bytes] = []
        cache: dict[str, BucketRecords] = {}
        for bucket, keys in collected.keys:
            before = self.cache.get(bucket) or BucketRecords()
            if before.shape is not None and before.shape == shape(keys, keys.values()):
                cache[bucket] = before  # not one key changed: not one key compared in Python
                found.extend(before.section_lines(bucket))
                continue
            self.buckets_compared += 1
            now: dict[str, Encoded] = {}
            changed: set[int] = set()  # crc32 of the keys encoded, added or removed
            for key, versions in keys.items():
                entry = before.keys.get(key)
                if entry is None or versions != entry.versions:  # list ==: identity of each version, in C
                    entry = self._encode(data, bucket, key, list(versions), entry)
                    if entry is None:
                        continue  # deleted while this snapshot was taken
                    changed.add(entry.crc)
                now[key] = entry
            if changed or len(now) != len(before.keys):
                changed.update(before.keys[k].crc for k in before.keys.keys() - now.keys())
            cache[bucket] = self._segments(data, bucket, before, now, changed)
            cache[bucket].shape = shape(now, map(attrgetter("versions"), now.values()))  # what the cache holds
            found.extend(cache[bucket].section_lines(bucket))
        self.cache = cache
        return found

    def _segments(
        self, data: DataDir, bucket: str, before: BucketRecords, now: dict[str, Encoded], changed: set[int]
    ) -> BucketRecords:
        parts = segment_count(len(now))
        if parts == before.parts:
            records = BucketRecords(now, parts, dict(before.segments))
            todo = {crc % parts for crc in changed}
        else:
            records, todo = BucketRecords(now, parts), set(range(parts))
        if not todo:
            return records
        lines: dict[int, list[bytes]] = {part: [] for part in todo}
        for entry in now.values():
            segment = lines.get(entry.crc % parts)
            if segment is not None:
                segment.append(entry.line)
        for part, held in lines.items():
            records.segments.pop(part, None)
            if held:
                records.segments[part] = (data.put_blob(b"\n".join(held) + b"\n"), len(held))
                self.segments_written += 1
        return records

    def _encode(
        self, data: DataDir, bucket: str, key: str, versions: list[Any], before: Encoded | None
    ) -> Encoded | None:
        """The key's record; a version already encoded (in ``before``) is not encoded again: a key PUT
        many times re-encodes its newest version only."""
        self.encoded += 1
        known: dict[int, tuple[dict[str, Any], bytes]] = {}
        records: list[dict[str, Any]] = []
        encoded: list[bytes] = []
        versions_left, reused = versions, 0
        if before is not None:
            parts = before.parts if before.parts is not None else [_encode_line(r) for r in before.records]
            held = len(before.versions)
            if versions[:held] == before.versions:  # versions appended (a PUT, a delete marker): in C
                records, encoded, versions_left, reused = list(before.records), list(parts), versions[held:], held
            else:
                known = {id(v): (r, e) for v, r, e in zip(before.versions, before.records, parts, strict=True)}
        try:
            for version in versions_left:
                record, line = known.get(id(version)) or _encoded_version(data, version)
                records.append(record)
                encoded.append(line)
        except ValueError:  # a body disposed of: the key was overwritten or deleted after the copy
            return None
        # What _encode_line({"bucket": ..., "key": ..., "versions": records}) writes, from the encoded versions.
        line = b'{"bucket":%s,"key":%s,"versions":[%s]}' % (
            json.dumps(bucket).encode(),
            json.dumps(key).encode(),
            b",".join(encoded),
        )
        blobs = (before.blobs if before and reused else ()) + tuple(r["blob"] for r in records[reused:] if "blob" in r)
        return Encoded(versions, records, line, blobs, zlib.crc32(key.encode()), encoded)


def _encoded_version(data: DataDir, version: Any) -> tuple[dict[str, Any], bytes]:
    record = _version_record(data, version)
    return record, _encode_line(record)


def _encode_line(record: dict[str, Any]) -> bytes:
    return json.dumps(record, separators=(",", ":")).encode()


def _version_record(data: DataDir, version: Any) -> dict[str, Any]:
    from moto.s3.models import FakeDeleteMarker

    modified = _time(version.last_modified)
    if isinstance(version, FakeDeleteMarker):
        return {"delete_marker": True, "version_id": version.version_id, "last_modified": modified}
    buffer = version._value_buffer
    digest = buffer.digest if isinstance(buffer, LazyBody) and not buffer.loaded else None
    if digest is None:
        digest = _store_body(data, version)
    record: dict[str, Any] = {
        "version_id": version.version_id,
        "versioned": bool(version._is_versioned),
        "last_modified": modified,
        "etag": version.etag.strip('"'),
        "size": int(version.size),
        "blob": digest,
        "metadata": dict(version._metadata),
        "storage_class": version.storage_class,
    }
    for name in ("encryption", "kms_key_id", "bucket_key_enabled", "checksum_value", "checksum_type"):
        value = getattr(version, name, None)
        if value is not None:
            record[name] = value
    if version.checksum_algorithm:
        record["checksum_algorithm"] = version.checksum_algorithm
    return record


def _store_body(data: DataDir, version: Any) -> str:
    """The body's blob: a small body read whole; a large one (moto keeps it in a temporary file) in chunks, each
    read under the key's lock as moto reads it, so it is never whole in memory nor holds the GIL for long."""
    if int(version.size) < LARGE_BODY:
        body = version.value
        return data.put_blob(body, sha256_hex(body))
    buffer, position = version._value_buffer, [0]

    def chunk() -> bytes:
        with version.lock:
            buffer.seek(position[0])
            read = bytes(buffer.read(CHUNK))
        position[0] += len(read)
        return read

    return data.put_blob_chunks(iter(chunk, b""))


class LazyBody:
    """A restored object's body: read from its blob the first time moto touches it, then held in memory as
    moto holds a body (a spooled temporary file). A start restores 10,000 objects without reading one."""

    pending: weakref.WeakSet[LazyBody] = weakref.WeakSet()  # not read yet: their blobs must stay

    def __init__(self, path: str, digest: str, max_size: int) -> None:
        self.path, self.digest, self.max_size = path, digest, max_size
        self._buffer: Any = None
        self._lock = threading.Lock()
        self.closed = False
        LazyBody.pending.add(self)

    @property
    def loaded(self) -> bool:
        return self._buffer is not None

    def _load(self) -> Any:
        with self._lock:
            if self.closed:
                raise ValueError("I/O operation on closed file")  # what moto's own buffer says once disposed of
            if self._buffer is None:
                buffer = tempfile.SpooledTemporaryFile(self.max_size)  # noqa: SIM115 (held, as moto holds it)
                with open(self.path, "rb") as handle:
                    buffer.write(handle.read())
                self._buffer = buffer
                LazyBody.pending.discard(self)
            return self._buffer

    def __getattr__(self, name: str) -> Any:  # seek, read, write, truncate, tell, ...: the loaded buffer's
        return getattr(self._load(), name)

    def close(self) -> None:
        self.closed = True
        LazyBody.pending.discard(self)
        if self._buffer is not None:
            self._buffer.close()


def named_blobs(records: dict[str, BucketRecords]) -> set[str]:
    """The blobs a snapshot's object records (``S3Collector.cache`` when it was written) name: bodies, segments."""
    found = {blob for bucket in records.values() for entry in bucket.keys.values() for blob in entry.blobs}
    found.update(blob for bucket in records.values() for blob, _ in bucket.segments.values())
    return found


def pending_blobs() -> set[str]:
    """Blobs of restored bodies not read yet (kept by the garbage collection even when no snapshot names them)."""
    return {body.digest for body in list(LazyBody.pending) if not body.closed}


def blobs(objects: list[dict[str, Any]]) -> set[str]:
    """The blobs the object records of a snapshot read back name (after ``read_segments``)."""
    return {v["blob"] for o in objects for v in o["versions"] if "blob" in v}


def read_segments(data: DataDir, snapshot: Snapshot) -> None:
    """Replace the segment references of the snapshot's objects section by the key records they hold, each
    segment read and checked against its name (its sha256); the references go to ``SEGMENT_REFERENCES``."""
    records: list[dict[str, Any]] = []
    lines: list[bytes] = []
    segments = []
    for record, line in zip(snapshot.section(SECTION_OBJECTS), snapshot.section_lines(SECTION_OBJECTS), strict=True):
        if "segment" not in record:  # format 1: one line per key
            records.append(record)
            lines.append(line)
            continue
        try:
            body = data.read_blob(record["segment"])
        except OSError:
            body = b""
        if sha256_hex(body) != record["segment"]:
            raise StateDirError(
                f"{data.path}: snapshot {snapshot.name}'s objects segment {record['segment'][:12]} is missing or "
                f"damaged; nothing was loaded. {data._advice()}"
            )
        held = body.splitlines()
        lines.extend(held)
        records.extend(json.loads(b"[" + b",".join(held) + b"]"))
        segments.append(record)
    snapshot.sections[SECTION_OBJECTS], snapshot.lines[SECTION_OBJECTS] = records, lines
    snapshot.sections[SEGMENT_REFERENCES] = segments


def restore(data: DataDir, saved: dict[str, list[Any]], collector: S3Collector, *, seed: bool = True) -> int:
    """Put the buckets, key versions and tags back into moto's backend; returns the number of versions.

    ``saved``: the sections (``SECTION_BUCKETS``, ``SECTION_OBJECTS``, ``SECTION_TAGS``) and the object
    records' lines as read (``"lines"``), which seed the collector unless ``seed`` is false.
    """
    s3 = backend()
    for record in saved.get(SECTION_BUCKETS, []):
        if record["bucket"] not in s3.buckets:
            s3.create_bucket(record["bucket"], record.get("region") or "us-east-1")
        if record.get("versioning"):
            s3.buckets[record["bucket"]].versioning_status = record["versioning"]
    objects = saved.get(SECTION_OBJECTS, [])
    lines = saved.get("lines") or [b""] * len(objects)
    count = 0
    blob_root = os.path.abspath(data.blobs)  # absolute: a body may be read after a chdir
    for record, line in zip(objects, lines, strict=True):
        versions, records = _restore_key(blob_root, s3, record)
        s3.buckets[record["bucket"]].keys.setlist(record["key"], versions)
        count += len(versions)
        if seed and line and not any("tags" in r for r in records):  # format 1 kept tags in the line
            blob_names = tuple(r["blob"] for r in records if "blob" in r)
            bucket = collector.cache.setdefault(record["bucket"], BucketRecords())
            crc = zlib.crc32(record["key"].encode())
            bucket.keys[record["key"]] = Encoded(list(versions), records, line, blob_names, crc)
    for segment in saved.get(SEGMENT_REFERENCES, []) if seed else []:
        bucket = collector.cache.setdefault(segment["bucket"], BucketRecords())
        bucket.parts = int(segment["parts"])
        bucket.segments[int(segment["part"])] = (segment["segment"], int(segment["keys"]))
    for record in saved.get(SECTION_TAGS, []):
        s3.tagger.delete_all_tags_for_resource(record["arn"])
        s3.tagger.tag_resource(record["arn"], [{"Key": k, "Value": v} for k, v in record["tags"].items()])
    return count


def _restore_key(blob_root: str, s3: Any, record: dict[str, Any]) -> tuple[list[Any], list[dict[str, Any]]]:
    from moto.s3.models import FakeDeleteMarker, FakeKey

    versions: list[Any] = []
    previous: Any = None
    for saved in record["versions"]:
        modified = dt.datetime.fromisoformat(saved["last_modified"])
        if saved.get("delete_marker"):
            marker: Any = FakeDeleteMarker.__new__(FakeDeleteMarker)
            marker.key, marker.name, marker.last_modified = previous, record["key"], modified
            marker._version_id = saved["version_id"]
            versions.append(marker)
            continue
        key = _fake_key(FakeKey, s3, record, saved)
        digest = saved["blob"]  # the layout of DataDir.blob_path, without a Path per object
        key._value_buffer = LazyBody(f"{blob_root}/{digest[:2]}/{digest[2:]}", digest, key._max_buffer_size)
        key.contentsize = int(saved["size"])
        key.last_modified = modified
        if saved.get("tags"):  # format 1
            s3.tagger.tag_resource(key.arn, [{"Key": k, "Value": v} for k, v in saved["tags"].items()])
        versions.append(key)
        previous = key
    return versions, record["versions"]


def _fake_key(fake_key: Any, s3: Any, record: dict[str, Any], saved: dict[str, Any]) -> Any:
    key = fake_key(
        name=record["key"],
        value=b"",
        account_id=s3.account_id,
        region_name=s3.buckets[record["bucket"]].region_name,
        storage=saved.get("storage_class") or "STANDARD",
        etag=saved["etag"],
        is_versioned=saved.get("versioned", False),
        version_id=None if saved["version_id"] == "null" else saved["version_id"],
        bucket_name=record["bucket"],
        encryption=saved.get("encryption"),
        kms_key_id=saved.get("kms_key_id"),
        bucket_key_enabled=saved.get("bucket_key_enabled"),
        checksum_value=saved.get("checksum_value"),
        checksum_type=saved.get("checksum_type"),
    )
    key.checksum_algorithm = saved.get("checksum_algorithm")
    key._metadata.clear()
    key._metadata.update(saved.get("metadata") or {})
    return key
