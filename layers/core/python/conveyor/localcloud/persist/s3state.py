"""S3 in a snapshot: every bucket, every object with all its versions and delete markers, metadata and tags.

Collecting copies references to moto's key objects (a dict copy per bucket, GIL-atomic) and their
small attributes; bodies are read, hashed and stored only for versions not seen before (a moto key
version never changes its body: a PUT makes a new one), so re-snapshotting 10,000 objects is cheap.
Restoring builds moto's key objects directly in the backend: no HTTP, no notifications.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from conveyor.localcloud.persist.store import DataDir, sha256_hex
from conveyor.localcloud.resolver import ACCOUNT

SECTION_BUCKETS = "s3_buckets"
SECTION_OBJECTS = "s3_objects"
# Identity of a key version: (bucket, key, version id, etag, size, last modified)
VersionIdentity = tuple[str, str, str, str, int, str]


def backend() -> Any:
    from moto.s3.models import s3_backends

    return s3_backends[ACCOUNT]["aws"]


def _time(value: Any) -> str:
    return value.isoformat() if isinstance(value, dt.datetime) else str(value)


@dataclass
class S3Collector:
    """Keeps, across snapshots, the sha256 of each key version stored and each key's encoded record.

    A key whose versions are the same objects as last time reuses its line: a snapshot of 10,000
    unchanged keys costs a dict copy and 10,000 identity comparisons. A change of any object's tags
    (moto's tagger) drops the cache.
    """

    known: dict[VersionIdentity, str] = field(default_factory=dict)
    # (bucket, key) -> (the versions, held so their ids stay unique; their ids; the encoded record; its blobs)
    _lines: dict[tuple[str, str], tuple[tuple[Any, ...], tuple[int, ...], bytes, frozenset[str]]] = field(
        default_factory=dict
    )
    _tags_seen: tuple[int, int] = (0, 0)
    _versions: dict[int, tuple[Any, dict[str, Any]]] = field(default_factory=dict)  # id -> (version, record)

    def collect(self) -> tuple[list[dict[str, Any]], list[tuple[str, str, tuple[Any, ...]]]]:
        """The bucket records and, per key, its versions (moto objects): the fast part, no body is read."""
        buckets: list[dict[str, Any]] = []
        keys: list[tuple[str, str, tuple[Any, ...]]] = []
        s3 = backend()
        for name, bucket in list(s3.buckets.items()):
            buckets.append({"bucket": name, "versioning": bucket.versioning_status, "region": bucket.region_name})
            for key, versions in dict.copy(bucket.keys).items():  # dict.copy: atomic; moto's own copy is not
                keys.append((name, key, tuple(versions)))
        return buckets, keys

    def lines(self, data: DataDir, keys: list[tuple[str, str, tuple[Any, ...]]]) -> tuple[list[bytes], set[str]]:
        """One encoded record per key (bodies of new versions stored first, outside any lock); the blobs named."""
        tagger = backend().tagger
        tags_seen = (len(tagger.tags), sum(len(t) for t in list(tagger.tags.values())))
        if tags_seen != self._tags_seen:
            self._lines.clear()
            self._versions.clear()
            self._tags_seen = tags_seen
        versions_seen: dict[int, tuple[Any, dict[str, Any]]] = {}
        found: list[bytes] = []
        blobs: set[str] = set()
        current: dict[tuple[str, str], Any] = {}
        for bucket, key, versions in keys:
            ids = tuple(map(id, versions))
            cached = self._lines.get((bucket, key))
            if cached is None or cached[1] != ids:
                records = []
                for version in versions:
                    known = self._versions.get(id(version))
                    if known is None or known[0] is not version:
                        known = (version, self._version(data, tagger, bucket, key, version))
                    versions_seen[id(version)] = known
                    records.append(known[1])
                line = json.dumps({"bucket": bucket, "key": key, "versions": records}, separators=(",", ":")).encode()
                cached = (versions, ids, line, frozenset(r["blob"] for r in records if "blob" in r))
            else:
                versions_seen.update((id(v), self._versions[id(v)]) for v in versions if id(v) in self._versions)
            current[(bucket, key)] = cached
            found.append(cached[2])
            blobs |= cached[3]
        self._lines = current
        self._versions = versions_seen
        return found, blobs

    def _version(self, data: DataDir, tagger: Any, bucket: str, key: str, version: Any) -> dict[str, Any]:
        from moto.s3.models import FakeDeleteMarker

        modified = _time(version.last_modified)
        if isinstance(version, FakeDeleteMarker):
            return {"delete_marker": True, "version_id": version.version_id, "last_modified": modified}
        etag = version.etag.strip('"')
        identity: VersionIdentity = (bucket, key, version.version_id, etag, int(version.size), modified)
        digest = self.known.get(identity)
        if digest is None or not data.has_blob(digest):
            body = version.value
            digest = data.put_blob(body, sha256_hex(body))
            self.known[identity] = digest
        record: dict[str, Any] = {
            "version_id": version.version_id,
            "versioned": bool(version._is_versioned),
            "last_modified": modified,
            "etag": etag,
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
        tags = tagger.get_tag_dict_for_resource(version.arn)
        if tags:
            record["tags"] = tags
        return record


def blobs(objects: list[dict[str, Any]]) -> set[str]:
    """The blobs the object records of a snapshot read back name."""
    return {v["blob"] for o in objects for v in o["versions"] if "blob" in v}


def restore(data: DataDir, buckets: list[dict[str, Any]], objects: list[dict[str, Any]], collector: S3Collector) -> int:
    """Put the buckets and key versions back into moto's backend; returns the number of versions."""
    from moto.s3.models import FakeDeleteMarker, FakeKey

    s3 = backend()
    for record in buckets:
        if record["bucket"] not in s3.buckets:
            s3.create_bucket(record["bucket"], record.get("region") or "us-east-1")
        if record.get("versioning"):
            s3.buckets[record["bucket"]].versioning_status = record["versioning"]
    count = 0
    for record in objects:
        bucket = s3.buckets[record["bucket"]]
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
            key = _fake_key(FakeKey, s3, record, saved, data.read_blob(saved["blob"]))
            key.last_modified = modified
            if saved.get("tags"):
                s3.tagger.tag_resource(key.arn, [{"Key": k, "Value": v} for k, v in saved["tags"].items()])
            identity = (
                record["bucket"],
                record["key"],
                key.version_id,
                saved["etag"],
                saved["size"],
                saved["last_modified"],
            )
            collector.known[identity] = saved["blob"]
            versions.append(key)
            previous = key
        bucket.keys.setlist(record["key"], versions)
        count += len(versions)
    return count


def _fake_key(fake_key: Any, s3: Any, record: dict[str, Any], saved: dict[str, Any], body: bytes) -> Any:
    key = fake_key(
        name=record["key"],
        value=body,
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
