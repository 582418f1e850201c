"""Review commands: the queue, claims, decisions, undo, history, agreement, groups, adjudication, purge."""

from __future__ import annotations


import click

from .. import capture, review, roles
from ..errors import InvalidEvent
from ..review.choices import REASONS, STATUSES
from .shell import emit, output_options, parse_pair, progress_for, reviewer_option, signed_in, workspace_option


@click.command("queue")
@click.option("--reason", type=click.Choice(REASONS), help="Only items queued for this reason.")
@click.option("--status", type=click.Choice(STATUSES), help="Only items with this status.")
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
    flt = review.QueueFilter(**filters)
    if counts:
        return emit(review.queue_counts(ws, flt), as_json=as_json, quiet=quiet, text=_counts_text)
    emit(review.queue_page(ws, flt, sort=sort, limit=limit, offset=offset), as_json=as_json, quiet=quiet,
         text=_queue_text)


@click.command("next")
@reviewer_option
@workspace_option
@output_options
def next_command(ws, reviewer, as_json, quiet):
    """Claim the next item of the queue for the reviewer and show it.

    \b
    Example:
      feedback next --reviewer alice
    """
    row = review.next_item(ws, signed_in(ws, reviewer))
    emit(row, as_json=as_json, quiet=quiet, text=lambda r: _queue_text([r]) if r else "The queue is empty.")


@click.command()
@click.argument("item_id", required=False)
@click.argument("label", required=False)
@click.option("--note", help="Why (kept with the decision).")
@click.option("--expect", "based_on", metavar="DECISION_ID",
              help="Refuse if the item's last decision is no longer this one ('none' for an undecided item).")
@click.option("--file", "decisions_file", type=click.Path(exists=True, dir_okay=False),
              help="Decide many items: a CSV, JSONL or Parquet file with item_id, label and optionally note, expect.")
@click.option("--override-claim", metavar="REASON",
              help="Leads: decide an item another reviewer holds, saying why (kept in the decision's note).")
@reviewer_option
@workspace_option
@output_options
def label(ws, item_id, label, note, based_on, decisions_file, override_claim, reviewer, as_json, quiet):
    """Decide an item: a label of the taxonomy, or skip, junk, unsure; or many items from a file.

    A file is decided in chunks, each row checked like one decision; bad rows are listed with their
    row number and cost only themselves (exit 1 when any row failed).

    \b
    Examples:
      feedback label req-000123 card_arrival --reviewer alice
      feedback label req-000124 junk --note "test message"
      feedback label --file decisions.csv --reviewer alice
    """
    if decisions_file:
        if item_id or label:
            raise click.UsageError("give ITEM_ID LABEL or --file, not both")
        return _decide_file(ws, signed_in(ws, reviewer), decisions_file, as_json=as_json, quiet=quiet)
    if not (item_id and label):
        raise click.UsageError("give ITEM_ID and LABEL (or --file)")
    check = based_on is not None
    decision = review.decide(ws, signed_in(ws, reviewer), item_id, label, note=note,
                             based_on=None if based_on == "none" else based_on, check_stale=check,
                             override_claim=override_claim)
    emit(decision, as_json=as_json, quiet=quiet, text=_decided_text)


#: What a decision that did not set the item's label left it waiting for
_WAITING = {"disputed": "disputed: it waits for a lead (`feedback adjudicate`)",
            "second_review": "it waits for a second review (its answers so far do not decide it)"}


def _decided_text(d: dict) -> str:
    said = f"{d['decision_id']}: {d['item_id']} -> {d['label'] or d['kind']} by {d['reviewer']}"
    if d["status"] in _WAITING:
        return f"{said}; {_WAITING[d['status']]}"
    if d["kind"] == "label" and d["current_label"] != d["label"]:
        return f"{said}; the item's label stays {d['current_label']!r} (its gold answer)"
    return said


@click.command("import-labels")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--map", "mappings", multiple=True, metavar="FIELD=COLUMN",
              help="Read FIELD (item_id, text, label, split) from column COLUMN (repeatable).")
