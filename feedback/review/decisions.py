"""Label decisions: appended events with provenance; undo, adjudication, gold, group relabel, history.

A decision is `label` (with a label of the taxonomy), `skip`, `junk` or `unsure`, by a
reviewer, at a time, with an optional note and the decision the reviewer last saw
(`based_on`). Undo appends an `undo` decision naming the one it cancels; nothing is
deleted. The item's current label follows the rule in `state`.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from functools import cache
from typing import Iterable

from ..errors import FeedbackError, NotFound
from ..progress import Progress, Steps
from ..roles import Actor
from ..store.embedded import insert_rows, ready_for
from ..workspace import Workspace
from .choices import DECISION_KINDS
from .state import lock_items, needs_overlap, sync_items, write_reviews


class StaleDecision(FeedbackError):
    """Someone decided the item after the acting reviewer loaded it."""


class ClaimHeld(FeedbackError):
    """Another reviewer holds the item."""


@cache
def decision_schema():
    """The Arrow schema of `decisions` rows (pyarrow loads only where a batch of them is built)."""
    import pyarrow as pa

    return pa.schema([
        ("decision_id", pa.string()), ("item_id", pa.string()), ("kind", pa.string()), ("label", pa.string()),
        ("reviewer", pa.string()), ("role", pa.string()), ("decided_at", pa.timestamp("us")), ("note", pa.string()),
        ("based_on", pa.string()), ("batch_id", pa.string()), ("undoes", pa.string()),
    ])


def decide(ws: Workspace, actor: Actor, item_id: str, label: str, *, note: str | None = None,
           based_on: str | None = None, check_stale: bool = False, override_claim: str | None = None) -> dict:
    """Record one decision: a taxonomy label, or 'skip', 'junk', 'unsure'. Returns the decision, with the
    item's `status` and `current_label` after it (the rule in `state` says how a decision counts).

    With `check_stale`, `based_on` is the item's last decision id the reviewer saw
    (None for none); a different one now means someone decided meanwhile: refused. A decision on an
    adjudicated item, or on one another reviewer holds, is refused; a lead may take over a held item
    by giving the reason in `override_claim`, which the decision's note records.
    """
    with ws.store().atomic(shared=True) as tx:
        actor.require(ws, "decide")  # in the unit of work: the role's read joins its opening of the store
        kind, label = _kind_and_label(ws, label)
        current = _review_row(tx, ws, item_id)
        if check_stale and current["last_decision_id"] != based_on and not _independent(ws, tx, item_id):
            raise StaleDecision(
                f"item {item_id!r} was decided by {current['last_reviewer']} after you loaded it "
                f"(now: {current['current_label'] or current['status']}); reload it before deciding"
            )
        note = _open_to(ws, actor, current, note=note, override_claim=override_claim)
        rows = [_decision(item_id, kind, label, actor, note=note, based_on=based_on)]
        (after,) = _append(tx, ws, rows)
    return {**rows[0], "status": after["status"], "current_label": after["current_label"]}


def decide_many(ws: Workspace, actor: Actor, rows: Iterable[tuple[int, dict]], *, chunk: int = 5_000,
                progress: Progress | None = None) -> dict:
    """Record many decisions at once, one transaction per chunk, each row checked as `decide` checks it.

    `rows` are (row number, {"item_id", "label", "note"?, "expect"?}), where `expect` is the decision id
    the row was based on ("" or "none" for an undecided item) and makes a stale row an error.
    Returns {"decided": n, "waiting": w, "errors": [{"row", "item_id", "message"}]}: `waiting` counts the
    decided items the rule left disputed or waiting for a second review; a bad row costs only itself.

        feedback.review.decide_many(ws, me, enumerate([{"item_id": "req-1", "label": "refund"}], start=1))
    """
    actor.require(ws, "decide")
    rows = list(rows)
    decided, waiting, errors = 0, 0, []
    with Steps(progress, len(rows), "rows decided") as job:
        for start in range(0, len(rows), chunk):
            batch = rows[start:start + chunk]
            done, left = _decide_chunk(ws, actor, batch, errors)
            decided, waiting = decided + done, waiting + left
            job.advance(len(batch))
    return {"decided": decided, "waiting": waiting, "errors": errors}


def _decide_chunk(ws: Workspace, actor: Actor, batch: list[tuple[int, dict]], errors: list[dict]) -> tuple[int, int]:
    """Decide one chunk in one transaction; return how many rows were decided and how many of their items wait."""
    planned = []
    for number, row in batch:
        item_id = row.get("item_id")
        try:
            if not isinstance(item_id, str) or not item_id:
                raise FeedbackError("needs an item_id")
            kind, label = _kind_and_label(ws, row.get("label") or "")
        except FeedbackError as exc:
            errors.append({"row": number, "item_id": item_id, "message": str(exc)})
            continue
        planned.append((number, row, _decision(item_id, kind, label, actor, note=row.get("note") or None,
                                               based_on=_expected(row))))
    ready_for(len(planned))
    with ws.store().atomic() as tx:
        sync_items(tx, ws)
        ids = [d["item_id"] for _, _, d in planned]
        current = {r["item_id"]: r for r in tx.rows(f"SELECT {_REVIEW_COLUMNS} FROM {_REVIEW_FROM} "
                                                     "WHERE i.item_id IN (SELECT unnest(?::VARCHAR[]))", [ids])}
        rows = []
        for number, row, decision in planned:
            item_id = decision["item_id"]
            try:
                if item_id not in current:
                    raise NotFound(f"item {item_id!r} is not in the store")
                if "expect" in row and current[item_id]["last_decision_id"] != decision["based_on"]:
                    raise StaleDecision(f"item {item_id!r} was decided after you read it (now "
                                        f"{current[item_id]['last_decision_id']}); read it again before deciding")
                _open_to(ws, actor, current[item_id])
            except FeedbackError as exc:
                errors.append({"row": number, "item_id": item_id, "message": str(exc)})
                continue
            rows.append(decision)
        if not rows:
            return 0, 0
        written = _append(tx, ws, rows)
    return len(rows), sum(r["status"] in ("disputed", "second_review") for r in written)


def _expected(row: dict) -> str | None:
    expect = row.get("expect")
    return None if expect in (None, "", "none") else expect


def adjudicate(ws: Workspace, actor: Actor, item_id: str, label: str, *, note: str | None = None) -> dict:
    """A lead settles a disputed item (or overrides any decision) with a final label."""
    actor.require(ws, "adjudicate")
    label = _real_label(ws, label, "an adjudication")
    with ws.store().atomic() as tx:
        _review_row(tx, ws, item_id)
        rows = [_decision(item_id, "adjudicate", label, actor, note=note)]
        _append(tx, ws, rows)
    return rows[0]


def undo(ws: Workspace, actor: Actor, decision_id: str) -> dict:
    """Cancel a decision by appending an undo. Reviewers undo their own; leads anyone's."""
    with ws.store().atomic(shared=True) as tx:
        rows = tx.rows("SELECT * FROM decisions WHERE decision_id = ?", [decision_id])
        if not rows:
            raise NotFound(f"decision {decision_id!r} does not exist; see `feedback history ITEM`")
        target = rows[0]
        lock_items(tx, [target["item_id"]])  # before the check: two undos of one decision, one refused
        _check_undo(tx, ws, actor, [target])
        undo_row = [_decision(target["item_id"], "undo", None, actor, undoes=decision_id)]
        _append(tx, ws, undo_row)
    return undo_row[0]


