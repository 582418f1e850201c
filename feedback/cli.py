"""The `feedback` command: one subcommand per library function, errors translated in one place.

Exit codes: 0 success, 1 a user-facing error (`Error: ...`), 2 misuse.
"""

from __future__ import annotations

import functools
import json
import sys

import click

from . import agreement as agreement_mod
from . import forget as forget_mod
from . import groups as groups_mod
from . import ingest as ingest_mod
from . import labels as labels_mod
from . import quarantine as quarantine_mod
from . import roles, triage
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


def reviewer_option(fn):
    return click.option("--reviewer", "-r", envvar="FEEDBACK_USER",
                        help="Who is acting (default: $FEEDBACK_USER); their role comes from the workspace.")(fn)


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


@main.command("queue")
@click.option("--reason", type=click.Choice(triage.REASONS), help="Only items queued for this reason.")
@click.option("--status", type=click.Choice(triage.STATUSES), help="Only items with this status.")
@click.option("--pred-label", help="Only items the model predicted as this label.")
@click.option("--corr-label", help="Only items a user corrected to this label.")
@click.option("--current-label", help="Only items whose current (reviewed) label is this.")
@click.option("--model-version", help="Only items predicted by this model version.")
@click.option("--source", help="Only items from this source (meta.source, meta.channel or the capture path).")
@click.option("--since", type=click.DateTime(), help="Only items seen at or after this UTC time.")
@click.option("--until", type=click.DateTime(), help="Only items seen before this UTC time.")
@click.option("--search", "text", help="Only items whose text contains this (case-insensitive).")
@click.option("--sort", type=click.Choice(["priority", "time"]), default="priority", show_default=True)
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--offset", default=0, show_default=True, type=click.IntRange(0))
@click.option("--counts", is_flag=True, help="Print counts per filter value instead of items.")
@workspace_option
@output_options
def queue_command(ws, sort, limit, offset, counts, as_json, quiet, **filters):
    """The review queue, highest priority first, with filters.

    \b
    Examples:
      feedback queue --reason correction --limit 10
      feedback queue --status disputed --json
      feedback queue --counts
    """
    flt = triage.QueueFilter(**filters)
    if counts:
        return emit(triage.queue_counts(ws, flt), as_json=as_json, quiet=quiet, text=_counts_text)
    emit(triage.queue(ws, flt, sort=sort, limit=limit, offset=offset), as_json=as_json, quiet=quiet,
         text=_queue_text)


@main.command("next")
@reviewer_option
@workspace_option
@output_options
def next_command(ws, reviewer, as_json, quiet):
    """Claim the next item of the queue for the reviewer and show it.

    \b
    Example:
      feedback next --reviewer alice
    """
    row = triage.next_item(ws, roles.actor(ws, reviewer))
    emit(row, as_json=as_json, quiet=quiet, text=lambda r: _queue_text([r]) if r else "The queue is empty.")


@main.command()
@click.argument("item_id")
@click.argument("label")
@click.option("--note", help="Why (kept with the decision).")
@click.option("--expect", "based_on", metavar="DECISION_ID",
              help="Refuse if the item's last decision is no longer this one ('none' for an undecided item).")
@reviewer_option
@workspace_option
@output_options
def label(ws, item_id, label, note, based_on, reviewer, as_json, quiet):
    """Decide an item: a label of the taxonomy, or skip, junk, unsure.

    \b
    Examples:
      feedback label req-000123 card_arrival --reviewer alice
      feedback label req-000124 junk --note "test message"
    """
    check = based_on is not None
    decision = labels_mod.decide(ws, roles.actor(ws, reviewer), item_id, label, note=note,
                                 based_on=None if based_on == "none" else based_on, check_stale=check)
    emit(decision, as_json=as_json, quiet=quiet,
         text=lambda d: f"{d['decision_id']}: {d['item_id']} -> {d['label'] or d['kind']} by {d['reviewer']}")


@main.command()
@click.argument("decision_id", required=False)
@click.option("--last", is_flag=True, help="Undo the reviewer's latest decision.")
@click.option("--batch", "batch_id", help="Undo every decision of a group relabel batch.")
@reviewer_option
@workspace_option
def undo(ws, decision_id, last, batch_id, reviewer):
    """Undo a decision (appends an undo; nothing is deleted).

    \b
    Examples:
      feedback undo d-1a2b3c4d5e6f7a8b
      feedback undo --last --reviewer alice
      feedback undo --batch batch-0123456789ab
    """
    who = roles.actor(ws, reviewer)
    if sum(map(bool, (decision_id, last, batch_id))) != 1:
        raise click.UsageError("give one of DECISION_ID, --last, --batch")
    if batch_id:
        click.echo(f"Undid {labels_mod.undo_batch(ws, who, batch_id)} decisions of {batch_id}.")
        return
    done = labels_mod.undo_last(ws, who) if last else labels_mod.undo(ws, who, decision_id)
    click.echo(f"Undid {done['undoes']} on {done['item_id']}." if done else "Nothing to undo.")


