"""Derived state, kept in two tables maintained beside the logs they come from.

`items`: one row per item, from its production events and queue reasons, with its priority:
kept by `capture.items` (ingest refreshes it as it stores events; the priority rule is there).

`reviews`: one row per item that reviewers touched, derived from its decisions,
claims and gold answer by `derive_review` (the documented rules below), rewritten in
the same transaction as the decision or claim that changes it.

The current label rule (`derive_review`). Undone decisions are dropped, and every label (of
decisions, imports and the gold answer) is read through the taxonomy's changes (`renames`:
a renamed or merged label reads as its new name; a split or removed one as no label). Then:
1. authority: the latest adjudication, or the gold answer (with `review.gold_labels`, on by
   default), whichever is later, decides the label. Only a lead changes it (`decisions` refuses
   other decisions on an adjudicated item). Reviewers' decisions on a gold item still count
   as answers scored against it; it waits (`new`) until `review.overlap` of them are in.
2. overlap items (gold items and a stable share `review.overlap_share` of the others): each
   reviewer's latest label, junk or unsure counts once. `review.overlap` agreeing ones decide
   it; two differing ones, or an `unsure`, make it `disputed` (to a lead). Fewer than that
   make it `second_review`: queued with that reason for the reviewers who have not seen it,
   keeping its imported label meanwhile (releases ship it and a gate counts them) unless every
   answer so far agrees with the import, which they confirm.
3. other items, decisions in order: the first label or junk decides; a later one by the same
   reviewer, or by a lead over a reviewer, replaces it; one that agrees confirms it; one that
   differs from another person's (a reviewer's over a lead's or another reviewer's) makes it
   `disputed` (to a lead). `unsure` makes it `disputed`; a label or junk after an `unsure`
   (or by a lead) settles it. `skip` passes: an undecided item is `skipped` (back in the queue
   for others), a decided one keeps its state.
4. an imported label (`import`, from a team's existing labeled data) stands while rules 1-3
   leave the item `new` or `skipped`. Imports are not reviewers: no overlap or agreement counts them.
A user's correction is a signal for review, never a current label. An item ships in a release
exactly when it has a current label.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from functools import cache

from ..capture.items import ITEM_DEFAULTS, refresh_items, settle_priority, sync_items
from ..store.embedded import insert_rows
from ..workspace import Workspace
from .renames import label_map

__all__ = ["derive_review", "lock_items", "needs_overlap", "refresh_items", "review_config", "sync_items",
           "write_reviews"]

REVIEW_DEFAULTS = {"overlap": 2, "overlap_share": 0.0, "lease_seconds": 600, "gold_labels": True, **ITEM_DEFAULTS}
LEAD_ROLES = ("lead", "admin")


def review_config(ws: Workspace) -> dict:
    return {**REVIEW_DEFAULTS, **ws.config.get("review", {})}


def needs_overlap(ws: Workspace, item_id: str, *, gold: bool) -> bool:
    """Gold items, and a stable pseudo-random share of the others, get several independent decisions."""
    share = review_config(ws)["overlap_share"]
    if gold:
        return True
    bucket = int.from_bytes(hashlib.blake2b(item_id.encode(), digest_size=8).digest(), "big") / 2**64
    return bucket < share


def derive_review(decisions: list[dict], *, overlap: int | None, gold: dict | None = None,
                  renames: dict[str, str | None] | None = None) -> dict:
    """Status and current label of one item from its decisions (oldest first), its gold answer
    ({label, set_by, set_at}, or None) and the taxonomy's renames; see the module rules."""
    undone = {d["undoes"] for d in decisions if d["kind"] == "undo"}
    everything = [_renamed(d, renames) for d in decisions if d["kind"] != "undo" and d["decision_id"] not in undone]
    everything = [d for d in everything if d["label"] is not None or d["kind"] in ("skip", "junk", "unsure")]
    imported = [d for d in everything if d["kind"] == "import"]
    live = [d for d in everything if d["kind"] != "import"]
    state = {"status": "new", "current_label": None, "label_decision_id": None, "label_reviewer": None,
             "reviewers": sorted({d["reviewer"] for d in live if d["kind"] != "adjudicate"}),
             "last_decision_id": decisions[-1]["decision_id"] if decisions else None,
             "last_decided_at": decisions[-1]["decided_at"] if decisions else None}
    authority = [d for d in live if d["kind"] == "adjudicate"]
    gold = gold and _renamed({"kind": "gold", "decision_id": None, "label": gold["label"], "reviewer": gold["set_by"],
                              "decided_at": gold["set_at"]}, renames)
    if gold and gold["label"] is not None and (not authority or _later(gold, authority[-1])):
        votes = _votes(live)
        return {**state, **_labeled(gold), "status": "labeled" if len(votes) >= (overlap or 1) else "new"}
    if authority:
        return {**state, **_labeled(authority[-1])}
    reviewed = _overlapped(state, live, overlap, imported[-1] if imported else None) if overlap else _sequence(state, live)
    if imported and reviewed["status"] in ("new", "skipped"):  # an imported label stands until a reviewer decides
        return {**reviewed, **_labeled(imported[-1])}
    return reviewed


