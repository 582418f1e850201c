"""Workspace commands: create one, see what it holds, manage its users and taxonomy, the demo."""

from __future__ import annotations

import sys

import click

from .. import capture, roles
from ..config_file import init_workspace
from ..workspace import read_labels_file
from .shell import Shell, emit, output_options, reviewer_option, signed_in, workspace_option


@click.command()
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--dataset", default="default", show_default=True, help="Dataset name.")
@click.option("--labels", "labels_file", type=click.Path(exists=True, dir_okay=False),
              help="Fixed taxonomy: a JSON list or a text file with one label per line. Without it the taxonomy is open.")
@click.option("--label", "labels", multiple=True, help="A label of a fixed taxonomy (repeatable).")
@click.option("--store", "store", metavar="URL",
              help="A team store: postgresql://USER@HOST:PORT/DB (the password from $PGPASSWORD or ~/.pgpass). "
                   "Without it the store is the embedded file feedback.duckdb.")
def init(directory, dataset, labels_file, labels, store):
    """Create a workspace: feedback.toml, the store and the spool.

    \b
    Examples:
      feedback init ws --dataset support-intents --label refund --label card_lost
      feedback init ws --labels taxonomy.json --store postgresql://feedback@db.internal:5432/feedback
    """
    entries = (read_labels_file(labels_file) if labels_file else []) + list(labels)
    ws = init_workspace(directory, dataset=dataset, labels=entries, store=store)
    mode = f"fixed taxonomy of {len(ws.taxonomy.labels)} labels" if entries else "open taxonomy"
    where = f", store {store}" if store else ""
    click.echo(f"Created workspace {ws.root} ({mode}{where}).")


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
@click.option("--password", is_flag=True, help="Ask for the new user's password (needed to sign in).")
@click.option("--password-stdin", is_flag=True, help="Read the new user's password from the first line of stdin.")
@reviewer_option
@workspace_option
@output_options
def user_add(ws, name, role, password, password_stdin, reviewer, as_json, quiet):
    """Add a user with a role; the first user must be an admin. Users live in the store.

    \b
    Examples:
      feedback user-add ann --role admin --password
      printf '%s\\n' "$BOB_PASSWORD" | feedback user-add bob --password-stdin -r ann
    """
    by = signed_in(ws, reviewer) if roles.users(ws) else None
    secret = None
    if password_stdin:
        secret = sys.stdin.readline().rstrip("\r\n")
        if not secret:
            raise click.UsageError("--password-stdin read an empty line")
    elif password:
        secret = click.prompt(f"Password for {name}", hide_input=True, confirmation_prompt=True, err=True)
    roles.add_user(ws, by, name, role=role, password=secret)
    emit({"user": name, "role": role}, as_json=as_json, quiet=quiet, text=lambda d: f"Added {name} ({role}).")


@click.group("token", cls=Shell, context_settings={"help_option_names": ["-h", "--help"]})
def token_group():
    """Personal API tokens for scripts and CI: sign in with $FEEDBACK_TOKEN instead of a password.

    \b
    Example:
      feedback token create --name ci --days 90 -r ann
    """


@token_group.command("create")
@click.option("--name", default="", help="What the token is for (shown in `feedback token list`).")
@click.option("--days", type=click.IntRange(1), help="Expire after this many days (default: never).")
@reviewer_option
@workspace_option
@output_options
def token_create(ws, name, days, reviewer, as_json, quiet):
    """Make a token for yourself; it is printed once and stored only as a hash.

    \b
    Example:
      feedback token create --name nightly-import --days 30 -r ann
    """
    made = roles.create_token(ws, signed_in(ws, reviewer), name=name, days=days)
    emit(made, as_json=as_json, quiet=quiet, text=lambda d: f"{d['token']}\n(token {d['token_id']}; shown only "
         "now: keep it in a secret store and export it as FEEDBACK_TOKEN)")


@token_group.command("list")
@reviewer_option
@workspace_option
@output_options
def token_list(ws, reviewer, as_json, quiet):
    """Your tokens: id, name, when made, expiry, whether revoked.

    \b
    Example:
      feedback token list -r ann
    """
    emit(roles.list_tokens(ws, signed_in(ws, reviewer)), as_json=as_json, quiet=quiet, text=lambda rows: "\n".join(
        f"{t['token_id']}  {'live   ' if t['live'] else 'revoked' if t['revoked'] else 'expired'}  "
        f"{t['name'] or '-':<20} made {t['created'][:10]}  expires {(t['expires'] or 'never')[:10]}"
        for t in rows) or "No tokens.")


@token_group.command("revoke")
@click.argument("token_id")
@reviewer_option
@workspace_option
@output_options
def token_revoke(ws, token_id, reviewer, as_json, quiet):
    """Revoke a token at once (admins may revoke anyone's as USER:TOKEN_ID).

    \b
    Example:
      feedback token revoke 1a2b3c4d -r ann
    """
    roles.revoke_token(ws, signed_in(ws, reviewer), token_id)
    emit({"revoked": token_id}, as_json=as_json, quiet=quiet, text=lambda d: f"Revoked {token_id}.")


@click.command("label-add")
@click.argument("name")
@click.option("--description", default="", help="What the label means (shown to reviewers).")
@click.option("--hotkey", default="", help="One key that applies it in the app.")
@reviewer_option
@workspace_option
@output_options
def label_add(ws, name, description, hotkey, reviewer, as_json, quiet):
    """Add a label to the taxonomy (admins).

    \b
    Example:
      feedback label-add card_swallowed --hotkey W --description "ATM kept the card" --reviewer ann
    """
    roles.add_label(ws, signed_in(ws, reviewer), name, description=description, hotkey=hotkey)
    emit({"label": name}, as_json=as_json, quiet=quiet, text=lambda d: f"Added label {name}.")


@click.command()
@click.argument("directory", default=".feedback-demo", type=click.Path(file_okay=False))
@click.option("--no-app", is_flag=True, help="Build the workspace, print its summary and what to try next; no app.")
@click.option("--fresh", is_flag=True, help="Delete the demo workspace and build it anew.")
@click.option("--port", default=8501, show_default=True, type=int, help="Port of the Streamlit app.")
def demo(directory, no_app, fresh, port):
    """A team a week in, built from sample_data/: imported training labels, release v1, a month of
    production, a sampler run, suspected label errors, a few decisions and one dispute; then the app.

    \b
    Example:
      feedback demo            # http://localhost:8501
      feedback demo --no-app   # the summary and the commands to try next
      feedback demo --fresh    # rebuild it
    """
    from ..demo import build, run_app

    ws, built = build(directory, fresh=fresh)
    click.echo(_status_text(built["status"]))
    click.echo(f"Releases    {', '.join(built['releases'])}  (built in {built['seconds']:.1f} s)")
    if no_app:
        click.echo(f"\nexport FEEDBACK_WORKSPACE={ws.root}\n{built['next']}")
        return
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
        f"Reviews     {counts(s['reviews'])}"
        + (f" ({s['second_review']:,} waiting for a second review)" if s["second_review"] else ""),
        f"Spool       {s['spool_pending']:,} events waiting (run `feedback ingest`)",
        f"Quarantine  {s['quarantined']:,} open rows: {counts(s['quarantine_by_reason'])} "
        f"({s['quarantine_resolved']:,} resolved)",
    ])
