"""`feedback release ...`: one subcommand per function of `feedback.release`.

A release is named `VERSION` (of the workspace's dataset) or `DATASET/VERSION`.
"""

from __future__ import annotations

from pathlib import Path

import click

from .. import release, roles
from ..errors import FeedbackError
from ..release.choices import FORMATS, GATES
from .shell import (Shell, emit, output_options, progress_for, reviewer_option, signed_in, warn_failed_hooks,
                    workspace_option)


@click.group("release", cls=Shell, context_settings={"help_option_names": ["-h", "--help"]})
def release_group():
    """Versioned dataset releases: create, list, show, verify, diff, lineage.

    \b
    Example:
      feedback release create --if-changed
      feedback release diff v1 v2
    """


@release_group.command()
@click.argument("dataset", required=False)
@click.option("--label", "labels", multiple=True, help="Only examples with this label (repeatable).")
@click.option("--source", "sources", multiple=True, help="Only examples from this source (repeatable).")
@click.option("--since", type=click.DateTime(), help="Only labels decided at or after this UTC time.")
@click.option("--until", type=click.DateTime(), help="Only labels decided before this UTC time.")
@click.option("--batch", help="Only the items of this group-relabel batch.")
@click.option("--items", "items_file", type=click.Path(exists=True, dir_okay=False),
              help="Only the item ids in this file, one per line (a saved curated batch).")
@click.option("--from-parent", is_flag=True,
              help="The parent release's examples plus the items decided since it (filters apply to those).")
@click.option("--version", "version", help="The version to make, e.g. v3 (default: the next one).")
@click.option("--to", "destination", help="Folder or URL to release into (default: [release] destination, "
                                          "else the workspace's releases folder).")
@click.option("--override", multiple=True, type=click.Choice(GATES), help="Let this failing gate through "
              "(repeatable; needs --reason, and a lead or an admin as --reviewer).")
@click.option("--reason", help="Why gates are overridden (recorded in the release).")
@click.option("--if-changed", is_flag=True, help="Make no release when the content equals the parent's.")
@click.option("--format", "formats", multiple=True, type=click.Choice(FORMATS[1:]),
              help="Also write each split as CSV or JSONL, beside the Parquet (repeatable).")
@click.option("--no-hooks", is_flag=True, help="Run no [hooks] on_release command or webhook for this release.")
@reviewer_option
@workspace_option
@output_options
def create(ws, dataset, labels, sources, since, until, batch, items_file, from_parent, version, destination,
           override, reason, if_changed, formats, no_hooks, reviewer, as_json, quiet):
    """Select reviewed examples, run the quality gates, and write a new immutable release.

    \b
    Examples:
      feedback release create
      feedback release create --label card_arrival --label card_linking --since 2026-11-01
      feedback release create --from-parent --batch batch-0123456789ab
      feedback release create --to 's3://ml-data/releases?region=eu-west-1' --if-changed
      feedback release create --override leakage --reason "known paraphrases, ticket ML-42" -r lena

    The on_release hooks run once the release is recorded, and the command waits for them; one that
    fails or times out is named on stderr (the release stands, and `feedback check` fails on it).
    """
    items = tuple(line.strip() for line in Path(items_file).read_text(encoding="utf-8").splitlines()
                  if line.strip()) if items_file else None
    selection = release.Selection(labels=labels, sources=sources, since=since, until=until, batch=batch,
                                  items=items, from_parent=from_parent)
    result = release.create_release(ws, dataset, selection=selection, version=version, destination=destination,
                                    override=override, reason=reason, if_changed=if_changed, formats=formats,
                                    hooks=not no_hooks, progress=progress_for(quiet),
                                    by=signed_in(ws, reviewer) if reviewer or roles.users(ws) else None)
    emit(result, as_json=as_json, quiet=quiet, text=_create_text)
    warn_failed_hooks(result.get("hooks", []), f"{result['dataset']}/{result['version']} was released all the same")


