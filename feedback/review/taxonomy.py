"""Taxonomy changes: rename, merge, split, remove and deprecate labels, each an undoable event in the store.

A class id is a label's position in `[[taxonomy.labels]]`, so entries are never reordered or deleted: a
rename changes the name in place (same id); a merge, split or removal retires the old entries and appends
the new labels (new ids; a merge into an existing label keeps its id); a deprecation stops new labels and
keeps the existing ones. Each change is one store transaction: the change (`taxonomy_changes`), the items
whose current label it touches (`taxonomy_items`), their reviews rewritten through `renames.label_map`, and
the items of a split or removed label queued with reason `taxonomy`. An undo appends a copy of the change
with `undone_at`, and rewrites the same items, which restores them.

The store's log is the truth; feedback.toml follows it. After the commit the labels in feedback.toml are
rewritten (the rest of the file kept byte for byte), with `[taxonomy] changes_applied`, the number of log
rows the file reflects. A file behind the log (a process that died between the two, or another folder
of a team store) is brought up to date by `sync`, which every operation here, and a release, runs first.
"""

from __future__ import annotations

import os
import re
import tomllib
import uuid
from datetime import UTC, datetime

import pyarrow as pa

from ..errors import FeedbackError, NotFound, WorkspaceError
from ..roles import Actor
from ..workspace import CONFIG_NAME, Workspace, toml_string
from .choices import DECISION_KINDS
from .queue import log_reasons
from .renames import label_map
from .state import refresh_items, sync_items, write_reviews

__all__ = ["KINDS", "change", "changes", "changes_since", "deprecate", "describe", "label_mapping", "label_overview", "merge", "preview",
           "remove", "rename", "renamed", "split", "sync", "undo_change"]

KINDS = ("rename", "merge", "split", "remove", "deprecate")
_RETIRING = ("merge", "split", "remove")
_LIVE = ("SELECT * FROM taxonomy_changes WHERE undone_at IS NULL AND change_id NOT IN "
         "(SELECT change_id FROM taxonomy_changes WHERE undone_at IS NOT NULL) ORDER BY changed_at, change_id")


def rename(ws: Workspace, actor: Actor, old: str, new: str, *, note: str | None = None) -> dict:
    """Give label `old` the name `new`; its class id and every item labeled with it keep their meaning."""
    return change(ws, actor, "rename", [old], [new], note=note)


def merge(ws: Workspace, actor: Actor, labels: list[str], into: str, *, note: str | None = None) -> dict:
    """Merge `labels` into `into` (an existing label keeps its id, a new one is appended); the merged are retired."""
    return change(ws, actor, "merge", list(labels), [into], note=note)


def split(ws: Workspace, actor: Actor, label: str, into: list[str], *, note: str | None = None) -> dict:
    """Retire `label` for the labels `into`; its items go back to review with reason `taxonomy`."""
    return change(ws, actor, "split", [label], list(into), note=note)


def remove(ws: Workspace, actor: Actor, label: str, *, note: str | None = None) -> dict:
    """Retire `label` (its id is never reused); its items go back to review with reason `taxonomy`."""
    return change(ws, actor, "remove", [label], note=note)


def deprecate(ws: Workspace, actor: Actor, label: str, *, note: str | None = None) -> dict:
    """Refuse new decisions with `label`; the items labeled with it keep it."""
    return change(ws, actor, "deprecate", [label], note=note)


def preview(ws: Workspace, kind: str, labels: list[str], into: list[str] = ()) -> dict:
    """What a change would touch, applying nothing: the items whose current label changes (`relabeled`), the
    items queued for review, and the decisions, imports and gold answers that name its labels."""
    sync(ws)
    labels, into = _checked(ws, kind, list(labels), list(into))
    with ws.store().atomic(shared=True) as tx:
        sync_items(tx, ws)
        return {"kind": kind, "labels_from": labels, "labels_to": into, **_effect(tx, ws, kind, labels, into)}


