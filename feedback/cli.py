"""The `feedback` command: one subcommand per library function, errors translated in one place.

Exit codes: 0 success, 1 a user-facing error (`Error: ...`), 2 misuse.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import click

from . import ingest as ingest_mod
from . import quarantine as quarantine_mod
from .errors import FeedbackError
from .status import label_counts, status as status_of
from .workspace import find_workspace, init_workspace, read_labels_file


class Shell(click.Group):
    """Translates library errors into `Error: ...` and exit code 1, once for every command."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except FeedbackError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(1)


def workspace_option(fn):
    @click.option("--workspace", "-w", type=click.Path(file_okay=False), envvar="FEEDBACK_WORKSPACE",
                  help="Workspace folder (default: $FEEDBACK_WORKSPACE, else the current folder or a parent).")
    @functools.wraps(fn)
    def wrapper(*args, workspace=None, **kwargs):
        return fn(*args, ws=find_workspace(workspace), **kwargs)

    return wrapper


def output_options(fn):
    fn = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")(fn)
    return click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")(fn)


def emit(data, *, as_json: bool, quiet: bool, text=None) -> None:
    """Render a command's result: JSON, the text renderer's lines, or nothing."""
    if quiet:
        return
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        click.echo(text(data) if text else str(data))


@click.group(cls=Shell, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="feedback-workbench")
def main():
    """Capture production model feedback, review it, and release versioned datasets.

    \b
    Example:
      feedback init ws --dataset banking77 --labels sample_data/taxonomy.json
      feedback -h
    """


@main.command()
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--dataset", default="default", show_default=True, help="Dataset name.")
@click.option("--labels", "labels_file", type=click.Path(exists=True, dir_okay=False),
              help="Fixed taxonomy: a JSON list or a text file with one label per line. Without it the taxonomy is open.")
@click.option("--label", "labels", multiple=True, help="A label of a fixed taxonomy (repeatable).")
def init(directory, dataset, labels_file, labels):
    """Create a workspace: feedback.toml, the store and the spool.

    \b
    Example:
      feedback init ws --dataset support-intents --label refund --label card_lost
    """
    entries = (read_labels_file(labels_file) if labels_file else []) + list(labels)
    ws = init_workspace(directory, dataset=dataset, labels=entries)
    mode = f"fixed taxonomy of {len(ws.taxonomy.labels)} labels" if entries else "open taxonomy"
    click.echo(f"Created workspace {ws.root} ({mode}).")


@main.command()
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--map", "mappings", multiple=True, metavar="FIELD=COLUMN",
              help="CSV/Parquet: read event field FIELD (e.g. input.text) from column COLUMN (repeatable).")
@click.option("--type", "default_type", type=click.Choice(["prediction", "correction", "error"]),
              help="Event type for rows that have none.")
@click.option("--progress/--no-progress", default=None, help="Progress bar on stderr (default: when it is a terminal).")
@workspace_option
@output_options
def ingest(ws, files, mappings, default_type, progress, as_json, quiet):
    """Load events into the store: FILES (JSONL, CSV, Parquet), or without FILES the sealed spool.

    \b
    Examples:
      feedback ingest
      feedback ingest logs/2026-11-01.jsonl
      feedback ingest export.csv --map input.text=message --map prediction.label=intent --type prediction
    """
    mapping = dict(_pair(m) for m in mappings)
    show = sys.stderr.isatty() if progress is None else progress
    bar = _progress_bar if show and not quiet else None
    if files:
        report = ingest_mod.ingest_files(ws, files, mapping=mapping, default_type=default_type, progress=bar)
    else:
        report = ingest_mod.ingest_spool(ws, progress=bar)
    if bar:
        click.echo("", err=True)
    emit(vars(report), as_json=as_json, quiet=quiet, text=_ingest_text)


@main.command()
@workspace_option
@output_options
def status(ws, as_json, quiet):
    """Counts by type, model version and label, time range, spool backlog and quarantine.

    \b
    Example:
      feedback status --json
    """
    emit(status_of(ws), as_json=as_json, quiet=quiet, text=_status_text)


@main.command()
@workspace_option
@output_options
def labels(ws, as_json, quiet):
    """The labels: the fixed taxonomy, or those seen in events when the taxonomy is open.

    \b
    Example:
      feedback labels --json
    """
    counts = label_counts(ws)
    emit(counts, as_json=as_json, quiet=quiet, text=lambda c: "\n".join(
        f"{name:40} predicted {v['predicted']:>7}  corrected {v['corrected']:>6}" for name, v in c.items()
    ) or f"No labels yet (taxonomy: {ws.taxonomy.mode}).")