@reviewer_option
@workspace_option
@output_options
def import_labels(ws, files, mappings, reviewer, as_json, quiet):
    """Bring in labels a team already has (a training set) as trusted labels with provenance `import`.

    Columns item_id, text, label and an optional split (which pins the example to that split of every
    release); a Label Studio export (JSON, JSON_MIN) or an Argilla dataset exported to Hugging Face
    (Parquet) is read as such rows, found by its content. A file imported before is skipped. Leads and admins.

    \b
    Examples:
      feedback import-labels train.csv --map item_id=id --map label=intent -r lena
      feedback import-labels frozen_test.parquet   # a split column pins each row
      feedback import-labels project-7-at-2026-12-08.json   # a Label Studio export
    """
    mapping = dict(parse_pair(m) for m in mappings)
    bar = progress_for(quiet)
    by = signed_in(ws, reviewer) if reviewer or roles.users(ws) else None
    report = review.import_labels(ws, files, by=by, mapping=mapping, progress=bar)
    emit(vars(report), as_json=as_json, quiet=quiet, text=lambda r: "\n".join(
        [f"Imported {r['labels']:,} labels ({r['pinned']:,} with a pinned split); {r['quarantined']:,} rows "
         "quarantined" + (", see `feedback quarantine`." if r["quarantined"] else ".")]
        + [f"Skipped {s}: imported before." for s in r["skipped_sources"]]))


@click.command()
@click.argument("decision_id", required=False)
@click.option("--last", is_flag=True, help="Undo the reviewer's latest decision.")
@click.option("--batch", "batch_id", help="Undo every decision of a group relabel batch.")
@reviewer_option
@workspace_option
@output_options
def undo(ws, decision_id, last, batch_id, reviewer, as_json, quiet):
    """Undo a decision (appends an undo; nothing is deleted).

    \b
    Examples:
      feedback undo d-1a2b3c4d5e6f7a8b
      feedback undo --last --reviewer alice
      feedback undo --batch batch-0123456789ab
    """
    if sum(map(bool, (decision_id, last, batch_id))) != 1:
        raise click.UsageError("give one of DECISION_ID, --last, --batch")
    who = signed_in(ws, reviewer)
    if batch_id:
        n = review.undo_batch(ws, who, batch_id)
        return emit({"batch_id": batch_id, "undone": n}, as_json=as_json, quiet=quiet,
                    text=lambda d: f"Undid {d['undone']} decisions of {batch_id}.")
    done = review.undo_last(ws, who) if last else review.undo(ws, who, decision_id)
    emit(done, as_json=as_json, quiet=quiet,
         text=lambda d: f"Undid {d['undoes']} on {d['item_id']}." if d else "Nothing to undo.")


@click.command()
@click.argument("item_id")
@workspace_option
@output_options
def history(ws, item_id, as_json, quiet):
    """Everything that happened to an item, oldest first.

    \b
    Example:
      feedback history req-000123 --json
    """
    emit(review.history(ws, item_id), as_json=as_json, quiet=quiet, text=lambda rows: "\n".join(
        f"{r['at']:%Y-%m-%d %H:%M:%S}  {r['kind']:<22} {r['label'] or '':<32} {r['reviewer'] or ''}" for r in rows))


@click.command()
@workspace_option
@output_options
def agreement(ws, as_json, quiet):
    """Agreement between reviewers (Cohen's kappa, Krippendorff's alpha) and accuracy on gold items.

    \b
    Example:
      feedback agreement --json
    """
    emit(review.reviewer_agreement(ws), as_json=as_json, quiet=quiet, text=_agreement_text)


@click.command()
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
    found = review.near_duplicate_groups(ws, threshold=threshold, min_size=min_size, queued_only=not all_items,
                                        progress=progress_for(quiet))[:limit]
    emit(found, as_json=as_json, quiet=quiet, text=lambda gs: "\n".join(
        f"{g['group_id']}  {g['size']:>4} items  {g['disputed']} disputed  {g['text'][:60]!r}" for g in gs)
        or "No groups.")


@click.command()
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
        return emit(review.preview_group(ws, list(item_ids)), as_json=as_json, quiet=quiet,
                    text=lambda rows: "\n".join(
                        f"{r['item_id']}  {r['current_label'] or '-'} -> {label}  {r['text']!r}" for r in rows))
    batch = review.relabel_group(ws, signed_in(ws, reviewer), list(item_ids), label, note=note)
    emit({"batch_id": batch, "items": len(set(item_ids))}, as_json=as_json, quiet=quiet,
         text=lambda d: f"Labeled {d['items']} items as {label}: batch {d['batch_id']} (undo with --batch).")