def undo_change(ws: Workspace, actor: Actor, change_id: str) -> dict:
    """Undo a change: its items' reviews are rewritten as they were, and feedback.toml follows.

    Refused when a later change builds on its labels (undo that one first), or when decisions or gold answers
    made since use a label the change brought in (undo or relabel them first).
    """
    actor.require(ws, "change_taxonomy")
    seen = _settled(ws)
    with ws.store().atomic() as tx:
        _unchanged(tx, seen)
        change = _live_change(tx, change_id)
        later = [c["change_id"] for c in tx.rows(_LIVE) if c["changed_at"] > change["changed_at"]
                 and set(c["labels_from"] + (c["labels_to"] or [])) & set(change["labels_from"] + change["labels_to"])]
        if later:
            raise FeedbackError(f"taxonomy change {change_id} cannot be undone while {', '.join(later)} builds on "
                                f"its labels; undo {later[-1]} first")
        brought = _brought_in(ws, change)
        used = tx.value("SELECT count(*) FROM (SELECT decided_at AS made_at FROM decisions WHERE kind != 'undo' AND decision_id "
                        "NOT IN (SELECT undoes FROM decisions WHERE undoes IS NOT NULL) AND label IN "
                        "(SELECT unnest(?::VARCHAR[])) UNION ALL SELECT set_at FROM gold WHERE label IN "
                        "(SELECT unnest(?::VARCHAR[]))) AS d WHERE made_at >= ?", [brought, brought, change["changed_at"]])
        if used:
            raise FeedbackError(f"taxonomy change {change_id} cannot be undone: {used} decisions or gold answers made "
                                f"since use {', '.join(map(repr, brought))}; undo or relabel them first")
        ids = sorted({r["item_id"] for r in tx.rows("SELECT item_id FROM taxonomy_items WHERE change_id = ?",
                                                    [change_id])} | set(_mentioning(tx, change["labels_from"])))
        tx.insert("taxonomy_changes", _change_row({**change, "undone_at": _now(), "undone_by": actor.name}))
        if ids:
            write_reviews(tx, ws, ids)
            refresh_items(tx, ws, ids)  # the change's `taxonomy` reasons no longer count
    sync(ws)
    return {"change_id": change_id, "kind": change["kind"], "undone": True, "items": len(ids)}


def changes(ws: Workspace) -> list[dict]:
    """The log, oldest first: each change with its labels, who made it, its items, and whether (when, by
    whom) it was undone."""
    with ws.store().connect() as tx:
        rows = tx.rows("SELECT * FROM taxonomy_changes ORDER BY changed_at, change_id, undone_at NULLS FIRST")
        counts = {r["change_id"]: r for r in tx.rows(
            "SELECT change_id, count(*) AS items, count(*) FILTER (WHERE label_after IS NULL) AS queued "
            "FROM taxonomy_items GROUP BY change_id")}
    undone = {r["change_id"]: r for r in rows if r["undone_at"] is not None}
    return [{"change_id": r["change_id"], "kind": r["kind"], "labels_from": list(r["labels_from"]),
             "labels_to": list(r["labels_to"] or []), "actor": r["actor"], "changed_at": r["changed_at"],
             "note": r["note"], "items": counts.get(r["change_id"], {}).get("items", 0),
             "queued": counts.get(r["change_id"], {}).get("queued", 0),
             "undone_at": undone.get(r["change_id"], {}).get("undone_at"),
             "undone_by": undone.get(r["change_id"], {}).get("undone_by")}
            for r in rows if r["undone_at"] is None]


def describe(change: dict) -> str:
    """A change in words: "merge card_linking, card_activation into card_setup"."""
    old, new = ", ".join(change["labels_from"]), ", ".join(change["labels_to"])
    return {"rename": f"rename {old} -> {new}", "merge": f"merge {old} into {new}", "split": f"split {old} into {new}",
            "remove": f"remove {old}", "deprecate": f"deprecate {old}"}[change["kind"]]


