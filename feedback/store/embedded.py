"""The embedded store: a DuckDB file, the default backend.

A `Store` opens a connection for one unit of work and closes it at once, so other
processes (ingest, the sampler, the app) can get in. DuckDB lets one process hold a
file at a time; a conflict is retried with jittered backoff up to a deadline, then
raises `StoreBusy`. Results come back as plain data (lists of dicts, Arrow tables),
never as cursors or relations, and every value goes in as a parameter.
"""

from __future__ import annotations

import hashlib
import os
import random
import threading
import time
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Iterator

import duckdb
import pyarrow as pa

from ..errors import StoreBusy, StoreError
from .migrations import MIGRATIONS

DEFAULT_BUSY_TIMEOUT = 15.0
_LOCKS: dict[Path, threading.RLock] = {}


def quote(identifier: str) -> str:
    """Quote an SQL identifier (table or column name)."""
    return '"' + identifier.replace('"', '""') + '"'


def literal(text: str | Path) -> str:
    """Quote an SQL string literal, for the statements that take no parameters (ATTACH, SET)."""
    return "'" + str(text).replace("'", "''") + "'"


class Tx:
    """One open unit of work. Every call runs to completion and returns plain data."""

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


class Store:
    """A DuckDB file, opened briefly for each unit of work."""

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
    def atomic(self) -> Iterator[Tx]:
        """A transaction: committed when the block ends, rolled back if it raises.

        Transactions on one file are serialised within this process (DuckDB's file lock
        already serialises processes), so read-then-write steps such as claiming the next
        item cannot interleave.
        """
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

    def rows(self, sql: str, params=None) -> list[dict]:
        with self.connect() as tx:
            return tx.rows(sql, params)

    def value(self, sql: str, params=None):
        with self.connect() as tx:
            return tx.value(sql, params)

    def arrow(self, sql: str, params=None) -> pa.Table:
        with self.connect() as tx:
            return tx.arrow(sql, params)

    def migrate(self) -> list[str]:
        """Apply the migrations not yet recorded, in order; return their names."""
        with self.atomic() as tx:
            tx.execute("CREATE TABLE IF NOT EXISTS migrations (name VARCHAR, applied_at TIMESTAMP)")
            done = {r["name"] for r in tx.rows("SELECT name FROM migrations")}
            applied = []
            for name, sql in MIGRATIONS:
                if name in done:
                    continue
                for statement in sql.split(";\n"):
                    if statement.strip():
                        tx.execute(statement)
                tx.execute("INSERT INTO migrations VALUES (?, now())", [name])
                applied.append(name)
        return applied

    def compact(self) -> None:
        """Rewrite the file from its live rows, so nothing deleted or overwritten lingers in free blocks."""
        fresh = self.path.with_name(self.path.name + ".compact")
        fresh.unlink(missing_ok=True)
        with self.atomic() as tx:
            tx.execute("CHECKPOINT")
            tx.execute(f"ATTACH {literal(fresh)} AS fresh")
        with self.connect() as tx:
            tx.execute(f"COPY FROM DATABASE {_alias(self.path.resolve())} TO fresh")
            tx.execute("DETACH fresh")
        os.replace(fresh, self.path)
        self.path.with_name(self.path.name + ".wal").unlink(missing_ok=True)



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


def _alias(path: Path) -> str:
    return "store_" + hashlib.blake2b(str(path).encode(), digest_size=6).hexdigest()


class _Engine:
    """One in-memory DuckDB per process, to which store files are attached for each unit of work.

    Opening a DuckDB database costs tens of milliseconds (it builds its catalog); attaching a
    file to a running engine costs a few. A file is detached, which checkpoints it and frees
    its lock for other processes, as soon as no unit of work in this process uses it.
    """

    def __init__(self):
        self._con = None
        self._users: dict[Path, int] = {}
        self._lock = threading.Lock()

    def reset(self) -> None:
        """Forget the parent's engine in a forked child (DuckDB is not fork-safe).

        The parent's connection object is kept, never used nor destroyed: tearing it down
        in the child would touch threads that did not survive the fork.
        """
        _FORKED_AWAY.append(self._con)
        self.__init__()

    def attach(self, path: Path, busy_timeout: float):
        alias = _alias(path)
        deadline = time.monotonic() + busy_timeout
        delay = 0.005
        while True:
            with self._lock:
                if self._con is None:
                    self._con = duckdb.connect(":memory:")
                if self._users.get(path) or self._try_attach(path, alias):
                    self._users[path] = self._users.get(path, 0) + 1
                    con = self._con.cursor()
                    break
            if time.monotonic() + delay > deadline:
                raise StoreBusy(f"the store {path} is busy: another process held it for over {busy_timeout:g} s; "
                                "try again, or stop the process holding it")
            time.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 2, 0.25)
        con.execute(f"USE {alias}")
        con.execute("SET TimeZone = 'UTC'")
        return con

    def memory(self):
        """A cursor of the engine's own in-memory database."""
        with self._lock:
            if self._con is None:
                self._con = duckdb.connect(":memory:")
            con = self._con.cursor()
        con.execute("USE memory")
        con.execute("SET TimeZone = 'UTC'")
        return con

    def release(self, path: Path, con) -> None:
        con.close()
        with self._lock:
            self._users[path] -= 1
            if not self._users[path]:
                del self._users[path]
                self._con.execute(f"DETACH {_alias(path)}")

    def _try_attach(self, path: Path, alias: str) -> bool:
        try:
            self._con.execute(f"ATTACH {literal(path)} AS {alias}")
            return True
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            return False


_FORKED_AWAY: list = []
_ENGINE = _Engine()
os.register_at_fork(after_in_child=_ENGINE.reset)