def _renamed(decision: dict, renames: dict | None) -> dict:
    if not renames or decision["label"] not in renames:
        return decision
    return {**decision, "label": renames[decision["label"]]}


def _later(a: dict, b: dict) -> bool:
    return a["decided_at"] is not None and (b["decided_at"] is None or a["decided_at"] > b["decided_at"])


def _votes(live: list[dict]) -> list[dict]:
    """Each reviewer's latest label, junk or unsure (their skips pass)."""
    latest = {d["reviewer"]: d for d in live if d["kind"] in ("label", "junk", "unsure")}
    return sorted(latest.values(), key=lambda d: (d["decided_at"], d["decision_id"]))


def _overlapped(state: dict, live: list[dict], overlap: int, imported: dict | None) -> dict:
    """Rule 2: independent answers, counted once per reviewer."""
    votes = _votes(live)
    answers = {(d["kind"], d["label"]) for d in votes}
    if not votes:
        return {**state, "status": "skipped"} if live else state
    if any(d["kind"] == "unsure" for d in votes) or len(answers) > 1:
        return {**state, "status": "disputed"}
    if len(votes) >= overlap:
        return {**state, **_outcome(votes[-1])}
    if imported and answers == {("label", imported["label"])}:
        return {**state, **_labeled(imported)}
    if imported:
        return {**state, **_labeled(imported), "status": "second_review"}
    return {**state, "status": "second_review"}


def _sequence(state: dict, live: list[dict]) -> dict:
    """Rule 3: decisions in order, where a human's label or junk stands until its author or a lead changes it."""
    holder, disputed, skipped = None, False, False
    for d in live:
        if d["kind"] == "skip":
            skipped = True
        elif d["kind"] == "unsure":
            disputed = True
        elif holder is None or holder["reviewer"] == d["reviewer"] or _outranks(d, holder):
            holder, disputed = d, False
        elif (d["kind"], d["label"]) != (holder["kind"], holder["label"]):
            disputed = True
    if disputed:
        return {**state, "status": "disputed"}
    if holder is not None:
        return {**state, **_outcome(holder)}
    return {**state, "status": "skipped"} if skipped else state


def _outranks(decision: dict, holder: dict) -> bool:
    return decision.get("role") in LEAD_ROLES and holder.get("role") not in LEAD_ROLES


def _outcome(decision: dict) -> dict:
    if decision["kind"] == "junk":
        return {"status": "junk"}
    return _labeled(decision)


def _labeled(decision: dict) -> dict:
    return {"status": "labeled", "current_label": decision["label"], "label_decision_id": decision["decision_id"],
            "label_reviewer": decision["reviewer"]}


def lock_items(tx, item_ids: list[str]) -> None:
    """Take these items' row locks until the transaction ends: one writer of an item's review state at a time.

    Reviewers' transactions run side by side on PostgreSQL (on the file, every transaction is alone); what the
    holder reads after this is what the last writer committed.
    """
    if tx.dialect == "postgres":
        tx.execute("SELECT item_id FROM items WHERE item_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY item_id "
                   "FOR UPDATE", [sorted(set(item_ids))])