def changes_since(ws: Workspace, since: datetime | None, until: datetime | None = None) -> tuple[list[dict], pa.Table]:
    """The changes made or undone after `since` and up to `until` (None: no bound), as `changes` gives them (an
    undo after `until` not shown), and their items as a table (change_id, item_id): what a release records of
    the taxonomy since its parent."""
    def within(at):
        return at is not None and (since is None or at > since) and (until is None or at <= until)

    fresh = [{**c, **({} if within(c["undone_at"]) else {"undone_at": None, "undone_by": None})}
             for c in changes(ws) if within(c["changed_at"]) or within(c["undone_at"])]
    with ws.store().connect() as tx:
        touched = tx.arrow("SELECT change_id, item_id FROM taxonomy_items WHERE change_id IN "
                           "(SELECT unnest(?::VARCHAR[]))", [[c["change_id"] for c in fresh]])
    return fresh, touched


def label_mapping(ws: Workspace) -> dict[str, str | None]:
    """`renames.label_map` of the workspace's store: each label the changes in force replaced, and by what."""
    with ws.store().connect() as tx:
        return label_map(tx)


def renamed(ws: Workspace) -> dict[str, str]:
    """Each former name of a label renamed by the changes in force, and its name now."""
    with ws.store().connect() as tx:
        return _renames(tx.rows(_LIVE))


def _renames(live: list[dict]) -> dict[str, str]:
    """Former name -> name now, composed over the renames among these changes."""
    former: dict[str, str] = {}
    for c in live:
        if c["kind"] == "rename":
            old, new = c["labels_from"][0], c["labels_to"][0]
            former = {k: (new if v == old else v) for k, v in former.items()} | {old: new}
    return former


def label_overview(ws: Workspace) -> list[dict]:
    """The labels with class id, status and the items currently labeled with each (the Taxonomy page's table);
    in an open taxonomy, the labels items carry, without ids."""
    sync(ws)
    with ws.store().atomic(shared=True) as tx:
        sync_items(tx, ws)
        counts = {r["label"]: r["n"] for r in tx.rows(
            "SELECT current_label AS label, count(*) AS n FROM reviews WHERE current_label IS NOT NULL GROUP BY 1")}
    if ws.taxonomy.mode == "open":
        return [{"id": None, "label": name, "status": "active", "items": n, "note": ""}
                for name, n in sorted(counts.items())]
    return [{"id": i, "label": label.name, "status": label.status, "items": counts.get(label.name, 0),
             "note": ws.taxonomy.refusal(label.name) or ""} for i, label in enumerate(ws.taxonomy.labels)]


def sync(ws: Workspace) -> int:
    """Bring feedback.toml's labels up to the store's log (and `ws` with it); return the log rows replayed."""
    with ws.store().connect() as tx:
        log = tx.rows("SELECT * FROM taxonomy_changes ORDER BY coalesce(undone_at, changed_at), change_id")
        live = tx.rows(_LIVE)
        releases = [r["created_at"] for r in tx.rows("SELECT created_at FROM releases")]
    applied = int(ws.config["taxonomy"].get("changes_applied", 0))
    if applied > len(log):
        raise WorkspaceError(f"{ws.root / CONFIG_NAME} reflects {applied} taxonomy changes but the store records "
                             f"{len(log)}: is this the workspace's store? Fix [taxonomy] changes_applied by hand")
    if applied == len(log) or ws.config["taxonomy"].get("mode") != "fixed":
        return 0
    entries = [{"name": e} if isinstance(e, str) else dict(e) for e in ws.config["taxonomy"]["labels"]]
    for row in log[applied:]:
        entries = _restructure(entries, row, releases)
    _write_labels(ws, _derive(entries, live), len(log))
    return len(log) - applied


# -- applying a change ------------------------------------------------------------------------------------