@release_group.command("list")
@click.argument("dataset", required=False)
@workspace_option
@output_options
def list_command(ws, dataset, as_json, quiet):
    """The releases recorded in the store, oldest first.

    \b
    Example:
      feedback release list --json
    """
    emit(release.list_releases(ws, dataset), as_json=as_json, quiet=quiet, text=lambda rows: "\n".join(
        f"{r['dataset']}/{r['version']:<5} {r['examples']:>9,} examples  {r['release_id'][:12]}  "
        f"parent {r['parent'] or '-':<5} {r['created_at']:%Y-%m-%d %H:%M}  {r['location']}"
        + (f"  overrides {','.join(r['overrides'])}" if r["overrides"] else "") for r in rows) or "No releases yet.")


@release_group.command()
@click.argument("ref")
@workspace_option
@output_options
def show(ws, ref, as_json, quiet):
    """A release's manifest: counts, splits, gates, recipe.

    \b
    Example:
      feedback release show v2
      feedback release show banking77/v2 --json
    """
    emit(release.show_release(ws, ref), as_json=as_json, quiet=quiet, text=_show_text)


@release_group.command()
@click.argument("ref")
@workspace_option(required=False)
@output_options
def verify(ws, ref, as_json, quiet):
    """Recompute every checksum and digest of a release and compare it with the store's record; exit 1 naming
    what differs.

    REF is a release (v2, DATASET/v2) or a release folder (a path or URL). A folder where no release of
    the workspace is recorded (a copy), or checked where there is no workspace (a trainer's machine), is
    checked against itself only.

    \b
    Example:
      feedback release verify v2
      feedback release verify releases/banking77/v2
    """
    report = release.verify_release(ws, ref, progress=progress_for(quiet))
    if report["ok"] or as_json:
        emit(report, as_json=as_json, quiet=quiet, text=_verify_text)
    if not report["ok"]:
        raise FeedbackError(f"{report['location']} failed verification: " + "; ".join(
            f"{p['file']}: {p['problem']}" for p in report["problems"]))


@release_group.command()
@click.argument("old")
@click.argument("new")
@workspace_option
@output_options
def diff(ws, old, new, as_json, quiet):
    """What changed between two releases: added, removed, relabeled (from -> to), split moves, labels.

    \b
    Example:
      feedback release diff v1 v2
      feedback release diff v1 v2 --json
    """
    emit(release.diff_releases(ws, old, new), as_json=as_json, quiet=quiet, text=_diff_text)


@release_group.command()
@click.argument("ref")
@click.argument("item_id")
@workspace_option
@output_options
def lineage(ws, ref, item_id, as_json, quiet):
    """The decisions and production events behind one example of a release.

    \b
    Example:
      feedback release lineage v2 req-000123
    """
    emit(release.lineage(ws, ref, item_id), as_json=as_json, quiet=quiet, text=_lineage_text)


@release_group.command()
@click.argument("item_id")
@workspace_option
@output_options
def containing(ws, item_id, as_json, quiet):
    """The releases that contain an item, with its split and label in each.

    \b
    Example:
      feedback release containing req-000123
    """
    emit(release.item_releases(ws, item_id), as_json=as_json, quiet=quiet, text=lambda rows: "\n".join(
        f"{r['release']:<20} {r['split']:<10} {r['label']}" for r in rows) or f"No release contains {item_id}.")



@release_group.command("export")
@click.argument("ref")
@click.option("--to", "path", required=True, type=click.Path(dir_okay=False), help="The file to write; the "
              "labeling config goes beside it (.xml).")
@click.option("--format", "format_", default="label-studio", show_default=True, help="The tool: label-studio.")
@click.option("--as-predictions", is_flag=True, help="The labels as predictions for people to check, not annotations.")
@workspace_option
@output_options
def export(ws, ref, path, format_, as_predictions, as_json, quiet):
    """Write a release for a team's labeling tool: Label Studio tasks, and the project's labeling config.

    \b
    Examples:
      feedback release export v3 --format label-studio --to v3-tasks.json
      feedback release export v3 --to v3-check.json --as-predictions
    """
    from ..release.exports import export_release  # loads the release's readers: only this command needs them
    emit(export_release(ws, ref, path, format=format_, as_predictions=as_predictions), as_json=as_json, quiet=quiet,
         text=lambda r: f"Wrote {r['tasks']:,} tasks of {r['release']} ({r['labels_as']}) to {r['path']}; make the "
                        f"Label Studio project with the labeling config in {r['config']}, then import the tasks.")

