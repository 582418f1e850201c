"""Capture commands: ingest files and the spool, quarantine, the HTTP endpoint, the event schema."""

from __future__ import annotations


import click

from .. import capture
from .shell import emit, output_options, parse_pair, progress_for, workspace_option


@click.command()
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--map", "mappings", multiple=True, metavar="FIELD=COLUMN",
              help="CSV/Parquet: read event field FIELD (e.g. input.text) from column COLUMN (repeatable).")
@click.option("--type", "default_type", type=click.Choice(["prediction", "correction", "error", "item"]),
              help="Event type for rows that have none.")
@workspace_option
@output_options
def ingest(ws, files, mappings, default_type, as_json, quiet):
    """Load events into the store: FILES (JSONL, CSV, Parquet), or without FILES the sealed spool.

    \b
    Examples:
      feedback ingest
      feedback ingest logs/2026-11-01.jsonl
      feedback ingest export.csv --map input.text=message --map prediction.label=intent --type prediction
    """
    mapping = dict(parse_pair(m) for m in mappings)
    bar = progress_for(quiet)
    if files:
        report = capture.ingest_files(ws, files, mapping=mapping, default_type=default_type, progress=bar)
    else:
        report = capture.ingest_spool(ws, progress=bar)
    emit(vars(report), as_json=as_json, quiet=quiet, text=_ingest_text)


@click.command()
@click.option("--reason", help="Only rows with this reason code.")
@click.option("--all", "include_resolved", is_flag=True, help="Include resolved rows.")
@click.option("--limit", default=50, show_default=True, help="At most this many rows.")
@click.option("--retry", is_flag=True, help="Validate open rows again and ingest those that now pass.")
@click.option("--export", "export_path", type=click.Path(dir_okay=False), help="Write open rows as JSONL to fix and ingest.")
@click.option("--dismiss", "dismiss_ids", multiple=True, metavar="QID", help="Close a row that will not be fixed.")
@workspace_option
@output_options
def quarantine(ws, reason, include_resolved, limit, retry, export_path, dismiss_ids, as_json, quiet):
    """List quarantined events (reason, field, source, line), retry, export or dismiss them.

    \b
    Examples:
      feedback quarantine --reason unknown_label
      feedback quarantine --export fix.jsonl   # edit fix.jsonl, then: feedback ingest fix.jsonl
      feedback quarantine --retry              # after adding labels to the taxonomy
    """
    if retry:
        return emit(capture.retry_quarantine(ws, reason=reason), as_json=as_json, quiet=quiet,
                    text=lambda r: f"Retried {r['retried']:,} open rows: {r['ingested']:,} now ingested, "
                                   f"{r['duplicates']:,} already stored, {r['still_open']:,} still failing.")
    if export_path:
        n = capture.export_quarantine(ws, export_path, reason=reason)
        return emit({"exported": n, "path": export_path}, as_json=as_json, quiet=quiet,
                    text=lambda d: f"Wrote {d['exported']} events to {d['path']}.")
    if dismiss_ids:
        n = capture.dismiss(ws, list(dismiss_ids))
        return emit({"dismissed": n}, as_json=as_json, quiet=quiet, text=lambda d: f"Dismissed {d['dismissed']}.")
    rows = capture.list_quarantine(ws, reason=reason, include_resolved=include_resolved, limit=limit)
    emit(rows, as_json=as_json, quiet=quiet, text=_quarantine_text)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8321, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1),
              help="Worker processes (each serves capture and the review API).")
@workspace_option
def serve(ws, host, port, workers):
    """Serve the HTTP capture endpoint (POST /v1/events, writing to the spool) and the review API (/v1/review).

    \b
    Example:
      FEEDBACK_CAPTURE_TOKEN=secret feedback serve --port 8321 --workers 4
      curl -H 'Authorization: Bearer secret' -d @event.json localhost:8321/v1/events
    """
    from ..server import run

    run(ws, host=host, port=port, workers=workers)


@click.command()
def schema():
    """Print the JSON Schema of capture events (contract v1).

    \b
    Example:
      feedback schema > event-v1.json
    """
    click.echo(capture.SCHEMA_PATH.read_text(encoding="utf-8"))


def _ingest_text(r: dict) -> str:
    lines = [f"Ingested {r['events']:,} events from {r['sources']} sources "
             f"({r['duplicates']:,} duplicates skipped, {r['quarantined']:,} quarantined)."]
    lines += [f"Skipped {s}: already ingested." for s in r["skipped_sources"]]
    if r["quarantined"]:
        lines.append("See them with `feedback quarantine`.")
    return "\n".join(lines)


def _quarantine_text(rows: list[dict]) -> str:
    if not rows:
        return "Quarantine is empty."
    return "\n".join(
        f"{r['qid'][:12]}  {r['source']}:{r['line'] or '?'}  {r['reason']}: {r['message']}" for r in rows
    )