def change(ws: Workspace, actor: Actor, kind: str, labels: list[str], into: list[str] = (), *,
           note: str | None = None) -> dict:
    """Apply a change of any kind (what `rename` ... `deprecate` call): the labels it changes, the labels they
    become; returns the change with the counts `preview` gives and `items`, the items it touched."""
    actor.require(ws, "change_taxonomy")
    seen = _settled(ws)
    labels, into = _checked(ws, kind, list(labels), list(into))
    made = {"change_id": f"t-{uuid.uuid4().hex[:10]}", "kind": kind, "labels_from": labels, "labels_to": into,
            "actor": actor.name, "changed_at": _now(), "note": note or None, "undone_at": None, "undone_by": None}
    with ws.store().atomic() as tx:
        _unchanged(tx, seen)
        sync_items(tx, ws)
        counted = _effect(tx, ws, kind, labels, into)
        ids = _mentioning(tx, labels)
        before = _current(tx, ids)
        tx.insert("taxonomy_changes", _change_row(made))
        if ids:
            write_reviews(tx, ws, ids)
        after = _current(tx, ids)
        live = set(label_map(tx))
        queued = [i for i in ids if kind in ("split", "remove") and before[i] in labels
                  and (after[i] is None or after[i] in live)]
        touched = [i for i in ids if before[i] in labels or before[i] != after[i]]
        tx.insert("taxonomy_items", pa.table({
            "change_id": pa.array([made["change_id"]] * len(touched), pa.string()),
            "item_id": pa.array(touched, pa.string()), "label_before": pa.array([before[i] for i in touched], pa.string()),
            "label_after": pa.array([None if i in queued else after[i] for i in touched], pa.string())}))
        if queued:
            log_reasons(tx, ws, actor, queued, reason="taxonomy", scores=[1.0] * len(queued), details=[
                {"change_id": made["change_id"], "kind": kind, "label": before[i]} for i in queued])
    sync(ws)
    return {**{k: made[k] for k in ("change_id", "kind", "labels_from", "labels_to", "actor", "changed_at", "note")},
            **counted, "items": len(touched)}


def _settled(ws: Workspace) -> int:
    """Sync feedback.toml, check it can be rewritten, and return the number of log rows it reflects."""
    sync(ws)
    path = ws.root / CONFIG_NAME
    if ws.taxonomy.mode == "fixed" and len(_label_blocks(path.read_text(encoding="utf-8").splitlines())) != len(
            ws.taxonomy.labels):
        raise WorkspaceError(f"{path} lists its labels in a form this cannot rewrite; write each as a "
                             "[[taxonomy.labels]] table, then run the command again")
    with ws.store().connect() as tx:
        return tx.value("SELECT count(*) FROM taxonomy_changes")


def _unchanged(tx, seen: int) -> None:
    """Refuse to go on when another change was made since `_settled` (the transaction holds the store alone)."""
    if tx.value("SELECT count(*) FROM taxonomy_changes") != seen:
        raise FeedbackError("the taxonomy changed meanwhile (another change or undo); see `feedback taxonomy log` "
                            "and run the command again")


def _checked(ws: Workspace, kind: str, labels: list[str], into: list[str]) -> tuple[list[str], list[str]]:
    """The change's labels, or every problem with them in one error."""
    if kind not in KINDS:
        raise FeedbackError(f"taxonomy change {kind!r}: use one of {', '.join(KINDS)}")
    tx_map = label_mapping(ws)
    known = _known(ws, tx_map)
    problems = []
    for name in dict.fromkeys(labels):
        if name in tx_map or name in ws.taxonomy.retired:
            problems.append(ws.taxonomy.refusal(name) or f"label {name!r} was changed by an earlier taxonomy change "
                            f"(it now stands for {tx_map.get(name) or 'no label'})")
        elif name not in known:
            problems.append(f"label {name!r} is not in the taxonomy{ws.taxonomy.hint(name)}")
        elif kind == "deprecate" and _status(ws, name) == "deprecated":
            problems.append(f"label {name!r} is already deprecated")
    if len(set(labels)) != len(labels):
        problems.append("a label is named twice")
    if not labels or (kind == "merge" and not into):
        problems.append("name the labels to change" if not labels else "name the label to merge into (--into)")
    if kind == "split" and len(set(into)) < 2:
        problems.append("a split needs two or more labels to split into (--into B --into C)")
    for name in dict.fromkeys(into):
        if name in labels:
            problems.append(f"label {name!r} cannot be {'merged' if kind == 'merge' else 'split'} into itself"
                            if kind != "rename" else f"{name!r} is already the label's name")
        elif not name.strip() or name in DECISION_KINDS:
            problems.append(f"{name!r} cannot be a label: it is empty or names a decision (skip, junk, unsure)")
        elif name in tx_map or name in ws.taxonomy.retired or (kind != "rename" and name in _former(ws)):
            problems.append(f"label {name!r} was retired or renamed by an earlier taxonomy change; a retired name "
                            "is never used again (class ids keep their meaning): choose another name")
        elif kind == "rename" and (name in known or name in _former(ws)):
            problems.append(f"label {name!r} already exists; merge the two instead (feedback taxonomy merge)")
        elif name in known and _status(ws, name) == "deprecated":
            problems.append(f"label {name!r} is deprecated: it takes no new labels")
    if problems:
        raise FeedbackError("; ".join(dict.fromkeys(problems)))
    return list(labels), list(dict.fromkeys(into))


