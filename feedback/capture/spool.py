"""The spool: append-only segment files that producers write and ingest absorbs.

Layout under the spool folder:
  active/  one open segment per writer (process); only its writer touches it
  sealed/  complete segments, moved here by an atomic rename; ingest reads only these
  done/    segments whose rows are committed to the store (the spool archive)

A writer appends each event with one `write` call on an unbuffered file, so an
accepted event survives the death of its process. A reader never sees half a
segment: a segment appears in `sealed/` whole, by rename.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from contextlib import suppress
from pathlib import Path

from ..processes import alive

ACTIVE, SEALED, DONE = "active", "sealed", "done"


def spool_dirs(root: str | Path) -> dict[str, Path]:
    root = Path(root)
    dirs = {name: root / name for name in (ACTIVE, SEALED, DONE)}
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)
    return dirs


class SegmentWriter:
    """Appends lines to this process's active segment; seals it by size or age. Thread-safe."""

    def __init__(self, root: str | Path, *, max_bytes: int, max_seconds: float):
        self.dirs = spool_dirs(root)
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds
        self._lock = threading.Lock()
        self._fd = -1
        self._name = ""
        self._size = 0
        self.lines = 0  # lines written by this writer, over all its segments
        self._opened = 0.0
        self._sealer: threading.Thread | None = None
        self._closed = threading.Event()

    def append(self, line: bytes) -> None:
        """Write one line (raises OSError, e.g. on a full disk, after sealing what was written)."""
        with self._lock:
            if self._fd < 0:
                self._open()
            try:
                written = os.write(self._fd, line)
                if written != len(line):
                    raise OSError(f"short write to {self._name}: {written} of {len(line)} bytes")
            except OSError:
                self._seal()
                raise
            self.lines += 1
            self._size += written
            if self._size >= self.max_bytes:
                self._seal()

    def seal(self) -> None:
        """Seal the current segment now, so ingest can take it."""
        with self._lock:
            self._seal()

    def close(self) -> None:
        self._closed.set()
        self.seal()

    def _open(self) -> None:
        self._name = f"{time.time_ns():020d}-{socket.gethostname()}-{os.getpid()}-{os.urandom(3).hex()}.jsonl"
        self._fd = os.open(self.dirs[ACTIVE] / self._name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._size = 0
        self._opened = time.monotonic()
        if self._sealer is None or not self._sealer.is_alive():
            self._sealer = threading.Thread(target=self._seal_by_age, name="feedback-spool-sealer", daemon=True)
            self._sealer.start()

    def _seal(self) -> None:
        if self._fd < 0:
            return
        os.close(self._fd)
        self._fd = -1
        active = self.dirs[ACTIVE] / self._name
        if self._size:
            os.rename(active, self.dirs[SEALED] / self._name)
        else:
            active.unlink(missing_ok=True)

    def _seal_by_age(self) -> None:
        while not self._closed.wait(self.max_seconds / 2):
            with self._lock:
                if self._fd >= 0 and time.monotonic() - self._opened >= self.max_seconds:
                    self._seal()


def sealed_segments(root: str | Path) -> list[Path]:
    """Sealed segments, oldest first, after sealing the active segments of writers that died."""
    dirs = spool_dirs(root)
    _recover_orphans(dirs)
    return sorted(dirs[SEALED].glob("*.jsonl"))


def sizes(segments: list[Path]) -> dict[Path, int]:
    """The segments still in place, with their sizes in bytes (another ingest run may have archived some)."""
    found = {}
    for segment in segments:
        with suppress(FileNotFoundError):
            found[segment] = segment.stat().st_size
    return found


def archive(segment: Path) -> None:
    """Move an ingested segment to `done/` (unless an overlapping ingest run did so first)."""
    with suppress(FileNotFoundError):
        os.replace(segment, segment.parent.parent / DONE / segment.name)


def pending_events(root: str | Path) -> int:
    """Events waiting in the spool (sealed and active segments), counted by lines."""
    dirs = spool_dirs(root)
    total = 0
    for folder in (dirs[ACTIVE], dirs[SEALED]):
        for path in folder.glob("*.jsonl"):
            try:
                with open(path, "rb") as f:
                    total += sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
            except FileNotFoundError:  # sealed since (counted in sealed/, listed later) or ingested since
                continue
    return total


def _recover_orphans(dirs: dict[str, Path]) -> None:
    host = socket.gethostname()
    for path in dirs[ACTIVE].glob("*.jsonl"):
        _, _, rest = path.name.partition("-")
        if not rest.startswith(host + "-"):
            continue
        pid = int(rest[len(host) + 1 :].split("-")[0])
        if not alive(pid):
            os.replace(path, dirs[SEALED] / path.name)
