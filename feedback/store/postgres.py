"""The team store: PostgreSQL, for reviewers, workers and app replicas on several machines.

`PgStore` offers what the embedded `Store` offers (units of work as `atomic()` and `connect()`,
`tx.rows`, `tx.value`, `tx.arrow`, `tx.insert`, `tx.registered`), so capability code runs on
either. The capabilities' SQL is DuckDB's; the few spellings PostgreSQL lacks are translated here
(`?` parameters, `DOUBLE`, `[]::T[]`) or defined as functions by the `pg_*` migrations
(`arg_max`, `list_contains`, `len`, ...). A transaction takes the store's advisory lock: alone, so
writers see the serial order the embedded store gives, on any number of machines; or, for reviewers'
units of work (`atomic(shared=True)`), shared, beside each other, kept apart by row locks. Waiters are
served in arrival order by PostgreSQL's lock queue; reads in `connect()` take no lock (MVCC). Each
thread keeps one connection per store; a forked child opens its own.

PostgreSQL's text cannot hold a NUL character: the contract refuses events with one, and any other text
written here (a quarantined line, a note) keeps U+FFFD in its place. The password is never in the URL:
libpq reads it from $PGPASSWORD or ~/.pgpass.
"""

from __future__ import annotations

import io
import itertools
import os
import re
import threading
from contextlib import contextmanager
from functools import lru_cache
from typing import Iterator

import orjson
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.numeric import FloatLoader
from psycopg.types.string import TextLoader

from ..errors import StoreBusy, StoreError
from .embedded import quote
from .migrations import MIGRATIONS, PG_MIGRATIONS, apply
from .reads import Reads

_NAMES = itertools.count(1)
NUL_STAND_IN = "\ufffd"  # what a NUL character in written text becomes (events with one are refused before)
_LITERAL = re.compile(r"('(?:[^']|'')*'|\"(?:[^\"]|\"\")*\")")
_DOUBLE = re.compile(r"\bDOUBLE\b(?!\s+PRECISION)", re.I)
_EMPTY_LIST = re.compile(r"(?<![\w\]'])\[\]::")
#: PostgreSQL type (by name) -> Arrow type, for results; arrays of them are lists.
_ARROW = {"bool": pa.bool_(), "int2": pa.int16(), "int4": pa.int32(), "int8": pa.int64(), "float4": pa.float32(),
          "float8": pa.float64(), "numeric": pa.float64(), "text": pa.string(), "varchar": pa.string(),
          "bpchar": pa.string(), "json": pa.string(), "jsonb": pa.string(), "timestamp": pa.timestamp("us"),
          "timestamptz": pa.timestamp("us", "UTC"), "date": pa.date32(), "bytea": pa.binary()}
#: Arrow type -> PostgreSQL type, for temporary tables of Arrow data.
_PG = {pa.bool_(): "boolean", pa.int8(): "smallint", pa.int16(): "smallint", pa.int32(): "integer",
       pa.int64(): "bigint", pa.uint8(): "smallint", pa.uint16(): "integer", pa.uint32(): "bigint",
       pa.uint64(): "numeric", pa.float32(): "real", pa.float64(): "double precision", pa.string(): "text",
       pa.large_string(): "text", pa.date32(): "date", pa.binary(): "bytea"}


@lru_cache(maxsize=4096)
def translate(sql: str, parameters: bool = True) -> str:
    """DuckDB's spelling of a statement in PostgreSQL's, outside string literals and quoted names; with
    `parameters`, its `?` placeholders as psycopg's `%s`."""
    parts = _LITERAL.split(sql)
    for i in range(0, len(parts), 2):
        code = parts[i].replace("%", "%%").replace("?", "%s") if parameters else parts[i]
        parts[i] = _EMPTY_LIST.sub("'{}'::", _DOUBLE.sub("DOUBLE PRECISION", code))
    return "".join(parts)


def _arrow_type(oid: int) -> pa.DataType:
    info = psycopg.adapters.types.get(oid)
    if info is None:
        return pa.string()
    element = _ARROW.get(info.name, pa.string())
    return pa.list_(element) if oid == info.array_oid else element