def _effect(tx, ws: Workspace, kind: str, labels: list[str], into: list[str]) -> dict:
    """The counts a change touches, read before it applies."""
    current = tx.value("SELECT count(*) FROM reviews WHERE current_label IN (SELECT unnest(?::VARCHAR[]))", [labels])
    mentions = {r["kind"]: r["n"] for r in tx.rows(
        "SELECT CASE WHEN kind = 'import' THEN 'imports' ELSE 'decisions' END AS kind, count(*) AS n FROM decisions "
        "WHERE kind != 'undo' AND label IN (SELECT unnest(?::VARCHAR[])) GROUP BY 1", [labels])}
    gold = tx.value("SELECT count(*) FROM gold WHERE label IN (SELECT unnest(?::VARCHAR[]))", [labels])
    return {"relabeled": current if kind in ("rename", "merge") else 0,
            "queued": current if kind in ("split", "remove") else 0,
            "decisions": mentions.get("decisions", 0), "imports": mentions.get("imports", 0), "gold": gold,
            "new_labels": [n for n in into if n not in ws.taxonomy.names] if kind in ("merge", "split") else [],
            "retired": labels if kind in _RETIRING else []}


def _mentioning(tx, labels: list[str]) -> list[str]:
    """The items whose decisions, imports, gold answer or current label name one of these labels."""
    return [r["item_id"] for r in tx.rows(
        "SELECT item_id FROM decisions WHERE label IN (SELECT unnest(?::VARCHAR[])) UNION "
        "SELECT item_id FROM gold WHERE label IN (SELECT unnest(?::VARCHAR[])) UNION "
        "SELECT item_id FROM reviews WHERE current_label IN (SELECT unnest(?::VARCHAR[])) ORDER BY item_id",
        [labels, labels, labels])]


def _current(tx, ids: list[str]) -> dict[str, str | None]:
    found = {r["item_id"]: r["current_label"] for r in tx.rows(
        "SELECT item_id, current_label FROM reviews WHERE item_id IN (SELECT unnest(?::VARCHAR[]))", [ids])}
    return {i: found.get(i) for i in ids}


def _live_change(tx, change_id: str) -> dict:
    rows = tx.rows("SELECT * FROM taxonomy_changes WHERE change_id = ? ORDER BY undone_at NULLS FIRST", [change_id])
    if not rows:
        raise NotFound(f"no taxonomy change {change_id!r}; see `feedback taxonomy log`")
    if len(rows) > 1:
        raise FeedbackError(f"taxonomy change {change_id} was already undone by {rows[-1]['undone_by']} at "
                            f"{rows[-1]['undone_at']:%Y-%m-%d %H:%M}")
    return {**rows[0], "labels_from": list(rows[0]["labels_from"]), "labels_to": list(rows[0]["labels_to"] or [])}


