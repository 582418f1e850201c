"""What the scheduled jobs that fill the review queue share (`feedback sample`, `feedback suspects`).

- `job_lock`: one run of a job at a time per workspace, across processes. It is an
  `flock` on a file in the workspace: the kernel releases it when the holding process
  ends, however it ends, so a killed run never leaves a stale lock behind. On a team store
  (PostgreSQL) it is the database's advisory lock instead, held by a connection of its own, so
  it holds across machines, and the server releases it when that connection ends. A job gives up
  at once when another run holds it; a step that must happen after the other's (publishing a
  release) waits in the lock's queue instead.
Jobs queue their picks with `review.queue.log_reasons` inside their own write transaction,
so the check that an item is not queued yet and the queueing cannot interleave with another writer.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

from ..errors import FeedbackError
from ..workspace import Workspace


class JobBusy(FeedbackError):
    """Another process is running the same job on this workspace."""


@contextmanager
def job_lock(ws: Workspace, job: str, *, wait: bool = False) -> Iterator[None]:
    """Hold the workspace's lock for `job` during the block; raise JobBusy at once if another process (or
    thread) holds it, or with `wait`, wait until it lets go."""
    if ws.store_url:
        with ws.store().run_lock(job, wait=wait) as holder:
            if holder is not None:
                raise JobBusy(f"another `feedback {job}` run is in progress ({holder}); this run did nothing. "
                              "The lock goes when that process ends; if it hangs, stop it")
            yield
        return
    path = ws.root / f".{job}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            raise JobBusy(f"another `feedback {job}` run is in progress ({holder}, lock {path}); this run did "
                          "nothing. The lock goes when that process ends; if it hangs, stop it") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} since {now():%Y-%m-%d %H:%M:%S} UTC".encode(), 0)
        yield
    finally:
        os.close(fd)


def now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)