@main.command()
@click.argument("item_id")
@workspace_option
@output_options
def history(ws, item_id, as_json, quiet):
    """Everything that happened to an item, oldest first.

    \b
    Example:
      feedback history req-000123 --json
    """
    emit(labels_mod.history(ws, item_id), as_json=as_json, quiet=quiet, text=lambda rows: "\n".join(
        f"{r['at']}  {r['kind']:<22} {r['label'] or '':<32} {r['reviewer'] or ''}" for r in rows))


@main.command()
@workspace_option
@output_options
def agreement(ws, as_json, quiet):
    """Agreement between reviewers (Cohen's kappa, Krippendorff's alpha) and accuracy on gold items.

    \b
    Example:
      feedback agreement --json
    """
    emit(agreement_mod.agreement(ws), as_json=as_json, quiet=quiet, text=_agreement_text)


@main.command()
@click.option("--threshold", default=90.0, show_default=True, help="Similarity (0-100) that makes two texts near-copies.")
@click.option("--min-size", default=2, show_default=True, type=click.IntRange(2))
@click.option("--all", "all_items", is_flag=True, help="Group every item, not only queued ones.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1))
@workspace_option
@output_options
def groups(ws, threshold, min_size, all_items, limit, as_json, quiet):
    """Near-duplicate groups of items, largest and most disputed first.

    \b
    Example:
      feedback groups --threshold 90 --json
    """
    found = groups_mod.groups(ws, threshold=threshold, min_size=min_size, queued_only=not all_items)[:limit]
    emit(found, as_json=as_json, quiet=quiet, text=lambda gs: "\n".join(
        f"{g['group_id']}  {g['size']:>4} items  {g['disputed']} disputed  {g['text'][:60]!r}" for g in gs)
        or "No groups.")


@main.command()
@click.argument("label")
@click.argument("item_ids", nargs=-1, required=True)
@click.option("--note", help="Why (kept with each decision).")
@click.option("--preview", is_flag=True, help="Show what would change, decide nothing.")
@reviewer_option
@workspace_option
@output_options
def relabel(ws, label, item_ids, note, preview, reviewer, as_json, quiet):
    """Label many items at once (a near-duplicate group): one decision each, sharing a batch id.

    \b
    Example:
      feedback relabel card_arrival req-1 req-2 req-3 --preview
      feedback relabel card_arrival req-1 req-2 req-3 --reviewer alice
    """
    if preview:
        return emit(labels_mod.preview_group(ws, list(item_ids)), as_json=as_json, quiet=quiet,
                    text=lambda rows: "\n".join(
                        f"{r['item_id']}  {r['current_label'] or '-'} -> {label}  {r['text']!r}" for r in rows))
    batch = labels_mod.relabel_group(ws, roles.actor(ws, reviewer), list(item_ids), label, note=note)
    emit({"batch_id": batch, "items": len(set(item_ids))}, as_json=as_json, quiet=quiet,
         text=lambda d: f"Labeled {d['items']} items as {label}: batch {d['batch_id']} (undo with --batch).")


@main.command()
@click.argument("item_id")
@click.argument("label")
@click.option("--note", help="Why.")
@reviewer_option
@workspace_option
def adjudicate(ws, item_id, label, note, reviewer):
    """Settle a disputed item with a final label (leads).

    \b
    Example:
      feedback adjudicate req-000123 card_arrival --reviewer lead-ann
    """
    d = labels_mod.adjudicate(ws, roles.actor(ws, reviewer), item_id, label, note=note)
    click.echo(f"{d['decision_id']}: {item_id} -> {label} (adjudicated by {d['reviewer']})")


@main.command()
@click.argument("item_id")
@click.argument("label")
@reviewer_option
@workspace_option
def gold(ws, item_id, label, reviewer):
    """Make an item a gold item with a known answer (leads); it then gets overlapping decisions.

    \b
    Example:
      feedback gold req-000123 card_arrival --reviewer lead-ann
    """
    labels_mod.set_gold(ws, roles.actor(ws, reviewer), item_id, label)
    click.echo(f"{item_id} is gold: {label}.")


@main.command()
@click.argument("item_ids", nargs=-1)
@click.option("--meta", "meta_match", metavar="FIELD=VALUE", help="Forget every item whose events have this meta value.")
@click.option("--why", required=True, help="The request or ticket behind the purge (recorded).")
@reviewer_option
@workspace_option
@output_options
def forget(ws, item_ids, meta_match, why, reviewer, as_json, quiet):
    """Purge the captured payload of items (privacy request), keeping an audited skeleton (admins).

    \b
    Examples:
      feedback forget req-000123 --why "GDPR-4711" --reviewer admin
      feedback forget --meta user_id=u0042 --why "GDPR-4712"
    """
    field, value = _pair(meta_match, option="--meta") if meta_match else (None, None)
    report = forget_mod.forget(ws, roles.actor(ws, reviewer), item_ids=list(item_ids), meta_field=field,
                               meta_value=value, why=why)
    emit(vars(report), as_json=as_json, quiet=quiet, text=_forget_text)


@main.command("user-add")
@click.argument("name")
@click.option("--role", type=click.Choice(roles.ROLES), default="reviewer", show_default=True)
@click.option("--password", is_flag=True, help="Ask for a password (needed to sign in to the app).")
@reviewer_option
@workspace_option
def user_add(ws, name, role, password, reviewer):
    """Add a user with a role; the first user must be an admin.

    \b
    Example:
      feedback user-add ann --role admin --password
      feedback user-add bob --role reviewer --password --reviewer ann
    """
    secret = click.prompt("Password", hide_input=True, confirmation_prompt=True) if password else None
    by = roles.actor(ws, reviewer) if roles.users(ws) else None
    roles.add_user(ws, by, name, role=role, password=secret)
    click.echo(f"Added {name} ({role}).")


@main.command("label-add")
@click.argument("name")
@click.option("--description", default="", help="What the label means (shown to reviewers).")
@click.option("--hotkey", default="", help="One key that applies it in the app.")
@reviewer_option
@workspace_option
def label_add(ws, name, description, hotkey, reviewer):
    """Add a label to the taxonomy (admins).

    \b
    Example:
      feedback label-add card_swallowed --hotkey W --description "ATM kept the card" --reviewer ann
    """
    roles.add_label(ws, roles.actor(ws, reviewer), name, description=description, hotkey=hotkey)
    click.echo(f"Added label {name}.")


@main.command()
@click.argument("item_ids", nargs=-1, required=True)
@reviewer_option
@workspace_option
def enqueue(ws, item_ids, reviewer):
    """Put items in the review queue by hand (reason `manual`).

    \b
    Example:
      feedback enqueue req-000123 req-000124 --reviewer alice
    """
    n = triage.add_to_queue(ws, roles.actor(ws, reviewer), list(item_ids), reason="manual")
    click.echo(f"Queued {n} items.")


def _pair(text: str, option: str = "--map") -> tuple[str, str]:
    field, sep, column = text.partition("=")
    if not sep or not field or not column:
        raise click.BadParameter(f"{text!r} is not FIELD=VALUE (e.g. input.text=message)", param_hint=option)
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


def _queue_text(rows: list[dict]) -> str:
    if not rows:
        return "No items match."
    return "\n".join(
        f"{r['item_id']:<14} {r['priority']:5.2f}  {r['status']:<9} {','.join(r['reasons']):<28} "
        f"{r['pred_label'] or '-'} -> {r['corr_label'] or r['current_label'] or '?'}  {(r['text'] or '')[:50]!r}"
        for r in rows)


def _counts_text(counts: dict) -> str:
    lines = [f"{counts['total']['items']:,} items"]
    for name, values in counts.items():
        if name != "total" and values:
            top = ", ".join(f"{k} {v:,}" for k, v in list(values.items())[:8])
            lines.append(f"{name:<14} {top}")
    return "\n".join(lines)


def _agreement_text(a: dict) -> str:
    def num(x):
        return "-" if x is None else f"{x:.3f}"

    lines = [f"{a['items_with_overlap']} items with overlapping decisions; Krippendorff's alpha {num(a['alpha'])}"]
    lines += [f"  {p['a']} ~ {p['b']}: {p['items']} items, agreement {num(p['agreement'])}, kappa {num(p['kappa'])}"
              for p in a["pairs"]]
    lines += [f"  gold {g['reviewer']}: {g['items']} items, accuracy {num(g['accuracy'])}" for g in a["gold"]]
    return "\n".join(lines)


def _forget_text(r: dict) -> str:
    lines = [f"Purged {len(r['items'])} items: {r['events']} events, {r['quarantine_rows']} quarantine rows, "
             f"{r['spool_lines']} spool lines."]
    if r["active_lines_left"]:
        lines.append(f"{r['active_lines_left']} events are still in active spool segments: run again after ingest.")
    if r["releases"]:
        lines.append("Releases containing them (rebuild these): " + ", ".join(r["releases"]))
    return "\n".join(lines)


# Commands that live in their own modules reuse this module's shared options, so they come last.
from .cli_release import release  # noqa: E402
from .cli_sampler import sample, suspects  # noqa: E402

for command in (release, sample, suspects):
    main.add_command(command)
