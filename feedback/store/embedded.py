"""The embedded store: a DuckDB file, the default backend.

A `Store` opens a connection for one unit of work and closes it at once, so other
processes (ingest, the sampler, the app) can get in. DuckDB lets one process hold a
file at a time; processes take turns on it through a sidecar lock (`turns`), waiting in
the kernel's queue, and only a holder that keeps it past the deadline (`busy_timeout`)
makes the others raise `StoreBusy`. Results come back as plain data (lists of dicts,
Arrow tables), never as cursors or relations, and every value goes in as a parameter.
pyarrow is imported only by the work that builds Arrow data: rows and values need none.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import threading
import time
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import duckdb

from ..errors import StoreBusy, StoreError
from .migrations import MIGRATIONS, apply
from .reads import Reads
from .turns import Turn, busy

if TYPE_CHECKING:
    import pyarrow as pa

DEFAULT_BUSY_TIMEOUT = 15.0
FEW_ROWS = 64  # `insert_rows` writes up to this many rows as one INSERT ... VALUES statement, more as Arrow
_LOCKS: dict[Path, threading.RLock] = {}


def quote(identifier: str) -> str:
    """Quote an SQL identifier (table or column name)."""
    return '"' + identifier.replace('"', '""') + '"'


def literal(text: str | Path) -> str:
    """Quote an SQL string literal, for the statements that take no parameters (ATTACH, SET)."""
    return "'" + str(text).replace("'", "''") + "'"


def insert_rows(tx, table: str, rows: list[dict], schema: Callable[[], pa.Schema]) -> None:
    """Append rows (dicts with the same keys) to `table` on either backend: a few as one parameterised
    INSERT ... VALUES statement, which needs no pyarrow (a one-shot command's decision), more as the Arrow
    table of `schema()`."""
    if not rows:
        return
    if len(rows) > FEW_ROWS:
        import pyarrow as pa

        tx.insert(table, pa.Table.from_pylist(rows, schema=schema()))
        return
    names = list(rows[0])
    row = "(" + ", ".join("?" * len(names)) + ")"
    tx.execute(f"INSERT INTO {quote(table)} ({', '.join(quote(n) for n in names)}) VALUES " + ", ".join([row] * len(rows)),
               [r[n] for r in rows for n in names])


def ready_for(rows: int) -> None:
    """Call before a unit of work that will `insert_rows` about this many rows: past FEW_ROWS they go as Arrow, and
    pyarrow loads here (and pandas as the transaction starts, see `_warm_arrow`), not while the store is held."""
    if rows > FEW_ROWS:
        import pyarrow  # noqa: F401


class Tx:
    """One open unit of work. Every call runs to completion and returns plain data."""

    dialect = "duckdb"  # PostgreSQL's is "postgres": for the rare statement whose SQL must differ

    def __init__(self, con):
        self._con = con
        self._registered = 0

    def execute(self, sql: str, params=None) -> None:
        self._run(sql, params)

    def rows(self, sql: str, params=None) -> list[dict]:
        result = self._run(sql, params)
        names = [d[0] for d in result.description]
        return [dict(zip(names, row)) for row in result.fetchall()]

    def value(self, sql: str, params=None):
        row = self._run(sql, params).fetchall()
        return row[0][0] if row else None

    def arrow(self, sql: str, params=None) -> pa.Table:
        try:
            return self._con.sql(sql, params=params).to_arrow_table()
        except duckdb.Error as exc:
            raise StoreError(str(exc)) from exc

    def lock(self, name: str) -> None:
        """Hold the lock `name` until the transaction ends: a transaction on the file already holds it alone."""

    def _run(self, sql: str, params):
        try:
            return self._con.execute(sql, params)
        except duckdb.Error as exc:
            raise StoreError(str(exc)) from exc

    @contextmanager
    def registered(self, table: pa.Table) -> Iterator[str]:
        """Make an Arrow table queryable under a temporary name for the duration of the block."""
        self._registered += 1
        name = f"_arrow_{self._registered}"
        self._con.register(name, table)
        try:
            yield name
        except BaseException:
            with suppress(duckdb.Error):  # a failed statement aborted the transaction, which refuses this too
                self._con.unregister(name)
            raise
        self._con.unregister(name)

    def insert(self, table: str, data: pa.Table) -> None:
        """Append an Arrow table to `table`, matching columns by name."""
        with self.registered(data) as name:
            columns = ", ".join(quote(c) for c in data.column_names)
            self._run(f"INSERT INTO {quote(table)} ({columns}) SELECT {columns} FROM {name}", None)


class Store(Reads):
    """A DuckDB file, opened briefly for each unit of work."""

    dialect = "duckdb"

    def __init__(self, path: str | Path, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT):
        self.path = Path(path)
        self.busy_timeout = busy_timeout

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    @contextmanager
    def connect(self) -> Iterator[Tx]:
        """A connection for one unit of work, without a transaction of its own."""
        con = _ENGINE.attach(self.path.resolve(), self.busy_timeout)
        try:
            yield Tx(con)
        finally:
            _ENGINE.release(self.path.resolve(), con)

    @contextmanager
    def atomic(self, *, shared: bool = False) -> Iterator[Tx]:
        """A transaction: committed when the block ends, rolled back if it raises.

        Transactions on one file are serialised within this process (DuckDB's file lock
        already serialises processes), so read-then-write steps such as claiming the next
        item cannot interleave; `shared` (reviewers' units of work, which PostgreSQL runs
        side by side) changes nothing here.
        """
        _warm_arrow()
        with _LOCKS.setdefault(self.path.resolve(), threading.RLock()), self.connect() as tx:
            tx.execute("BEGIN TRANSACTION")
            try:
                yield tx
            except BaseException:
                tx.execute("ROLLBACK")
                raise
            tx.execute("COMMIT")

    @contextmanager
    def memory_limit(self, limit: str) -> Iterator[None]:
        """Hold DuckDB to `limit` (such as "500MB"; it spills to disk beyond) in the block, then reset it.

        The limit belongs to the process's engine, so work in other threads meanwhile shares it.
        """
        with self.connect() as tx:
            tx.execute(f"SET memory_limit = {literal(limit)}")
        try:
            yield
        finally:
            with self.connect() as tx:
                tx.execute("RESET memory_limit")

    def migrate(self, *, deferred: bool = False) -> list[str]:
        """Apply the migrations not yet recorded, in order; return their names.

        A store that has them all is only read (every process checks once), never written. `deferred`: the
        next unit of work checks (and applies) them as it opens the file, before its own statements, which
        saves a one-shot command an opening of the file (none are named then).
        """
        if deferred and _ENGINE.defer_migrations(self.path.resolve()):
            return []
        with self.connect() as tx:
            if _up_to_date(tx):
                return []
        with self.atomic() as tx:
            return apply(tx, MIGRATIONS)

    def compact(self) -> None:
        """Rewrite the file from its live rows, so nothing deleted or overwritten lingers in free blocks.

        The store is held throughout, the swap of the files too: no other process works on it meanwhile.
        """
        path = self.path.resolve()
        fresh = path.with_name(path.name + ".compact")
        fresh.unlink(missing_ok=True)

        def swap():
            os.replace(fresh, path)
            path.with_name(path.name + ".wal").unlink(missing_ok=True)

        with _ENGINE.alone(path, self.busy_timeout, after_detach=swap) as con:
            tx = Tx(con)
            tx.execute("CHECKPOINT")
            tx.execute(f"ATTACH {literal(fresh)} AS fresh")
            tx.execute(f"COPY FROM DATABASE {_alias(path)} TO fresh")
            tx.execute("DETACH fresh")


@contextmanager
def scratch() -> Iterator[Tx]:
    """SQL over Arrow data in memory, with no store attached: compute without holding any store.

        with scratch() as tx, tx.registered(table) as name:
            counts = tx.arrow(f"SELECT label, count(*) FROM {name} GROUP BY 1")
    """
    con = _ENGINE.memory()
    try:
        yield Tx(con)
    finally:
        con.close()


def _warm_arrow() -> None:
    """In a process that builds Arrow data, let pyarrow import pandas now, before the store is held.

    pyarrow imports pandas the first time it converts Python values (a batch of decisions, a run's
    record), half a second or more, and a transaction would spend that time holding the store while
    every other process waits. Modules that build Arrow data import pyarrow when they load, before any
    transaction; a process that never loaded pyarrow (a one-shot `feedback label`) writes its few rows
    without it (`insert_rows`) and imports neither.
    """
    if "pyarrow" in sys.modules and "pandas" not in sys.modules:
        sys.modules["pyarrow"].array([0])


def _up_to_date(tx: Tx) -> bool:
    """Whether the file records every migration (a new file has no `migrations` table)."""
    try:
        return {name for name, _ in MIGRATIONS} <= {r["name"] for r in tx.rows("SELECT name FROM migrations")}
    except StoreError:
        return False


def _alias(path: Path) -> str:
    return "store_" + hashlib.blake2b(str(path).encode(), digest_size=6).hexdigest()


class _File:
    """A store file as this process uses it: the units of work in progress share one attachment, made
    when the first one starts, under the file's turn, and undone when the last one ends."""

    def __init__(self, path: Path):
        self.path, self.alias = path, _alias(path)
        self.turn = Turn(path)
        self.users = 0
        self.moving = False  # a thread is taking the turn and attaching, or detaching and giving it back
        self.changed = threading.Condition()


class _Engine:
    """One in-memory DuckDB per process, to which store files are attached for each unit of work.

    Opening a DuckDB database costs tens of milliseconds (it builds its catalog); attaching a
    file to a running engine costs a few. The first unit of work on a file in this process takes
    the file's turn (other processes wait in the kernel's queue meanwhile) and attaches it; units
    that start while it is attached, in any thread, join it (so a unit nested in another never waits
    for itself); the last to end detaches it, which checkpoints it and frees DuckDB's own lock, then
    gives the turn back. Threads of one process thus wait for the store as one, at one place in the
    queue. A process that does not take turns (an outside `duckdb.connect`) still holds DuckDB's
    lock: attaching is retried while the turn is held, and past the deadline raises `StoreBusy`
    naming that process.
    """

    def __init__(self, *, forked_open: frozenset[Path] = frozenset(), unmigrated: frozenset[Path] = frozenset()):
        self._con = None
        self._files: dict[Path, _File] = {}
        self._lock = threading.Lock()  # the engine's connection and `_files`
        self._forked_open = forked_open  # files an ancestor had attached when this process was forked
        self._unmigrated = set(unmigrated)  # files whose next attachment applies missing migrations first

    def reset(self) -> None:
        """Forget the parent's engine in a forked child (DuckDB is not fork-safe).

        The parent's connection object is kept, never used nor destroyed: tearing it down
        in the child would touch threads that did not survive the fork. The parent's turns
        stay the parent's: the child closes its copies of their descriptors without unlocking.
        A file the parent had attached stays registered in DuckDB's process-wide list of open
        files, so the child cannot attach it again: using it raises a `StoreError` that says so.
        """
        _FORKED_AWAY.append(self._con)
        held = frozenset(path for path, file in self._files.items() if file.users or file.moving)
        for file in self._files.values():
            file.turn.forget()
        _LOCKS.clear()  # a thread that held one in the parent does not exist here
        self.__init__(forked_open=self._forked_open | held, unmigrated=frozenset(self._unmigrated))

    def attach(self, path: Path, busy_timeout: float):
        """A cursor on the file, attached for this unit of work (see `release`)."""
        deadline = time.monotonic() + busy_timeout
        file = self._file(path)
        with file.changed:
            while file.moving:
                self._wait(file, deadline, busy_timeout)
            if file.users:
                file.users += 1
                return self._cursor(file)
            file.moving = True
        try:
            file.turn.acquire(deadline, busy_timeout)
            try:
                self._attach(file, deadline, busy_timeout)
            except BaseException:
                file.turn.release()
                raise
        except BaseException:
            self._settle(file, 0)
            raise
        self._settle(file, 1)
        return self._cursor(file)

    def release(self, path: Path, con) -> None:
        con.close()
        file = self._files[path]
        with file.changed:
            file.users -= 1
            if file.users:
                return
            file.moving = True
        try:
            self._detach(file)
        finally:
            file.turn.release()
            self._settle(file, 0)

    @contextmanager
    def alone(self, path: Path, busy_timeout: float, *, after_detach=None) -> Iterator:
        """A cursor on the file for this block alone (other threads of the process wait), then, still
        holding the turn, the file detached and `after_detach` called (to replace the file)."""
        deadline = time.monotonic() + busy_timeout
        file = self._file(path)
        with file.changed:
            while file.moving or file.users:
                self._wait(file, deadline, busy_timeout)
            file.moving = True
        try:
            file.turn.acquire(deadline, busy_timeout)
            try:
                self._attach(file, deadline, busy_timeout)
                con = self._cursor(file)
                try:
                    yield con
                finally:
                    con.close()
                    self._detach(file)
                if after_detach:
                    after_detach()
            finally:
                file.turn.release()
        finally:
            self._settle(file, 0)

    def defer_migrations(self, path: Path) -> bool:
        """Have the file's next attachment apply the missing migrations before its unit of work; False when it
        is attached, or being attached, now (the caller checks them at once)."""
        file = self._file(path)
        with file.changed:
            if file.users or file.moving:
                return False
            self._unmigrated.add(path)
            return True

    def memory(self):
        """A cursor of the engine's own in-memory database."""
        con = self._engine().cursor()
        con.execute("USE memory")
        con.execute("SET TimeZone = 'UTC'")
        return con

    def _engine(self):
        """The engine's connection, made on first use (tens of milliseconds: before a turn is taken, never in it)."""
        with self._lock:
            if self._con is None:
                self._con = duckdb.connect(":memory:")
            return self._con

    def _file(self, path: Path) -> _File:
        if path in self._forked_open:
            raise StoreError(f"this process was forked while its parent had the store {path} open, and DuckDB cannot "
                             "open a file again in a child forked meanwhile: fork before or after the unit of work "
                             "(`with store.atomic()`), or start the child with multiprocessing's 'spawn' or "
                             "'forkserver' method")
        self._engine()
        with self._lock:
            if path not in self._files:
                self._files[path] = _File(path)
            return self._files[path]

    def _wait(self, file: _File, deadline: float, busy_timeout: float) -> None:
        """Wait for another thread of this process to finish taking or giving back the turn."""
        left = deadline - time.monotonic()
        if left <= 0 or not file.changed.wait(left):
            raise StoreBusy(busy(file.path, file.turn.holder(), busy_timeout))

    def _settle(self, file: _File, users: int) -> None:
        with file.changed:
            file.users, file.moving = users, False
            file.changed.notify_all()

    def _cursor(self, file: _File):
        with self._lock:
            con = self._con.cursor()
        con.execute(f"USE {file.alias}")
        con.execute("SET TimeZone = 'UTC'")
        return con

    def _attach(self, file: _File, deadline: float, busy_timeout: float) -> None:
        """ATTACH under the turn, retried only while a process that takes no turns holds the file; then the missing
        migrations, when a `Store.migrate(deferred=True)` left them to this attachment."""
        delay = 0.005
        while True:
            with self._lock:
                try:
                    self._con.execute(f"ATTACH {literal(file.path)} AS {file.alias}")
                    break
                except duckdb.IOException as exc:
                    if "lock" not in str(exc).lower():
                        raise
                    conflict = str(exc)
            if time.monotonic() + delay > deadline:
                raise StoreBusy(_outside(file.path, conflict, busy_timeout))
            time.sleep(delay)
            delay = min(delay * 2, 0.1)
        if file.path in self._unmigrated:
            try:
                self._migrate(file)
            except BaseException:
                self._detach(file)
                raise
            self._unmigrated.discard(file.path)

    def _migrate(self, file: _File) -> None:
        """Apply the missing migrations, in a transaction on the file just attached (no unit of work is on it yet)."""
        con = self._cursor(file)
        try:
            tx = Tx(con)
            if _up_to_date(tx):
                return
            tx.execute("BEGIN TRANSACTION")
            try:
                apply(tx, MIGRATIONS)
            except BaseException:
                tx.execute("ROLLBACK")
                raise
            tx.execute("COMMIT")
        finally:
            con.close()

    def _detach(self, file: _File) -> None:
        with self._lock:
            self._con.execute(f"DETACH {file.alias}")


def _outside(path: Path, conflict: str, busy_timeout: float) -> str:
    """StoreBusy's message for a file held by a process that does not take turns, named from DuckDB's error."""
    found = re.search(r"held in (.+?) \(PID (\d+)\)", conflict)
    who = f"process {found[2]} ({found[1]})" if found else "another process"
    return (f"the store {path} is busy: {who} has it open outside feedback (a duckdb.connect?) and held it for over "
            f"{busy_timeout:g} s; close that connection, or analyse a copy of the file or a release instead")


_FORKED_AWAY: list = []
_ENGINE = _Engine()
os.register_at_fork(after_in_child=_ENGINE.reset)
