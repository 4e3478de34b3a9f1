"""A read-only file over an S3 object's byte ranges, for pyarrow: a worker reads a Parquet
file's footer and one row group, never the whole object."""

from __future__ import annotations

import io

from conveyor.ports import ObjectStore

_BLOCK = 1024 * 1024


class RangedFile(io.RawIOBase):
    """``seek``/``read`` over ranged GETs (reads of at least 1 MB, the last one cached)."""

    def __init__(self, store: ObjectStore, bucket: str, key: str, version_id: str | None = None) -> None:
        super().__init__()
        self._store, self._bucket, self._key, self._version = store, bucket, key, version_id
        head = store.head(bucket, key, version_id)
        self._size = int(head.size or 0) if head is not None else 0
        self._position = 0
        self._cache_start, self._cache = 0, b""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        wanted = min(len(buffer), self._size - self._position)
        if wanted <= 0:
            return 0
        start, end = self._position, self._position + wanted
        cached_end = self._cache_start + len(self._cache)
        if not (self._cache_start <= start and end <= cached_end):
            self._cache_start = start
            self._cache = self._store.get_range(self._bucket, self._key, start, max(end, start + _BLOCK), self._version)
        offset = start - self._cache_start
        data = self._cache[offset : offset + wanted]
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)
