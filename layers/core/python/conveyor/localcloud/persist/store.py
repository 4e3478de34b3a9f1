"""The data directory: snapshots of the local cloud's state on disk, swapped in atomically.

Layout of ``DATA_DIR``::

    conveyor-state.json      what the directory is: {"format": "conveyor-local-state", "version": N}
    current                  the name of the current snapshot (one line), replaced by rename
    snapshots/000042/        one snapshot: manifest.json + sections.jsonl (every section's JSON lines)
    blobs/ab/abcdef...       object bodies and other large values, named by their sha256
    lock                     held (flock) by the cloud that uses the directory

A snapshot is written beside the current one (``snapshots/.tmp-000043``), every file fsynced, the
directory renamed to ``snapshots/000043``, then ``current`` is replaced (write, fsync, rename, fsync
of the directory). A crash at any point leaves ``current`` naming a whole snapshot. Blobs are written
(and fsynced) before the manifest that names them, and only when new: an object stored once is not
written again, so snapshotting 10,000 objects after one more arrived writes one blob.

Reading refuses, before anything is loaded, a directory that is not Conveyor's, one written in
a format version this Conveyor does not read, and one whose current snapshot is incomplete or altered
(checksums in the manifest): :class:`StateDirError`, which ``conveyor up`` reports with exit code 2.
Format 2 (every section in one file, object records in segments, object tags in a section of their own)
reads format 1 too; opening a format 1 directory marks it format 2, so an older Conveyor refuses it from
then on.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from conveyor.errors import ConveyorError

FORMAT = "conveyor-local-state"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)  # format 1 kept object tags inside the object records
MARKER = "conveyor-state.json"
CURRENT = "current"
MANIFEST = "manifest.json"
SECTIONS = "sections.jsonl"  # every section of a snapshot, one after the other (format 1: a file per section)
KEEP_SNAPSHOTS = 2  # the current one and the one before it
INCOMING = ".incoming"  # under blobs/: a large blob while it is written, before it has its name


class StateDirError(ConveyorError):
    """The data directory cannot be used as it is; nothing in it was changed."""


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # some file systems cannot open a directory for fsync
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_durably(path: Path, data: bytes) -> None:
    """Write ``path`` whole or not at all: a temporary file, fsynced, renamed over it."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)
    _fsync_dir(path.parent)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Section:
    """One section of a snapshot as read back: its records, in the order they were written."""

    name: str
    records: list[dict[str, Any]]


@dataclass
class Snapshot:
    """A snapshot read from disk (or about to be written): header fields and sections."""

    sections: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    created_at: float = 0.0
    name: str = ""
    version: int = FORMAT_VERSION
    lines: dict[str, list[bytes]] = field(default_factory=dict)  # each record as it was on disk

    def section_lines(self, name: str) -> list[bytes]:
        return self.lines.get(name, [])

    def section(self, name: str) -> list[dict[str, Any]]:
        return self.sections.get(name, [])


class SnapshotWriter:
    """Collects one snapshot's sections, then writes them in one file (``SECTIONS``) with one write and one
    fsync: each system call hands the GIL back and forth with the threads serving requests, so a snapshot
    makes few. The manifest gives each section's offset, length, sha256 and number of records."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._sections: dict[str, tuple[list[bytes], int]] = {}  # name -> (chunks, records)

    def add(self, section: str, records: Iterable[dict[str, Any]]) -> None:
        self.add_lines(section, [json.dumps(r, separators=(",", ":"), allow_nan=False).encode() for r in records])

    def add_lines(self, section: str, lines: Iterable[bytes]) -> None:
        """Records already encoded (one JSON document each, no newline)."""
        lines = lines if isinstance(lines, list) else list(lines)
        chunks, count = self._sections.get(section, ([], 0))
        if lines:
            chunks.append(b"\n".join(lines) + b"\n")
        self._sections[section] = (chunks, count + len(lines))

    def close(self) -> dict[str, Any]:
        """Write the file (fsynced); the manifest's ``sections``."""
        sections, parts, offset = {}, [], 0
        for name, (chunks, count) in self._sections.items():
            data = b"".join(chunks)
            sections[name] = {
                "file": SECTIONS,
                "offset": offset,
                "length": len(data),
                "sha256": sha256_hex(data),
                "records": count,
            }
            parts.append(data)
            offset += len(data)
        with (self.directory / SECTIONS).open("wb") as handle:
            handle.write(b"".join(parts))
            handle.flush()
            os.fsync(handle.fileno())
        self._sections.clear()
        return sections


