"""Store commands: move a workspace's store to PostgreSQL, and the database roles of a team store."""

from __future__ import annotations

import click

from .shell import emit, output_options, progress_for, workspace_option


@click.group("store")
def store_group():
    """The workspace's store: the embedded file, or a team store on PostgreSQL.

    \b
    Example:
      feedback store migrate --to postgresql://feedback@db.internal:5432/feedback
    """


@store_group.command("migrate")
@click.option("--to", "url", required=True, metavar="URL",
              help="The team store: postgresql://USER@HOST:PORT/DB, empty (the password from $PGPASSWORD or ~/.pgpass).")
@workspace_option
@output_options
def migrate(ws, url, as_json, quiet):
    """Copy the workspace's file store into PostgreSQL, verify every table, and switch the workspace to it.

    Stop the workspace's ingest workers and app first; the file stays as it was, a backup.

    \b
    Example:
      feedback store migrate --to postgresql://feedback@db.internal:5432/feedback
    """
    from ..workspace import move_store

    report = move_store(ws, url, progress=progress_for(quiet))
    emit(report, as_json=as_json, quiet=quiet, text=lambda r: "\n".join(
        [f"{name:24} {t['rows']:>10,} rows  md5 {t['digest']}" for name, t in r["tables"].items()]
        + [f"Copied and verified; the workspace now uses {r['url']}."]))


@store_group.command("grants")
@click.option("--schema", default="public", show_default=True, help="The store's schema.")
@click.option("--prefix", default="feedback", show_default=True, help="Role names are PREFIX_ingest, PREFIX_reviewer, ...")
def grants(schema, prefix):
    """Print the SQL that gives each kind of process its own database role with only what it needs.

    \b
    Example:
      feedback store grants | psql postgresql://owner@db.internal:5432/feedback
    """
    from ..store.grants import grants_sql

    click.echo(grants_sql(schema, prefix=prefix), nl=False)