def write_reviews(tx, ws: Workspace, item_ids: list[str]) -> list[dict]:
    """Recompute and rewrite the `reviews` rows of these items from their decisions, claims and gold answers;
    queue the items that now wait for a second review, and refresh the priority of those decided or reopened.
    Returns the rows written."""
    lock_items(tx, item_ids)
    within = "WHERE item_id IN (SELECT unnest(?::VARCHAR[]))"
    decisions = tx.rows(f"SELECT * FROM decisions {within} ORDER BY decided_at, decision_id", [item_ids])
    claims = {r["item_id"]: r for r in tx.rows(
        "SELECT item_id, arg_max(reviewer, claimed_at) AS reviewer, max(claimed_at) AS claimed_at, "
        f"arg_max(expires_at, claimed_at) AS expires FROM claims {within} GROUP BY item_id", [item_ids])}
    gold = {r["item_id"]: r for r in tx.rows(
        "SELECT item_id, arg_max(label, set_at) AS label, arg_max(set_by, set_at) AS set_by, max(set_at) AS set_at "
        f"FROM gold {within} GROUP BY item_id", [item_ids])}
    config, renames = review_config(ws), label_map(tx)
    by_item: dict[str, list[dict]] = {i: [] for i in item_ids}
    for d in decisions:
        by_item[d["item_id"]].append(d)
    rows = []
    for item_id, item_decisions in by_item.items():
        overlap = config["overlap"] if needs_overlap(ws, item_id, gold=item_id in gold) else None
        state = derive_review(item_decisions, overlap=overlap, gold=gold.get(item_id) if config["gold_labels"] else None,
                              renames=renames)
        claim = claims.get(item_id)
        released = claim and any(d["reviewer"] == claim["reviewer"] and d["decided_at"] >= claim["claimed_at"] for d in item_decisions)
        active = claim if claim and not released else None
        rows.append({"item_id": item_id, **state, "claimed_by": active and active["reviewer"],
                     "claim_expires": active and active["expires"]})
    before = {r["item_id"]: (r["status"], r["last_decided_at"]) for r in tx.rows(
        f"DELETE FROM reviews {within} RETURNING item_id, status, last_decided_at", [item_ids])}
    insert_rows(tx, "reviews", rows, _review_schema)
    waiting = [r["item_id"] for r in rows if r["status"] == "second_review"
               and before.get(r["item_id"], ("new",))[0] != "second_review"]
    if waiting:
        _queue_second_reviews(tx, waiting)
    changed = [r for r in rows if before.get(r["item_id"], ("new", None)) != (r["status"], r["last_decided_at"])]
    rebuilt = [r["item_id"] for r in changed if r["item_id"] in waiting or r["status"] in ("new", "skipped")]
    if rebuilt:  # a new reason, or undecided again: every reason counts
        refresh_items(tx, ws, rebuilt)
    settled = [r["item_id"] for r in changed if r["item_id"] not in rebuilt]
    if settled:
        settle_priority(tx, ws, settled)
    return rows


def _queue_second_reviews(tx, item_ids: list[str]) -> None:
    """Log the `second_review` reason for items whose answers so far do not yet decide them."""
    append_reasons(tx, item_ids, reason="second_review", scores=[1.0] * len(item_ids), actor="review-rule",
                   details=[None] * len(item_ids))


def append_reasons(tx, item_ids: list[str], *, reason: str, scores, actor: str, details) -> None:
    """Append one row per item to `queue_reasons`: the reason, its score, who queued it and its detail (or None)."""
    now = datetime.now(UTC).replace(tzinfo=None)
    insert_rows(tx, "queue_reasons", [
        {"item_id": item_id, "reason": reason, "score": float(score), "queued_at": now, "actor": actor,
         "detail": json.dumps(detail) if detail else None}
        for item_id, score, detail in zip(item_ids, scores, details, strict=True)], _reason_schema)


@cache
def _review_schema():
    import pyarrow as pa

    return pa.schema([
        ("item_id", pa.string()), ("status", pa.string()), ("current_label", pa.string()),
        ("label_decision_id", pa.string()), ("label_reviewer", pa.string()), ("reviewers", pa.list_(pa.string())),
        ("last_decision_id", pa.string()), ("last_decided_at", pa.timestamp("us")), ("claimed_by", pa.string()),
        ("claim_expires", pa.timestamp("us")),
    ])


@cache
def _reason_schema():
    import pyarrow as pa

    return pa.schema([("item_id", pa.string()), ("reason", pa.string()), ("score", pa.float64()),
                      ("queued_at", pa.timestamp("us")), ("actor", pa.string()), ("detail", pa.string())])