class DataDir:
    """A data directory (see the module docstring). ``open()`` checks it; nothing is written before."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.blobs = path / "blobs"
        self.snapshots = path / "snapshots"
        self._lock_handle: IO[str] | None = None
        self._known_blobs: set[str] = set()
        self._unsynced: list[Path] = []  # blobs written since the last sync_blobs()

    # checks --------------------------------------------------------------------------------
    def check(self) -> None:
        """Refuse a foreign, incompatible or corrupt directory (:class:`StateDirError`); read nothing else."""
        if not self.path.exists():
            return
        if not self.path.is_dir():
            raise StateDirError(f"{self.path} is not a directory: give another --data-dir")
        marker = self.path / MARKER
        if not marker.exists():
            if any(self.path.iterdir()):
                raise StateDirError(
                    f"{self.path} is not a Conveyor data directory (no {MARKER}) and is not empty: nothing was "
                    "changed; give another --data-dir"
                )
            return
        try:
            header = json.loads(marker.read_text())
        except (OSError, ValueError) as error:
            raise StateDirError(f"{marker} is unreadable ({error}): {self._advice()}") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise StateDirError(f"{self.path} is not a Conveyor data directory ({MARKER} says otherwise)")
        if header.get("version") not in READABLE_VERSIONS:
            raise StateDirError(
                f"{self.path} holds state written by another version of Conveyor (state format "
                f"{header.get('version')}, this Conveyor reads {FORMAT_VERSION}); nothing was loaded or changed. "
                f"{self._advice()}"
            )

    def _advice(self) -> str:
        return "start empty with `conveyor up --fresh` (moves it aside, keeping it) or delete it with `conveyor reset`"

    # lifecycle -------------------------------------------------------------------------------
    def open(self) -> None:
        """Check the directory, create it if needed and take its lock (one cloud per directory)."""
        self.check()
        self.path.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        marker = self.path / MARKER
        if not marker.exists() or json.loads(marker.read_text()).get("version") != FORMAT_VERSION:
            write_durably(marker, json.dumps({"format": FORMAT, "version": FORMAT_VERSION}).encode())
        self.blobs.mkdir(exist_ok=True)
        self.snapshots.mkdir(exist_ok=True)

    def _take_lock(self) -> None:
        import fcntl

        handle = (self.path / "lock").open("a+")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            handle.close()
            raise StateDirError(f"{self.path} is in use by a running local cloud (pid {owner})") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._lock_handle = handle

    def close(self) -> None:
        if self._lock_handle is not None:
            self._lock_handle.close()  # releases the flock
            self._lock_handle = None

    def in_use(self) -> bool:
        """Whether a running cloud holds the directory's lock."""
        import fcntl

        lock = self.path / "lock"
        if not lock.exists():
            return False
        with lock.open("a+") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return True
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        return False

    def move_aside(self) -> Path | None:
        """``--fresh``: rename the directory to ``DIR.moved-YYYYmmdd-HHMMSS`` (None when there was nothing)."""
        if not self.path.exists() or not any(self.path.iterdir()):
            return None
        self.check()
        if self.in_use():
            raise StateDirError(f"{self.path} is in use by a running local cloud: stop it first")
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = self.path.with_name(f"{self.path.name}.moved-{stamp}")
        counter = 1
        while target.exists():
            counter += 1
            target = self.path.with_name(f"{self.path.name}.moved-{stamp}-{counter}")
        self.path.rename(target)
        return target

    def delete(self) -> None:
        """``conveyor reset``: remove the directory (only a Conveyor data directory no cloud is using)."""
        self.check()
        if self.in_use():
            raise StateDirError(f"{self.path} is in use by a running local cloud: stop it first")
        if self.path.exists():
            shutil.rmtree(self.path)

    # blobs -------------------------------------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        return self.blobs / digest[:2] / digest[2:]

    def has_blob(self, digest: str) -> bool:
        if digest in self._known_blobs:
            return True
        if self.blob_path(digest).exists():
            self._known_blobs.add(digest)
            return True
        return False

    def put_blob(self, data: bytes, digest: str | None = None) -> str:
        """Store ``data`` under its sha256 (once) and return the digest."""
        digest = digest or sha256_hex(data)
        if not self.has_blob(digest):
            path = self.blob_path(digest)
            path.parent.mkdir(exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_bytes(data)
            tmp.replace(path)
            self._unsynced.append(path)
            self._known_blobs.add(digest)
        return digest

    def put_blob_chunks(self, chunks: Iterable[bytes]) -> str:
        """Store a large value given in chunks, hashed as it is written (never whole in memory); its digest."""
        incoming = self.blobs / INCOMING
        incoming.mkdir(exist_ok=True)
        tmp = incoming / f"{os.getpid()}-{threading.get_ident()}.tmp"
        digest = hashlib.sha256()
        with tmp.open("wb") as handle:
            for chunk in chunks:
                digest.update(chunk)
                handle.write(chunk)
        name = digest.hexdigest()
        if self.has_blob(name):
            tmp.unlink()
            return name
        path = self.blob_path(name)
        path.parent.mkdir(exist_ok=True)
        tmp.replace(path)
        self._unsynced.append(path)
        self._known_blobs.add(name)
        return name

    def sync_blobs(self) -> None:
        """Make the blobs written since the last call durable (before a manifest names them): one fsync
        each, or one sync of the file system for many (the first snapshot of a big state)."""
        written, self._unsynced = self._unsynced, []
        if len(written) > 1000:  # a first snapshot of a big state: one sync beats thousands of fsyncs
            os.sync()
            return
        for path in written:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        for parent in {p.parent for p in written}:
            _fsync_dir(parent)

    def read_blob(self, digest: str) -> bytes:
        return self.blob_path(digest).read_bytes()

    # snapshots ---------------------------------------------------------------------------------
    def current_name(self) -> str | None:
        pointer = self.path / CURRENT
        if not pointer.exists():
            return None
        return pointer.read_text().strip() or None

    def _next_name(self) -> str:
        numbers = [int(p.name) for p in self.snapshots.iterdir() if p.name.isdigit()]
        return f"{max(numbers, default=0) + 1:06d}"

    @contextlib.contextmanager
    def new_snapshot(self) -> Iterator[SnapshotWriter]:
        """Write a snapshot beside the current one; on leaving the block it becomes current (atomically)."""
        name = self._next_name()
        tmp = self.snapshots / f".tmp-{name}"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        writer = SnapshotWriter(tmp)
        try:
            yield writer
            sections = writer.close()
            self.sync_blobs()
        except BaseException:
            with contextlib.suppress(Exception):
                writer.close()
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        manifest = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "created_at": time.time(),
            "conveyor": _VERSIONS["conveyor"],
            "moto": _VERSIONS["moto"],
            "sections": sections,
        }
        write_durably(tmp / MANIFEST, json.dumps(manifest, indent=1).encode())
        final = self.snapshots / name
        tmp.rename(final)
        _fsync_dir(self.snapshots)
        write_durably(self.path / CURRENT, f"{name}\n".encode())
        self._prune()

    def _prune(self) -> None:
        kept = sorted((p for p in self.snapshots.iterdir() if p.name.isdigit()), key=lambda p: p.name)
        for old in kept[:-KEEP_SNAPSHOTS]:
            shutil.rmtree(old, ignore_errors=True)
        for stale in self.snapshots.glob(".tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)

    def collect_garbage(self, referenced: set[str]) -> int:
        """Delete blobs no kept snapshot names (``referenced`` must cover every kept snapshot)."""
        removed = 0
        shutil.rmtree(self.blobs / INCOMING, ignore_errors=True)  # left by a crash (blobs are written in this thread)
        for prefix in self.blobs.iterdir() if self.blobs.exists() else ():
            for blob in prefix.iterdir():
                digest = prefix.name + blob.name
                if digest not in referenced and not blob.name.startswith("."):
                    blob.unlink(missing_ok=True)
                    self._known_blobs.discard(digest)
                    removed += 1
        return removed

    def read_current(self) -> Snapshot | None:
        """The current snapshot, fully read and verified (None for a new directory)."""
        name = self.current_name()
        if name is None:
            return None
        directory = self.snapshots / name
        try:
            manifest = json.loads((directory / MANIFEST).read_text())
        except (OSError, ValueError) as error:
            raise StateDirError(
                f"{self.path}: the current snapshot {name} is unreadable ({error}); nothing was loaded. {self._advice()}"
            ) from None
        if manifest.get("format") != FORMAT or manifest.get("version") not in READABLE_VERSIONS:
            raise StateDirError(
                f"{self.path}: snapshot {name} has state format {manifest.get('version')}, this Conveyor reads "
                f"{', '.join(map(str, READABLE_VERSIONS))}; nothing was loaded. {self._advice()}"
            )
        snapshot = Snapshot(created_at=float(manifest.get("created_at") or 0.0), name=name)
        snapshot.version = int(manifest["version"])
        files: dict[str, bytes] = {}
        for section, entry in manifest.get("sections", {}).items():
            lines = self._read_section(directory, name, section, entry, files)
            snapshot.lines[section] = lines
            snapshot.sections[section] = json.loads(b"[" + b",".join(lines) + b"]")  # one call: faster than per line
        return snapshot

    def _read_section(
        self, directory: Path, name: str, section: str, entry: dict[str, Any], files: dict[str, bytes]
    ) -> list[bytes]:
        """A section's lines, checked; ``files``: the files read so far (sections share one since format 2)."""
        try:
            if entry["file"] not in files:
                files[entry["file"]] = (directory / entry["file"]).read_bytes()
            data = files[entry["file"]]
            if "offset" in entry:
                data = data[int(entry["offset"]) : int(entry["offset"]) + int(entry["length"])]
        except (OSError, KeyError, ValueError) as error:
            raise StateDirError(
                f"{self.path}: snapshot {name} lacks its {section} ({error}). {self._advice()}"
            ) from None
        if sha256_hex(data) != entry.get("sha256"):
            raise StateDirError(
                f"{self.path}: snapshot {name}'s {section} does not match its checksum (altered or damaged); "
                f"nothing was loaded. {self._advice()}"
            )
        return [line for line in data.splitlines() if line]

    def stored_blobs(self) -> set[str]:
        """The digests of every blob in the directory (one listing per prefix directory, no stat per blob)."""
        if not self.blobs.exists():
            return set()
        found: set[str] = set()
        for prefix in os.scandir(self.blobs):
            if prefix.is_dir() and not prefix.name.startswith("."):
                found.update(prefix.name + n for n in os.listdir(prefix.path) if not n.startswith("."))
        return found

    def verify_blobs(self, digests: Iterable[str]) -> None:
        stored = self.stored_blobs()
        self._known_blobs |= stored
        missing = [d for d in digests if d not in stored]
        if missing:
            raise StateDirError(
                f"{self.path}: {len(missing)} stored object bodies are missing (e.g. {missing[0][:12]}); nothing "
                f"was loaded. {self._advice()}"
            )


def _version(distribution: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "?"


class _Versions(dict[str, str]):
    """Installed versions, looked up once (reading a distribution's metadata parses its headers)."""

    def __missing__(self, distribution: str) -> str:
        self[distribution] = _version(distribution)
        return self[distribution]


_VERSIONS = _Versions()