def _brought_in(ws: Workspace, change: dict) -> list[str]:
    """The labels a change brought into the taxonomy: a rename's new name, the labels a merge or split added."""
    if change["kind"] == "rename":
        return change["labels_to"]
    if ws.taxonomy.mode == "fixed":
        return [label.name for label in ws.taxonomy.labels if label.added == change["change_id"]]
    return [n for n in change["labels_to"] if change["kind"] == "split"]


def _change_row(change: dict) -> pa.Table:
    return pa.Table.from_pylist([{k: change[k] for k in _CHANGE_SCHEMA.names}], schema=_CHANGE_SCHEMA)


_CHANGE_SCHEMA = pa.schema([
    ("change_id", pa.string()), ("kind", pa.string()), ("labels_from", pa.list_(pa.string())),
    ("labels_to", pa.list_(pa.string())), ("actor", pa.string()), ("changed_at", pa.timestamp("us")),
    ("note", pa.string()), ("undone_at", pa.timestamp("us")), ("undone_by", pa.string()),
])


def _known(ws: Workspace, mapping: dict) -> list[str]:
    """The labels a change may name: the fixed list's, else those items' decisions and gold answers carry."""
    if ws.taxonomy.mode == "fixed":
        return [label.name for label in ws.taxonomy.labels]
    with ws.store().connect() as tx:
        used = [r["label"] for r in tx.rows("SELECT DISTINCT label FROM decisions WHERE label IS NOT NULL UNION "
                                            "SELECT DISTINCT label FROM gold ORDER BY 1")]
    return [n for n in used if n not in mapping] + [n for n in mapping.values() if n]


def _status(ws: Workspace, name: str) -> str:
    return next((label.status for label in ws.taxonomy.labels if label.name == name), "active")


def _former(ws: Workspace) -> set[str]:
    return {n for label in ws.taxonomy.labels for n in label.renamed_from}


# -- feedback.toml -------------------------------------------------------------------------------

_DERIVED = ("status", "change", "replaced_by", "renamed_from")
_KEYS = ("name", "description", "hotkey", "status", "change", "replaced_by", "renamed_from", "added")


def _restructure(entries: list[dict], row: dict, releases: list[datetime]) -> list[dict]:
    """The label entries after one log row: a rename (or its undo) renames in place, a merge or split appends
    its new labels; the undo of one drops them again when they are the last entries and no release was made
    meanwhile (else they stay, retired: their ids may be in a release)."""
    undo = row["undone_at"] is not None
    names = [e["name"] for e in entries]
    old, new = list(row["labels_from"]), list(row["labels_to"] or [])
    if row["kind"] == "rename":
        source, target = (new[0], old[0]) if undo else (old[0], new[0])
        return [{**e, "name": target} if e["name"] == source else e for e in entries]
    if row["kind"] not in ("merge", "split"):
        return entries
    if not undo:
        return entries + [{"name": n, "added": row["change_id"]} for n in new if n not in names]
    added = [i for i, e in enumerate(entries) if e.get("added") == row["change_id"]]
    last = added == list(range(len(entries) - len(added), len(entries)))
    if added and last and not any(row["changed_at"] <= at <= row["undone_at"] for at in releases):
        return entries[:added[0]]
    return entries


def _derive(entries: list[dict], live: list[dict]) -> list[dict]:
    """Each entry's status, the change that set it, what replaced it and its former names, from the changes in
    force; an entry a change added that was undone since stays retired."""
    status: dict[str, tuple] = {}
    former = _renames(live)
    for c in live:
        old, new = list(c["labels_from"]), list(c["labels_to"] or [])
        if c["kind"] == "rename":
            if old[0] in status:
                status[new[0]] = status.pop(old[0])
        elif c["kind"] == "deprecate":
            status[old[0]] = ("deprecated", c["change_id"], [])
        else:
            status.update({n: ("retired", c["change_id"], new) for n in old})
    live_ids = {c["change_id"] for c in live}
    derived = []
    for e in entries:
        kept = {k: v for k, v in e.items() if k not in _DERIVED}
        found = status.get(e["name"])
        if found is None and e.get("added") and e["added"] not in live_ids:
            found = ("retired", e["added"], [])
        if found:
            kept.update({"status": found[0], "change": found[1]} | ({"replaced_by": found[2]} if found[2] else {}))
        renamed = sorted(k for k, v in former.items() if v == e["name"])
        derived.append(kept | ({"renamed_from": renamed} if renamed else {}))
    return derived