def _pg_type(arrow_type: pa.DataType) -> str:
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return _pg_type(arrow_type.value_type) + "[]"
    if pa.types.is_dictionary(arrow_type):
        return _pg_type(arrow_type.value_type)
    if pa.types.is_timestamp(arrow_type):
        return "timestamptz" if arrow_type.tz else "timestamp"
    if arrow_type not in _PG:
        raise StoreError(f"no PostgreSQL type for Arrow type {arrow_type}")
    return _PG[arrow_type]


def _array_literal(values) -> str | None:
    """A list as PostgreSQL's array text (`{"a","b"}`), for COPY."""
    if values is None:
        return None
    items = ("NULL" if v is None else '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
    return "{" + ",".join(items) + "}"


def _copyable(data: pa.Table) -> pa.Table:
    """The table with list columns as array text, dictionaries decoded and NULs replaced, as CSV for COPY
    can carry."""
    for i, field in enumerate(data.schema):
        column = data.column(i)
        if pa.types.is_dictionary(field.type):
            column = column.cast(field.type.value_type)
        elif pa.types.is_list(field.type) or pa.types.is_large_list(field.type):
            column = pa.array([_array_literal(_text(v)) for v in column.to_pylist()], pa.string())
        if pa.types.is_string(column.type) and pc.any(pc.match_substring(column, "\x00")).as_py():
            column = pc.replace_substring(column, "\x00", NUL_STAND_IN)
        data = data.set_column(i, field.name, column)
    return data


def _text(value):
    """A value to write, with any NUL character in its text as `NUL_STAND_IN` (PostgreSQL's text cannot hold one)."""
    if isinstance(value, str):
        return value.replace("\x00", NUL_STAND_IN) if "\x00" in value else value
    if isinstance(value, list):
        return [_text(v) for v in value]
    return value


class PgTx:
    """One open unit of work on PostgreSQL. Every call runs to completion and returns plain data."""

    dialect = "postgres"

    def __init__(self, con: psycopg.Connection):
        self._con = con

    def execute(self, sql: str, params=None) -> None:
        self._run(sql, params)

    def rows(self, sql: str, params=None) -> list[dict]:
        cur = self._run(sql, params)
        names = [d.name for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]

    def value(self, sql: str, params=None):
        rows = self._run(sql, params).fetchall()
        return rows[0][0] if rows else None

    def arrow(self, sql: str, params=None) -> pa.Table:
        """The result as an Arrow table, streamed by COPY as CSV and parsed by Arrow (list columns as JSON)."""
        query = self._inline(sql, params)
        described = self._run(f"SELECT * FROM ({query}) AS q LIMIT 0", None).description
        fields = [pa.field(d.name, _arrow_type(d.type_code)) for d in described]
        lists = {f.name for f in fields if pa.types.is_list(f.type)}
        columns = ", ".join(f"array_to_json({quote(f.name)})::text" if f.name in lists else quote(f.name) for f in fields)
        buffer = io.BytesIO()
        try:
            with self._con.cursor().copy(f"COPY (SELECT {columns} FROM ({query}) AS q) TO STDOUT (FORMAT csv)") as copy:
                for chunk in copy:
                    buffer.write(chunk)
        except psycopg.Error as exc:
            raise StoreError(str(exc).strip()) from exc
        if not fields:
            return pa.table({})
        types = {f.name: pa.string() if f.name in lists else f.type for f in fields}
        table = pacsv.read_csv(
            io.BytesIO(buffer.getvalue()),
            read_options=pacsv.ReadOptions(column_names=[f.name for f in fields]),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=True,
                                                 quoted_strings_can_be_null=False, true_values=["t"],
                                                 false_values=["f"], timestamp_parsers=[pacsv.ISO8601]),
        ) if buffer.tell() else pa.table({f.name: pa.array([], f.type) for f in fields})
        for name in lists:
            i = table.schema.get_field_index(name)
            parsed = [None if v is None else orjson.loads(v) for v in table.column(i).to_pylist()]
            table = table.set_column(i, name, pa.array(parsed, fields[i].type))
        return table.cast(pa.schema(fields))

    def _inline(self, sql: str, params) -> str:
        """The statement with its parameters bound in its text (COPY takes none)."""
        if params is None:
            return translate(sql, False)
        return psycopg.ClientCursor(self._con).mogrify(translate(sql), _params(params))

    def lock(self, name: str) -> None:
        """Hold the lock `name` until the transaction ends (one holder at a time, waiters in arrival order)."""
        self._run("SELECT pg_advisory_xact_lock(hashtext('feedback.' || ? || '.' || current_schema()))", [name])

    def _run(self, sql: str, params):
        try:
            return self._con.execute(translate(sql, params is not None), _params(params))
        except psycopg.errors.LockNotAvailable as exc:
            raise StoreBusy(f"the store is busy: {exc}".strip()) from exc
        except psycopg.Error as exc:
            raise StoreError(str(exc).strip()) from exc

    @contextmanager
    def registered(self, table: pa.Table) -> Iterator[str]:
        """Make an Arrow table queryable under a temporary name for the duration of the block."""
        name = f"_arrow_{next(_NAMES)}"  # units of work nested on one connection register side by side
        columns = ", ".join(f"{quote(f.name)} {_pg_type(f.type)}" for f in table.schema)
        self._run(f"CREATE TEMP TABLE {name} ({columns})", None)
        self._copy(name, table)
        try:
            yield name
        finally:
            if not self._con.info.transaction_status == psycopg.pq.TransactionStatus.INERROR:
                self._run(f"DROP TABLE {name}", None)

    def insert(self, table: str, data: pa.Table) -> None:
        """Append an Arrow table to `table`, matching columns by name (through COPY)."""
        self._copy(table, data)

    def _copy(self, table: str, data: pa.Table) -> None:
        if not data.num_columns:
            return
        buffer = io.BytesIO()
        pacsv.write_csv(_copyable(data), buffer, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
        columns = ", ".join(quote(c) for c in data.column_names)
        try:
            with self._con.cursor().copy(f"COPY {quote(table)} ({columns}) FROM STDIN (FORMAT csv)") as copy:
                copy.write(buffer.getbuffer())
        except psycopg.Error as exc:
            raise StoreError(str(exc).strip()) from exc


def _params(params):
    if params is None:
        return None
    return [p.item() if hasattr(p, "item") and not isinstance(p, (list, str, bytes)) else _text(p) for p in params]


class _Connections(threading.local):
    """This thread's connections, by store URL (the few most recently used), and its open transactions' depth."""

    KEEP = 4

    def __init__(self):
        self.open: dict[str, psycopg.Connection] = {}
        self.depth: dict[str, int] = {}

    def add(self, url: str, con: psycopg.Connection) -> None:
        self.open[url] = con
        _EVERY[id(con)] = con
        for old in [u for u in self.open if not self.depth.get(u)][:-self.KEEP]:
            _EVERY.pop(id(self.open[old]), None)
            self.open.pop(old).close()

    def forget(self) -> None:
        """In a forked child: the parent's connections are the parent's (see `_EVERY`); start afresh."""
        _FORKED_AWAY.extend(_EVERY.values())
        _EVERY.clear()
        self.__init__()


#: Every connection this process opened, so none is finalized behind its thread's back: in a forked child,
#: finalizing an inherited connection would end the parent's session on the server (libpq says goodbye on
#: the shared socket), so the child keeps them all, unused, in `_FORKED_AWAY`.
_EVERY: dict[int, psycopg.Connection] = {}
_FORKED_AWAY: list[psycopg.Connection] = []
_LOCAL = _Connections()
os.register_at_fork(after_in_child=_LOCAL.forget)


class PgStore(Reads):
    """A PostgreSQL database (or a schema of one, through `options=-csearch_path=...` in the URL)."""

    dialect = "postgres"

    def __init__(self, url: str, *, busy_timeout: float = 15.0):
        self.url = url
        self.busy_timeout = busy_timeout

    def __repr__(self) -> str:
        return f"PgStore({self.url!r})"

    def _connection(self) -> psycopg.Connection:
        con = _LOCAL.open.get(self.url)
        if con is None or con.closed or con.broken:
            options = (conninfo_to_dict(self.url).get("options") or "") + " -c TimeZone=UTC"
            try:
                con = psycopg.connect(self.url, autocommit=True, options=options.strip())
            except psycopg.Error as exc:
                raise StoreError(f"cannot connect to the store {self.url}: {str(exc).strip()}") from exc
            con.adapters.register_loader("json", TextLoader)
            con.adapters.register_loader("jsonb", TextLoader)
            con.adapters.register_loader("numeric", FloatLoader)
            _LOCAL.add(self.url, con)
        else:
            _LOCAL.open[self.url] = _LOCAL.open.pop(self.url)  # the most recently used last
        return con

    @contextmanager
    def connect(self) -> Iterator[PgTx]:
        """A connection for one unit of work; inside a transaction of this thread, that transaction."""
        yield PgTx(self._connection())

    @contextmanager
    def atomic(self, *, shared: bool = False) -> Iterator[PgTx]:
        """A transaction holding the store's lock: committed when the block ends, rolled back if it raises.

        `shared`: the lock in shared mode, for reviewers' units of work, which run at once beside each other
        and keep out of each other's way with row locks (`FOR UPDATE`, `SKIP LOCKED`) and `tx.lock`; every other
        transaction (ingest, releases, the sampler's writes) holds it alone. A transaction nested in one of
        the same thread joins it.
        """
        if _LOCAL.depth.get(self.url):
            _LOCAL.depth[self.url] += 1
            try:
                yield PgTx(self._connection())
            finally:
                _LOCAL.depth[self.url] -= 1
            return
        tx = PgTx(self._connection())
        tx.execute("BEGIN")
        _LOCAL.depth[self.url] = 1
        try:
            tx.execute(f"SET LOCAL lock_timeout = '{int(self.busy_timeout * 1000)}ms'")
            mode = "_shared" if shared else ""
            try:
                tx.execute(f"SELECT pg_advisory_xact_lock{mode}(hashtext('feedback.store.' || current_schema()))")
            except StoreBusy:
                raise StoreBusy(f"the store {self.url} is busy: another transaction held its lock for over "
                                f"{self.busy_timeout:g} s; try again, and see pg_stat_activity for the holder") from None
            tx.execute("SET LOCAL lock_timeout = 0")
            yield tx
        except BaseException:
            _LOCAL.depth[self.url] = 0
            if not self._connection().closed:
                self._connection().execute("ROLLBACK")
            raise
        _LOCAL.depth[self.url] = 0
        tx.execute("COMMIT")

    @contextmanager
    def run_lock(self, name: str, *, wait: bool) -> Iterator[str | None]:
        """Hold the run lock `name` through the block, on a connection of its own (a session advisory lock,
        released by the server when the connection ends, however the process ends). Yields None when held,
        or, without `wait`, who holds it (the lock then is not taken)."""
        key = f"feedback.run.{name}"
        try:
            con = psycopg.connect(self.url, autocommit=True, application_name=f"feedback {name} pid {os.getpid()}")
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to the store {self.url}: {str(exc).strip()}") from exc
        with con:
            lock = "pg_advisory_lock" if wait else "pg_try_advisory_lock"
            taken = con.execute(f"SELECT {lock}(hashtext(%s || current_schema()))", [key]).fetchone()[0]
            if wait or taken:
                yield None
                return
            holder = con.execute(
                "SELECT string_agg(a.application_name || ' on ' || coalesce(host(a.client_addr), 'a local socket'), ', ') "
                "FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE l.locktype = 'advisory' AND l.granted "
                "AND l.objsubid = 1 AND l.objid = hashtext(%s || current_schema())::oid", [key]).fetchone()[0]
            yield holder or "another process"

    @contextmanager
    def memory_limit(self, limit: str) -> Iterator[None]:
        """The embedded store's memory cap; PostgreSQL's memory is the server's to set."""
        yield

    def migrate(self) -> list[str]:
        """Apply the migrations not yet recorded, in order, holding the store alone; return their names.

        A store that has them all is only read, so roles that may not change the schema open it too.
        """
        names = {name for name, _ in [*MIGRATIONS, *PG_MIGRATIONS]}
        with self.connect() as tx:
            if tx.value("SELECT to_regclass('migrations') IS NOT NULL") and \
                    names <= {r["name"] for r in tx.rows("SELECT name FROM migrations")}:
                return []
        with self.atomic() as tx:
            return apply(tx, [*MIGRATIONS, *PG_MIGRATIONS])

    def compact(self) -> None:
        """Rewrite every table from its live rows (VACUUM FULL), so nothing deleted lingers in free space."""
        with self.connect() as tx:
            for name in [r["tablename"] for r in tx.rows("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")]:
                tx.execute(f"VACUUM FULL {quote(name)}")
