"""`feedback taxonomy ...`: one subcommand per change of `feedback.review.taxonomy`, its undo and its log."""

from __future__ import annotations

import click

from .shell import Shell, emit, output_options, reviewer_option, signed_in, workspace_option


@click.group("taxonomy", cls=Shell, context_settings={"help_option_names": ["-h", "--help"]})
def taxonomy_group():
    """Change the taxonomy (leads): rename, merge, split, remove, deprecate; each undoable, class ids kept.

    \b
    Example:
      feedback taxonomy rename card_arrival card_delivery --preview
      feedback taxonomy log
    """


def change_options(fn):
    """What every change command takes: --preview, --note, who is acting, the workspace and output."""
    fn = output_options(workspace_option(reviewer_option(fn)))
    fn = click.option("--note", help="Why the change is made (kept in the log).")(fn)
    return click.option("--preview", is_flag=True, help="Show the counts the change would touch; apply nothing.")(fn)


@taxonomy_group.command()
@click.argument("old")
@click.argument("new")
@change_options
def rename(ws, old, new, preview, note, reviewer, as_json, quiet):
    """Rename a label; it keeps its class id and its items.

    \b
    Example:
      feedback taxonomy rename card_arrival card_delivery --note "clearer for reviewers" -r lena
    """
    _run(ws, "rename", [old], [new], preview, note, reviewer, as_json, quiet)


@taxonomy_group.command()
@click.argument("labels", nargs=-1, required=True)
@click.option("--into", required=True, help="The label they become (an existing one keeps its id).")
@change_options
def merge(ws, labels, into, preview, note, reviewer, as_json, quiet):
    """Merge labels into one; the merged labels are retired, their items relabeled.

    \b
    Example:
      feedback taxonomy merge card_linking card_activation --into card_setup -r lena
    """
    _run(ws, "merge", list(labels), [into], preview, note, reviewer, as_json, quiet)


@taxonomy_group.command()
@click.argument("label")
@click.option("--into", "into", multiple=True, required=True, help="A label it splits into (repeat: two or more).")
@change_options
def split(ws, label, into, preview, note, reviewer, as_json, quiet):
    """Split a label into new ones; it is retired and its items go back to review (reason taxonomy).

    \b
    Example:
      feedback taxonomy split card_issue --into card_lost --into card_damaged -r lena
    """
    _run(ws, "split", [label], list(into), preview, note, reviewer, as_json, quiet)


@taxonomy_group.command()
@click.argument("label")
@change_options
def remove(ws, label, preview, note, reviewer, as_json, quiet):
    """Retire a label; its items go back to review (reason taxonomy) and its id is never reused.

    \b
    Example:
      feedback taxonomy remove misc --note "too vague" -r lena
    """
    _run(ws, "remove", [label], [], preview, note, reviewer, as_json, quiet)


@taxonomy_group.command()
@click.argument("label")
@change_options
def deprecate(ws, label, preview, note, reviewer, as_json, quiet):
    """Take no new decisions with a label; the items labeled with it keep it.

    \b
    Example:
      feedback taxonomy deprecate card_linking -r lena
    """
    _run(ws, "deprecate", [label], [], preview, note, reviewer, as_json, quiet)


@taxonomy_group.command()
@click.argument("change_id")
@reviewer_option
@workspace_option
@output_options
def undo(ws, change_id, reviewer, as_json, quiet):
    """Undo a taxonomy change: its items get back the labels they had, feedback.toml follows.

    \b
    Example:
      feedback taxonomy undo t-1a2b3c4d5e -r lena
    """
    from ..review import taxonomy

    done = taxonomy.undo_change(ws, signed_in(ws, reviewer), change_id)
    emit(done, as_json=as_json, quiet=quiet, text=lambda d: f"Undid {d['kind']} {change_id} ({d['items']} items rewritten).")


@taxonomy_group.command("log")
@workspace_option
@output_options
def log(ws, as_json, quiet):
    """The taxonomy changes, oldest first, with their items and undos.

    \b
    Example:
      feedback taxonomy log --json
    """
    from ..review import taxonomy

    taxonomy.sync(ws)
    emit(taxonomy.changes(ws), as_json=as_json, quiet=quiet, text=lambda rows: "\n".join(
        f"{c['change_id']}  {c['changed_at']:%Y-%m-%d %H:%M}  {c['actor']:<12} {taxonomy.describe(c)}  "
        f"{c['items']} items{', ' + str(c['queued']) + ' queued' if c['queued'] else ''}"
        f"{'  undone by ' + c['undone_by'] if c['undone_by'] else ''}{'  - ' + c['note'] if c['note'] else ''}"
        for c in rows) or "No taxonomy changes.")


@taxonomy_group.command("labels")
@workspace_option
@output_options
def labels(ws, as_json, quiet):
    """The labels with class id, status (active, deprecated, retired) and the items labeled with each now.

    \b
    Example:
      feedback taxonomy labels --json
    """
    from ..review import taxonomy

    emit(taxonomy.label_overview(ws), as_json=as_json, quiet=quiet, text=lambda rows: "\n".join(
        f"{'' if r['id'] is None else r['id']:>4}  {r['label']:40} {r['status']:<10} {r['items']:>7,} items"
        f"{'  ' + r['note'] if r['note'] else ''}" for r in rows) or "No labels yet.")


def _run(ws, kind, labels, into, preview, note, reviewer, as_json, quiet):
    from ..review import taxonomy

    if preview:
        counts = taxonomy.preview(ws, kind, labels, into)
        return emit(counts, as_json=as_json, quiet=quiet, text=lambda d: f"Preview, nothing applied: {taxonomy.describe(d)}\n"
                    + _counts(d))
    made = taxonomy.change(ws, signed_in(ws, reviewer), kind, labels, into, note=note)
    emit(made, as_json=as_json, quiet=quiet, text=lambda d: f"{d['change_id']}: {taxonomy.describe(d)}\n{_counts(d)}\n"
         f"Undo with `feedback taxonomy undo {d['change_id']}`.")


def _counts(d: dict) -> str:
    lines = [f"  items relabeled      {d['relabeled']:>7,}", f"  items queued         {d['queued']:>7,}",
             f"  decisions naming it  {d['decisions']:>7,}", f"  imports naming it    {d['imports']:>7,}",
             f"  gold answers         {d['gold']:>7,}"]
    if d["new_labels"]:
        lines.append(f"  new labels (new ids) {', '.join(d['new_labels'])}")
    return "\n".join(lines)
