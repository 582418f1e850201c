"""Moving a store from its embedded file to PostgreSQL, with its whole history.

`copy_to_postgres` copies every table (events, decisions, claims, runs, quarantine, releases' records,
the derived state and its watermarks) into an empty PostgreSQL store and checks each table's row count
and content digest on both sides (`workspace.move_store` then points the workspace at it).
"""

from __future__ import annotations

import pyarrow as pa

from ..errors import FeedbackError
from ..progress import Progress, Steps
from .embedded import Store, quote, scratch
from .postgres import PgStore

CHUNK_ROWS = 100_000


def copy_to_postgres(source: Store, target: PgStore, *, progress: Progress | None = None) -> dict:
    """Copy every table of the file store into the empty PostgreSQL store and verify each; return
    {table: {"rows", "digest"}}. The file is held while it is read, so nothing changes it meanwhile."""
    target.migrate()
    with source.connect() as tx:
        names = [r["name"] for r in tx.rows(
            "SELECT table_name AS name FROM information_schema.tables WHERE table_catalog = current_database() "
            "AND table_schema = current_schema() AND table_type = 'BASE TABLE' AND table_name <> 'migrations' "
            "ORDER BY table_name")]
        tables = {name: tx.arrow(f"SELECT * FROM {quote(name)}") for name in names}
    _check_empty(target, names)
    with Steps(progress, sum(t.num_rows for t in tables.values()), "rows copied") as job, target.atomic() as tx:
        indexes = tx.rows(  # built once after the copy, faster than kept up during it
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename <> 'migrations'")
        tx.execute("DROP INDEX " + ", ".join(quote(i["indexname"]) for i in indexes))
        for name, table in tables.items():
            for batch in table.to_batches(CHUNK_ROWS):
                tx.insert(name, pa.Table.from_batches([batch]))
                job.advance(batch.num_rows, stage=f"copying {name}")
        job.advance(0, stage="indexing")
        for index in indexes:
            tx.execute(index["indexdef"])
        tx.execute("ANALYZE")  # the planner's statistics, so the first queue page walks the index
    report = {}
    for name, table in tables.items():
        copied = target.arrow(f"SELECT {', '.join(quote(c) for c in table.column_names)} FROM {quote(name)}")
        expected, found = digest(table.cast(copied.schema)), digest(copied)
        if expected != found:
            raise FeedbackError(f"table {name}: the copy in {target.url} differs from the file ({found} != {expected}); "
                                "the workspace still uses the file. Empty the database and migrate again")
        report[name] = expected
    return report


def digest(table: pa.Table) -> dict:
    """A table's row count and content digest: the md5 of its rows' md5s in order, so row order does not count."""
    with scratch() as tx, tx.registered(table) as name:
        return tx.rows(f"WITH h AS (SELECT md5(t::VARCHAR) AS h FROM {name} t) "
                       f"SELECT count(*) AS rows, md5(coalesce(string_agg(h, '' ORDER BY h), '')) AS digest FROM h")[0]


def _check_empty(target: PgStore, names: list[str]) -> None:
    with target.connect() as tx:
        held = {name: tx.value(f"SELECT count(*) FROM {quote(name)}") for name in names}
    full = {name: n for name, n in held.items() if n}
    if full:
        listed = ", ".join(f"{name} {n:,}" for name, n in sorted(full.items()))
        raise FeedbackError(f"{target.url} already holds rows ({listed}): migrate into an empty database or schema")