@click.command("not-duplicates")
@click.argument("item_ids", nargs=-1)
@click.option("--undo", "mark_id", metavar="MARK_ID", help="Take back a mark instead.")
@reviewer_option
@workspace_option
@output_options
def not_duplicates(ws, item_ids, mark_id, reviewer, as_json, quiet):
    """Mark items (a near-duplicate group, or a pair) as not duplicates; grouping and release gates respect it.

    \b
    Examples:
      feedback not-duplicates req-1 req-2 -r alice       # "what's the time" / "what's the date"
      feedback not-duplicates --undo apart-0123456789ab -r alice
    """
    who = signed_in(ws, reviewer)
    if mark_id:
        if item_ids:
            raise click.UsageError("give ITEM_IDS or --undo MARK_ID, not both")
        review.undo_distinct(ws, who, mark_id)
        return emit({"undone": mark_id}, as_json=as_json, quiet=quiet, text=lambda d: f"Undid {mark_id}.")
    mark = review.mark_distinct(ws, who, list(item_ids))
    emit({"mark_id": mark, "items": len(set(item_ids))}, as_json=as_json, quiet=quiet,
         text=lambda d: f"Marked {d['items']} items as not duplicates: {mark} (undo with --undo).")


@click.command()
@click.argument("item_id")
@click.argument("label")
@click.option("--note", help="Why.")
@reviewer_option
@workspace_option
@output_options
def adjudicate(ws, item_id, label, note, reviewer, as_json, quiet):
    """Settle a disputed item with a final label (leads).

    \b
    Example:
      feedback adjudicate req-000123 card_arrival --reviewer lead-ann
    """
    decision = review.adjudicate(ws, signed_in(ws, reviewer), item_id, label, note=note)
    emit(decision, as_json=as_json, quiet=quiet,
         text=lambda d: f"{d['decision_id']}: {item_id} -> {label} (adjudicated by {d['reviewer']})")


@click.command()
@click.argument("item_id")
@click.argument("label")
@reviewer_option
@workspace_option
@output_options
def gold(ws, item_id, label, reviewer, as_json, quiet):
    """Make an item a gold item with a known answer (leads); it then gets overlapping decisions.

    \b
    Example:
      feedback gold req-000123 card_arrival --reviewer lead-ann
    """
    review.set_gold(ws, signed_in(ws, reviewer), item_id, label)
    emit({"item_id": item_id, "gold": label}, as_json=as_json, quiet=quiet, text=lambda d: f"{item_id} is gold: {label}.")


@click.command()
@click.argument("item_ids", nargs=-1, required=True)
@reviewer_option
@workspace_option
@output_options
def enqueue(ws, item_ids, reviewer, as_json, quiet):
    """Put items in the review queue by hand (reason `manual`).

    \b
    Example:
      feedback enqueue req-000123 req-000124 --reviewer alice
    """
    n = review.add_to_queue(ws, signed_in(ws, reviewer), list(item_ids), reason="manual")
    emit({"queued": n}, as_json=as_json, quiet=quiet, text=lambda d: f"Queued {d['queued']} items.")


@click.command()
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
    field, value = parse_pair(meta_match, option="--meta") if meta_match else (None, None)
    report = review.forget(ws, signed_in(ws, reviewer), item_ids=list(item_ids), meta_field=field,
                           meta_value=value, why=why, progress=progress_for(quiet))
    emit(vars(report), as_json=as_json, quiet=quiet, text=_forget_text)


def _decide_file(ws, who, path, *, as_json: bool, quiet: bool) -> None:
    rows, unreadable = [], []
    for number, row, _ in capture.read_rows(path):
        (unreadable if isinstance(row, InvalidEvent) else rows).append((number, row))
    result = review.decide_many(ws, who, rows, progress=progress_for(quiet))
    result["errors"] = sorted(result["errors"] + [{"row": n, "item_id": None, "message": str(e)} for n, e in unreadable],
                              key=lambda e: e["row"])
    emit(result, as_json=as_json, quiet=quiet, text=lambda r: "\n".join(
        [f"Decided {r['decided']:,} items ({r['waiting']:,} of them wait for a second review or a lead); "
         f"{len(r['errors']):,} rows failed."]
        + [f"  row {e['row']}: {e['item_id'] or '-'}: {e['message']}" for e in r["errors"][:50]]))
    if result["errors"]:
        raise click.exceptions.Exit(1)


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
    if r["already_purged"]:
        lines.append(f"{len(r['already_purged'])} items had been purged before: nothing of theirs was left.")
    if r["active_lines_left"]:
        lines.append(f"{r['active_lines_left']} events are still in active spool segments: run again after ingest.")
    if r["releases"]:
        lines.append("Releases containing them (rebuild these): " + ", ".join(r["releases"]))
    return "\n".join(lines)