def _create_text(r: dict) -> str:
    if not r["created"]:
        return f"No release made: {r['dataset']}/{r['version']} has the same content ({r['release_id'][:12]})."
    splits = ", ".join(f"{k} {v:,}" for k, v in r["splits"].items())
    d = r["diff"]
    lines = [f"Released {r['dataset']}/{r['version']}: {r['examples']:,} examples ({splits}) at {r['location']}",
             f"release_id {r['release_id']}",
             f"vs parent: {d['added']:,} added, {d['removed']:,} removed, {d['relabeled']:,} relabeled"]
    if r["adopted"]:
        lines.append("adopted the folder an interrupted build left unrecorded: it verifies and holds this content")
    if r["set_aside"]:
        lines.append(f"an unrecorded folder (an interrupted build's) was in its place: set aside to {r['set_aside']}")
    lines += [f"gate {g['gate']}: {g['status']}{' (overridden)' if g['overridden'] else ''}: {g['detail']}"
              for g in r["gates"] if g["status"] in ("fail", "warn") or g["gate"] == "fitness"]
    for h in r["hooks"]:
        detail = h["detail"].split("\n")[0][:120]
        lines.append(f"hook {'on_release' if h['hook'] == 'command' else 'webhook'} {h['target']} #{h['attempt']}: "
                     f"{h['status']} ({detail})")
    return "\n".join(lines)


def _verify_text(r: dict) -> str:
    if r["anchor"]["checked"]:
        return (f"{r['location']}: every file and digest checks out, and manifest.json and SHA256SUMS are those "
                f"the store recorded for {r['anchor']['release']}.")
    return (f"{r['location']}: every file and digest checks out against the folder itself; could not check it "
            f"against the store: {r['anchor']['why']}.")


def _show_text(m: dict) -> str:
    lines = [f"{m['dataset']}/{m['version']}  {m['release_id']}  at {m['location']}",
             f"parent {m['parent']['version'] if m['parent'] else '-'}, built {m['created_at'][:19]} "
             f"by {m['created_by'] or '-'}, from event {m['recipe']['watermark']['event_seq']}",
             "splits: " + ", ".join(f"{k} {v['rows']:,}" for k, v in m["splits"].items())]
    lines += [f"gate {g['gate']:<14} {g['status']}{' (overridden)' if g['overridden'] else ''}" for g in m["gates"]]
    return "\n".join(lines)


def _diff_text(d: dict) -> str:
    lines = [f"{d['from']} -> {d['to']}: {d['examples']['before']:,} -> {d['examples']['after']:,} examples",
             f"added {d['added']:,}, removed {d['removed']:,}, relabeled {d['relabeled']:,}, "
             f"split moves {d['split_moves']:,}"]
    lines += [f"  relabeled {r['from']} -> {r['to']}: {r['count']:,}" for r in d["relabel_matrix"]]
    lines += [f"  label {r['label']}: {r['before']:,} -> {r['after']:,} ({r['change']:+,})" for r in d["labels"]
              if r["change"]]
    return "\n".join(lines)


def _lineage_text(r: dict) -> str:
    e = r["example"]
    lines = [f"{e['id']} in {r['release']}: {e['split']}, label {e['label']} set by {e['label_decision_id']} "
             f"({e['label_reviewer']})"]
    lines += [f"  event    {v['ts']}  {v['type']:<10} {v['event_id']}  {v['pred_label'] or v['corr_label'] or ''}"
              for v in r["events"]]
    lines += [f"  decision {d['decided_at']}  {d['kind']:<10} {d['decision_id']}  {d['label'] or ''}  {d['reviewer']}"
              for d in r["decisions"]]
    return "\n".join(lines)