@main.command()
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
        return emit(vars(quarantine_mod.retry_quarantine(ws, reason=reason)), as_json=as_json, quiet=quiet,
                    text=_ingest_text)
    if export_path:
        n = quarantine_mod.export_quarantine(ws, export_path, reason=reason)
        return emit({"exported": n, "path": export_path}, as_json=as_json, quiet=quiet,
                    text=lambda d: f"Wrote {d['exported']} events to {d['path']}.")
    if dismiss_ids:
        n = quarantine_mod.dismiss(ws, list(dismiss_ids))
        return emit({"dismissed": n}, as_json=as_json, quiet=quiet, text=lambda d: f"Dismissed {d['dismissed']}.")
    rows = quarantine_mod.list_quarantine(ws, reason=reason, include_resolved=include_resolved, limit=limit)
    emit(rows, as_json=as_json, quiet=quiet, text=_quarantine_text)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8321, show_default=True, type=int)
@workspace_option
def serve(ws, host, port):
    """Serve the HTTP capture endpoint (POST /v1/events), writing to the spool.

    \b
    Example:
      FEEDBACK_TOKEN=secret feedback serve --port 8321
      curl -H 'Authorization: Bearer secret' -d @event.json localhost:8321/v1/events
    """
    from .server import run

    run(ws, host=host, port=port)


@main.command()
@click.argument("directory", default=".feedback-demo", type=click.Path(file_okay=False))
@click.option("--no-app", is_flag=True, help="Stop after ingest and print the summary.")
@click.option("--port", default=8501, show_default=True, type=int, help="Port of the Streamlit app.")
def demo(directory, no_app, port):
    """Create (or reuse) a workspace seeded from sample_data/ and open the app on it.

    \b
    Example:
      feedback demo            # http://localhost:8501
      feedback demo --no-app
    """
    from .demo import prepare_demo, run_app

    ws = prepare_demo(directory)
    click.echo(_status_text(status_of(ws)))
    if not no_app:
        run_app(ws, port=port)


@main.command()
def schema():
    """Print the JSON Schema of capture events (contract v1).

    \b
    Example:
      feedback schema > event-v1.json
    """
    from .events import SCHEMA_PATH

    click.echo(SCHEMA_PATH.read_text(encoding="utf-8"))


def _pair(text: str) -> tuple[str, str]:
    field, sep, column = text.partition("=")
    if not sep or not field or not column:
        raise click.BadParameter(f"{text!r} is not FIELD=COLUMN (e.g. input.text=message)", param_hint="--map")
    return field, column


def _progress_bar(done: int, total: int) -> None:
    width = 40
    filled = int(width * done / total) if total else width
    click.echo(f"\r[{'#' * filled}{'.' * (width - filled)}] {done / 1e6:,.1f}/{total / 1e6:,.1f} MB", err=True, nl=False)


def _ingest_text(r: dict) -> str:
    lines = [f"Ingested {r['events']:,} events from {r['sources']} sources "
             f"({r['duplicates']:,} duplicates skipped, {r['quarantined']:,} quarantined)."]
    lines += [f"Skipped {s}: already ingested." for s in r["skipped_sources"]]
    if r["quarantined"]:
        lines.append("See them with `feedback quarantine`.")
    return "\n".join(lines)


def _status_text(s: dict) -> str:
    def counts(d):
        return ", ".join(f"{k} {v:,}" for k, v in d.items()) or "none"

    return "\n".join([
        f"Workspace {s['workspace']} (dataset {s['dataset']})",
        f"Events      {s['events']:,} on {s['items']:,} items: {counts(s['by_type'])}",
        f"Models      {counts(s['by_model_version'])}",
        f"Time range  {s['first_event'] or '-'} .. {s['last_event'] or '-'}",
        f"Labels      {len(s['labels'])}",
        f"Spool       {s['spool_pending']:,} events waiting (run `feedback ingest`)",
        f"Quarantine  {s['quarantined']:,} rows: {counts(s['quarantine_by_reason'])}",
    ])


def _quarantine_text(rows: list[dict]) -> str:
    if not rows:
        return "Quarantine is empty."
    return "\n".join(
        f"{r['qid'][:12]}  {r['source']}:{r['line'] or '?'}  {r['reason']}: {r['message']}" for r in rows
    )
