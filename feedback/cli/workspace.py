"""Workspace commands: create one, see what it holds, manage its users and taxonomy, the demo."""

from __future__ import annotations

import click

from .. import capture, roles
from ..workspace import init_workspace, read_labels_file
from .shell import emit, output_options, reviewer_option, workspace_option


@click.command()
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


@click.command()
@workspace_option
@output_options
def status(ws, as_json, quiet):
    """Counts by type, model version and label, time range, spool backlog and quarantine.

    \b
    Example:
      feedback status --json
    """
    emit(capture.status(ws), as_json=as_json, quiet=quiet, text=_status_text)


@click.command()
@workspace_option
@output_options
def labels(ws, as_json, quiet):
    """The labels: the fixed taxonomy, or those seen in events when the taxonomy is open.

    \b
    Example:
      feedback labels --json
    """
    counts = capture.label_counts(ws)
    emit(counts, as_json=as_json, quiet=quiet, text=lambda c: "\n".join(
        f"{name:40} predicted {v['predicted']:>7}  corrected {v['corrected']:>6}" for name, v in c.items()
    ) or f"No labels yet (taxonomy: {ws.taxonomy.mode}).")


@click.command("user-add")
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


@click.command("label-add")
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


@click.command()
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
    from ..demo import prepare_demo, run_app

    ws = prepare_demo(directory)
    click.echo(_status_text(capture.status(ws)))
    if not no_app:
        run_app(ws, port=port)


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