_HEADER = re.compile(r"^\s*\[\[\s*taxonomy\.labels\s*\]\]\s*(#.*)?$")
_TABLE = re.compile(r"^\s*\[")


def _write_labels(ws: Workspace, entries: list[dict], applied: int) -> None:
    """Rewrite the label entries that changed, append new ones and set `changes_applied`, keeping every other
    byte of feedback.toml; the file is replaced atomically and read back before it counts."""
    path = ws.root / CONFIG_NAME
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    blocks = _label_blocks(lines)
    old = [{"name": e} if isinstance(e, str) else dict(e) for e in tomllib.loads(text).get("taxonomy", {}).get("labels", [])]
    if len(blocks) != len(old):
        raise WorkspaceError(f"{path} lists its labels in a form this cannot rewrite; write each as a "
                             "[[taxonomy.labels]] table, then run the command again")
    dropped = blocks[len(entries):]
    for start, end in reversed(dropped):
        del lines[start:end]
    for (start, end), before, after in reversed(list(zip(blocks, old, entries))):
        if before != after:
            lines[start:end] = [_render(after)]
    tail = "".join(_render(e) for e in entries[len(old):])
    text = "".join(lines)
    if dropped and not "".join(lines[dropped[0][0]:]).strip():
        text = text.rstrip("\n") + "\n"
    if tail:
        text = text.rstrip("\n") + "\n\n" + tail
    text = _set_applied(text, applied)
    parsed = tomllib.loads(text)["taxonomy"]
    if [{"name": e} if isinstance(e, str) else e for e in parsed.get("labels", [])] != entries \
            or parsed["changes_applied"] != applied:
        raise WorkspaceError(f"{path}: rewriting its labels went wrong; nothing was written, run `feedback taxonomy "
                             "log` to retry (the store's log is right)")
    fresh = path.with_name(f".{path.name}.{os.getpid()}")
    fresh.write_text(text, encoding="utf-8")
    os.replace(fresh, path)
    reloaded = Workspace(ws.root)
    ws.config, ws.taxonomy = reloaded.config, reloaded.taxonomy


def _label_blocks(lines: list[str]) -> list[tuple[int, int]]:
    """The (first, past-last) line of each [[taxonomy.labels]] table, without the blank lines and comments after it."""
    blocks = []
    for i, line in enumerate(lines):
        if _HEADER.match(line):
            end = next((j for j in range(i + 1, len(lines)) if _TABLE.match(lines[j])), len(lines))
            while end > i + 1 and (not lines[end - 1].strip() or lines[end - 1].lstrip().startswith("#")):
                end -= 1
            blocks.append((i, end))
    return blocks


def _render(entry: dict) -> str:
    lines = ["[[taxonomy.labels]]"] + [f"{k} = {_value(entry[k])}" for k in _KEYS if entry.get(k)]
    return "\n".join(lines) + "\n"


def _value(value) -> str:
    return "[" + ", ".join(map(toml_string, value)) + "]" if isinstance(value, list) else toml_string(value)


def _set_applied(text: str, applied: int) -> str:
    """`changes_applied = N` in [taxonomy], replaced where it is, else right after the `mode` line."""
    line = f"changes_applied = {applied}"
    text, n = re.subn(r"^changes_applied\s*=.*$", line, text, count=1, flags=re.M)
    if n:
        return text
    text, n = re.subn(r"^(\[taxonomy\]\s*\n(?:(?!\[).*\n)*?mode\s*=.*\n)", lambda m: m.group(1) + line + "\n", text,
                      count=1, flags=re.M)
    if not n:
        raise WorkspaceError("feedback.toml has no `mode = ...` line in [taxonomy]; add `mode = \"fixed\"` there")
    return text


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
