"""Moving a workspace from its embedded file to a team store on PostgreSQL, with its whole history.

`move_to_postgres` copies every table (events, decisions, claims, runs, quarantine, releases' records,
the derived state and its watermarks) into an empty PostgreSQL store, checks each table's row count and
content digest on both sides, and only then points the workspace's `[store] url` at it. The file stays
as it was, a backup; the spool, the releases and the users stay in the workspace folder.
"""

from __future__ import annotations

import re

import pyarrow as pa

from ..errors import FeedbackError
from ..progress import Progress, Steps
from ..workspace import CONFIG_NAME, Workspace, check_store_url, toml_string
from .embedded import quote, scratch
from .postgres import PgStore

CHUNK_ROWS = 100_000


def move_to_postgres(ws: Workspace, url: str, *, progress: Progress | None = None) -> dict:
    """Copy the workspace's file store into the empty PostgreSQL store at `url`, verify it, and switch to it.

    Returns {"url", "tables": {name: {"rows", "digest"}}}. The file is held while it is read, so nothing
    changes it meanwhile; stop the workspace's ingest workers and app first, and start them again after.
    """
    if ws.store_url:
        raise FeedbackError(f"the workspace already keeps its store in {ws.store_url}")
    target = PgStore(check_store_url(url), busy_timeout=float(ws.config["store"]["busy_timeout"]))
    target.migrate()
    with ws.store().connect() as source:
        names = [r["name"] for r in source.rows(
            "SELECT table_name AS name FROM information_schema.tables WHERE table_catalog = current_database() "
            "AND table_schema = current_schema() AND table_type = 'BASE TABLE' AND table_name <> 'migrations' "
            "ORDER BY table_name")]
        tables = {name: source.arrow(f"SELECT * FROM {quote(name)}") for name in names}
    _check_empty(target, names)
    with Steps(progress, sum(t.num_rows for t in tables.values()), "rows copied") as job, target.atomic() as tx:
        for name, table in tables.items():
            for batch in table.to_batches(CHUNK_ROWS):
                tx.insert(name, pa.Table.from_batches([batch]))
                job.advance(batch.num_rows, stage=f"copying {name}")
    report = {}
    for name, table in tables.items():
        copied = target.arrow(f"SELECT {', '.join(quote(c) for c in table.column_names)} FROM {quote(name)}")
        expected, found = digest(table.cast(copied.schema)), digest(copied)
        if expected != found:
            raise FeedbackError(f"table {name}: the copy in {url} differs from the file ({found} != {expected}); "
                                "the workspace still uses the file. Empty the database and migrate again")
        report[name] = expected
    _point_at(ws, url)
    return {"url": url, "tables": report}


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


def _point_at(ws: Workspace, url: str) -> None:
    """Set `[store] url` in the workspace's config, keeping the rest of the file as it is."""
    path = ws.root / CONFIG_NAME
    text = path.read_text(encoding="utf-8")
    line = f"url = {toml_string(url)}"
    if re.search(r"^\[store\]\s*$", text, flags=re.M):
        text = re.sub(r"^\[store\]\s*$", lambda m: m.group(0) + "\n" + line, text, count=1, flags=re.M)
    else:
        text = text.rstrip("\n") + f"\n\n[store]\n{line}\n"
    path.write_text(text, encoding="utf-8")