def undo_last(ws: Workspace, actor: Actor) -> dict | None:
    """Undo the acting reviewer's latest decision that is not undone yet (the app's undo key)."""
    decision_id = ws.store().value(
        "SELECT decision_id FROM decisions d WHERE reviewer = ? AND kind <> 'undo' "
        "AND decision_id NOT IN (SELECT undoes FROM decisions WHERE kind = 'undo') ORDER BY decided_at DESC LIMIT 1",
        [actor.name])
    return undo(ws, actor, decision_id) if decision_id else None


def relabel_group(ws: Workspace, actor: Actor, item_ids: list[str], label: str, *, note: str | None = None) -> str:
    """Label many items at once: one decision per item, sharing a batch id, which is returned."""
    actor.require(ws, "decide")
    kind, label = _kind_and_label(ws, label)
    batch_id = "batch-" + uuid.uuid4().hex[:12]
    ready_for(len(item_ids))
    with ws.store().atomic() as tx:
        sync_items(tx, ws)
        current = tx.rows(f"SELECT {_REVIEW_COLUMNS} FROM {_REVIEW_FROM} WHERE i.item_id IN (SELECT unnest(?::VARCHAR[]))",
                          [item_ids])
        if len(current) != len(set(item_ids)):
            raise NotFound(f"{len(set(item_ids)) - len(current)} of the {len(set(item_ids))} items are not in the store")
        refused = []
        for row in current:
            try:
                _open_to(ws, actor, row)
            except FeedbackError as exc:
                refused.append(str(exc))
        if refused:
            raise FeedbackError(f"{len(refused)} of the {len(current)} items cannot take this relabel; leave them out: "
                                + "; ".join(sorted(refused)[:3]))
        rows = [_decision(i, kind, label, actor, note=note, batch_id=batch_id) for i in dict.fromkeys(item_ids)]
        _append(tx, ws, rows)
    return batch_id


