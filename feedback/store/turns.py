"""Turns on a store file: one process at a time, the others waiting in the kernel's queue.

A `Turn` is an exclusive `flock` on a sidecar file next to the store (`feedback.duckdb.lock`),
held for a unit of work. A process that wants the store while another holds it sleeps in
`flock` until the holder lets go (the kernel wakes the sleepers when the lock is released, with
no polling gap in which a waiter could miss its turn); when the holder ends, however it ends
(SIGKILL too), the kernel releases the lock. Waiting has a deadline: `flock` has none, so the
blocking call runs in a helper thread, and a caller past its deadline raises `StoreBusy`
naming the holder, which writes its pid, program and start time into the sidecar.

A helper left waiting after its caller gave up takes the next caller's place in the queue if one
comes in time, else lets the lock go as soon as it gets it. The lock belongs to an open file
description, which a forked child shares: `forget` (after a fork, in the child) closes the
child's copy without unlocking, so the parent's turn is not cut short and the child waits for
its own.
"""

from __future__ import annotations

import fcntl
import os
import shlex
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from ..errors import StoreBusy, StoreError


class Turn:
    """The sidecar lock of one store file, as this process takes it (one taker at a time: see `embedded`)."""

    def __init__(self, store: Path):
        self.store = store
        self.path = store.with_name(store.name + ".lock")
        self._fd: int | None = None  # held
        self._waiter: _Waiter | None = None
        self._mutex = threading.Lock()

    def acquire(self, deadline: float, timeout: float) -> None:
        """Wait for the lock until `deadline` (time.monotonic); raise StoreBusy past it."""
        with self._mutex:
            waiter = self._waiter
            if waiter is None:
                fd = self._open()
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    waiter = self._waiter = _Waiter(self, fd)
                    waiter.start()
                else:
                    self._took(fd)
                    return
            waiter.wanted = True
        waiter.done.wait(max(0.0, deadline - time.monotonic()))
        with self._mutex:
            if waiter.got:
                self._waiter = None
                self._took(waiter.fd)
                return
            waiter.wanted = False  # it goes on waiting, for the next caller or to let go at once
            holder = _read(waiter.fd)
        raise StoreBusy(busy(self.store, holder, timeout))

    def holder(self) -> str:
        """Who holds the turn, as the holder wrote it (empty when unknown)."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)  # another description: closing it keeps any flock
        except OSError:
            return ""
        try:
            return _read(fd)
        finally:
            os.close(fd)

    def release(self) -> None:
        with self._mutex:
            fd, self._fd = self._fd, None
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)  # before closing: a forked child may share this file description
            os.close(fd)

    def forget(self) -> None:
        """In a forked child: drop the parent's descriptors without touching its lock."""
        for fd in (self._fd, self._waiter and self._waiter.fd):
            if fd is not None:
                os.close(fd)
        self._fd = self._waiter = None
        self._mutex = threading.Lock()

    def _open(self) -> int:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise StoreError(f"cannot open the store's lock file {self.path}: {exc.strerror}; the folder must be "
                             "writable by every process that uses the store") from None

    def _took(self, fd: int) -> None:
        self._fd = fd
        note = f"pid {os.getpid()} ({_program()}, since {datetime.now(timezone.utc):%H:%M:%S} UTC)".encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, note, 0)


class _Waiter(threading.Thread):
    """Sleeps in a blocking flock for whoever wants the turn; lets it go at once if nobody does any more."""

    def __init__(self, turn: Turn, fd: int):
        super().__init__(name=f"store turn {turn.path.name}", daemon=True)
        self.turn, self.fd = turn, fd
        self.wanted = self.got = False
        self.done = threading.Event()

    def run(self) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        with self.turn._mutex:
            if self.turn._waiter is not self:  # forgotten in a fork meanwhile (cannot happen in this process)
                return
            if self.wanted:
                self.got = True
                self.done.set()
                return
            self.turn._waiter = None
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def busy(store: Path, holder: str, timeout: float) -> str:
    """StoreBusy's message for a store whose turn `holder` kept past the deadline."""
    return (f"the store {store} is busy: {holder or 'another process'} has held it for over {timeout:g} s; "
            "try again, or stop that process if it hangs")


def _read(fd: int) -> str:
    try:
        return os.pread(fd, 300, 0).decode(errors="replace").strip()
    except OSError:
        return ""


def _program() -> str:
    words = [Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python", *sys.argv[1:3]]
    return shlex.join(words)[:80]