def undo_batch(ws: Workspace, actor: Actor, batch_id: str) -> int:
    """Undo every live decision of a batch; return how many."""
    with ws.store().atomic() as tx:
        targets = tx.rows("SELECT * FROM decisions WHERE batch_id = ? AND kind <> 'undo' AND decision_id NOT IN "
                          "(SELECT undoes FROM decisions WHERE kind = 'undo')", [batch_id])
        if not targets:
            raise NotFound(f"batch {batch_id!r} has no decisions left to undo")
        _check_undo(tx, ws, actor, targets)
        _append(tx, ws, [_decision(t["item_id"], "undo", None, actor, undoes=t["decision_id"], batch_id=batch_id)
                         for t in targets])
    return len(targets)


def set_gold(ws: Workspace, actor: Actor, item_id: str, label: str) -> None:
    """Mark an item as a gold item with a known answer (leads)."""
    actor.require(ws, "set_gold")
    label = _real_label(ws, label, "a gold answer")
    with ws.store().atomic() as tx:
        _review_row(tx, ws, item_id)
        tx.execute("INSERT INTO gold VALUES (?, ?, ?, ?)", [item_id, label, actor.name, _now()])
        write_reviews(tx, ws, [item_id])


def preview_group(ws: Workspace, item_ids: list[str]) -> list[dict]:
    """What a group relabel would touch: each item with its text and current and predicted labels."""
    return ws.store().rows(
        "SELECT i.item_id, i.text, i.pred_label, i.corr_label, r.current_label, coalesce(r.status, 'new') AS status "
        "FROM items i LEFT JOIN reviews r USING (item_id) WHERE i.item_id IN (SELECT unnest(?::VARCHAR[])) "
        "ORDER BY i.item_id", [item_ids])


def history(ws: Workspace, item_id: str) -> list[dict]:
    """Everything that happened to an item, oldest first: production events, queue reasons, claims, decisions."""
    with ws.store().connect() as tx:
        rows = item_history(tx, item_id)
    if not rows:
        raise NotFound(f"item {item_id!r} has no history in this store")
    return rows


def item_history(tx, item_id: str) -> list[dict]:
    """`history` inside an open connection (empty for an unknown item)."""
    return tx.rows(
        """
        SELECT ts AS "at", type AS kind, event_id AS id, coalesce(pred_label, corr_label) AS label,
               coalesce(corr_by, CASE WHEN type = 'prediction' THEN model || ' ' || model_version END) AS reviewer,
               coalesce(corr_note, error_kind || ': ' || error_message, input_text) AS note, pred_score AS score,
               NULL AS batch_id, NULL AS undoes, seq
        FROM events WHERE item_id = ?
        UNION ALL
        SELECT queued_at, 'queued:' || reason, NULL, NULL, actor, detail::VARCHAR, score, NULL, NULL, NULL
        FROM queue_reasons WHERE item_id = ?
        UNION ALL
        SELECT claimed_at, 'claim', NULL, NULL, reviewer, NULL, NULL, NULL, NULL, NULL FROM claims WHERE item_id = ?
        UNION ALL
        SELECT set_at, 'gold', NULL, label, set_by, NULL, NULL, NULL, NULL, NULL FROM gold WHERE item_id = ?
        UNION ALL
        SELECT decided_at, 'decision:' || kind, decision_id, label, reviewer, note, NULL, batch_id, undoes, NULL
        FROM decisions WHERE item_id = ?
        UNION ALL
        SELECT coalesce(c.undone_at, c.changed_at), CASE WHEN c.undone_at IS NULL THEN 'taxonomy:' ELSE 'taxonomy:undo ' END
               || c.kind, c.change_id, t.label_after, coalesce(c.undone_by, c.actor),
               coalesce(t.label_before, '') || ' -> ' || coalesce(t.label_after, '(to review)'), NULL, NULL, NULL, NULL
        FROM taxonomy_items t JOIN taxonomy_changes c USING (change_id) WHERE t.item_id = ?
        ORDER BY "at", seq NULLS LAST, kind
        """,
        [item_id] * 6,
    )


def _kind_and_label(ws: Workspace, label: str) -> tuple[str, str | None]:
    if label in DECISION_KINDS:
        return label, None
    if not label:
        raise FeedbackError("a decision needs a label, or one of skip, junk, unsure")
    refusal = ws.taxonomy.refusal(label)
    if refusal:
        raise FeedbackError(refusal)
    return "label", label


def _real_label(ws: Workspace, label: str, what: str) -> str:
    kind, label = _kind_and_label(ws, label)
    if kind != "label":
        raise FeedbackError(f"{what} needs a label of the taxonomy, not {kind}")
    return label


def _review_row(tx, ws: Workspace, item_id: str) -> dict:
    sync_items(tx, ws)
    lock_items(tx, [item_id])
    rows = tx.rows(f"SELECT {_REVIEW_COLUMNS}, (SELECT arg_max(reviewer, decided_at) FROM decisions d "
                   f"WHERE d.item_id = i.item_id) AS last_reviewer FROM {_REVIEW_FROM} WHERE i.item_id = ?", [item_id])
    if not rows:
        raise NotFound(f"item {item_id!r} is not in the store")
    return rows[0]


#: What `_open_to` needs to know of an item, over `_REVIEW_FROM`
_REVIEW_COLUMNS = ("i.item_id, coalesce(r.status, 'new') AS status, r.current_label, r.last_decision_id, "
                   "r.label_reviewer, r.claimed_by, r.claim_expires, l.kind AS label_kind")
_REVIEW_FROM = ("items i LEFT JOIN reviews r USING (item_id) "
                "LEFT JOIN decisions l ON l.decision_id = r.label_decision_id")


def _open_to(ws: Workspace, actor: Actor, current: dict, *, note: str | None = None,
             override_claim: str | None = None) -> str | None:
    """Refuse a decision the rule would ignore or that takes another reviewer's claim; return the note to record
    (with a lead's claim override in it)."""
    item_id = current["item_id"]
    if current["label_kind"] == "adjudicate":
        raise FeedbackError(f"item {item_id!r} was adjudicated by {current['label_reviewer']} as "
                            f"{current['current_label']!r}: only a lead changes it, with `feedback adjudicate` "
                            "or by undoing the adjudication")
    holder = current["claimed_by"]
    if holder in (None, actor.name) or current["claim_expires"] <= _now():
        return note
    if override_claim is None:
        raise ClaimHeld(f"item {item_id!r} is held by {holder} until {current['claim_expires']:%H:%M:%S} UTC; "
                        "take another item (a lead may override with a reason)")
    actor.require(ws, "adjudicate")
    if not override_claim.strip():
        raise FeedbackError(f"say why you take over {holder}'s claim on {item_id!r}: the reason is recorded")
    return f"claim override (held by {holder}): {override_claim.strip()}" + (f"; {note}" if note else "")


def _independent(ws: Workspace, tx, item_id: str) -> bool:
    """Overlap items collect independent decisions, so others deciding meanwhile is expected."""
    gold = tx.value("SELECT count(*) FROM gold WHERE item_id = ?", [item_id]) > 0
    return needs_overlap(ws, item_id, gold=gold)


def _check_undo(tx, ws: Workspace, actor: Actor, targets: list[dict]) -> None:
    actor.require(ws, "undo_others" if {t["reviewer"] for t in targets} - {actor.name} else "decide")
    undone = tx.value("SELECT count(*) FROM decisions WHERE kind = 'undo' AND undoes IN (SELECT unnest(?::VARCHAR[]))",
                      [[t["decision_id"] for t in targets]])
    if undone:
        raise FeedbackError("that decision is already undone")
    if any(t["kind"] == "undo" for t in targets):
        raise FeedbackError("an undo cannot be undone; decide again instead")


def _decision(item_id, kind, label, actor: Actor, *, note=None, based_on=None, batch_id=None, undoes=None) -> dict:
    return {"decision_id": "d-" + uuid.uuid4().hex[:16], "item_id": item_id, "kind": kind, "label": label,
            "reviewer": actor.name, "role": actor.role, "decided_at": _now(), "note": note, "based_on": based_on,
            "batch_id": batch_id, "undoes": undoes}


def _append(tx, ws: Workspace, rows: list[dict]) -> list[dict]:
    """Record decisions and rewrite their items' reviews; return the reviews rows written."""
    insert_rows(tx, "decisions", rows, decision_schema)
    return write_reviews(tx, ws, sorted({r["item_id"] for r in rows}))


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)
