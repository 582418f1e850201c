"""Derived state, kept in two tables maintained beside the logs they come from.

`items`: one row per item, from its production events and queue reasons, with its priority:
kept by `capture.items` (ingest refreshes it as it stores events; the priority rule is there).

`reviews`: one row per item that reviewers touched, derived from its decisions,
claims and gold answer by `derive_review` (the documented rules below), rewritten in
the same transaction as the decision or claim that changes it.

Current label rule (`derive_review`), after dropping undone decisions:
1. the latest adjudication decides the label (status `labeled`);
2. otherwise, for an item that needs overlap (gold items and a configured share),
   each reviewer's latest decision counts once: `review.overlap` agreeing labels make
   it `labeled`; two differing labels, or any `unsure`, make it `disputed`; fewer
   decisions leave it `new` for the reviewers who have not seen it yet;
3. otherwise the latest decision wins: a label makes it `labeled`, `junk` makes it
   `junk`, `skip` makes it `skipped` (back in the queue for others), `unsure` makes
   it `disputed` (to a lead).
4. an imported label (`import`, from a team's existing labeled data) stands while rules 1-3
   leave the item `new` or `skipped`: the first reviewer who labels it, junks it or is unsure
   of it decides again. Imports are not reviewers: they count in no overlap or agreement.
A user's correction is a signal for review, never a current label.
"""

from __future__ import annotations

import hashlib

import pyarrow as pa

from ..capture.items import ITEM_DEFAULTS, refresh_items, sync_items
from ..workspace import Workspace

__all__ = ["derive_review", "lock_items", "needs_overlap", "refresh_items", "review_config", "sync_items",
           "write_reviews"]

REVIEW_DEFAULTS = {"overlap": 2, "overlap_share": 0.0, "lease_seconds": 600, **ITEM_DEFAULTS}


def review_config(ws: Workspace) -> dict:
    return {**REVIEW_DEFAULTS, **ws.config.get("review", {})}


def needs_overlap(ws: Workspace, item_id: str, *, gold: bool) -> bool:
    """Gold items, and a stable pseudo-random share of the others, get several independent decisions."""
    share = review_config(ws)["overlap_share"]
    if gold:
        return True
    bucket = int.from_bytes(hashlib.blake2b(item_id.encode(), digest_size=8).digest(), "big") / 2**64
    return bucket < share


def derive_review(decisions: list[dict], *, overlap: int | None) -> dict:
    """Status and current label of one item from its decisions (oldest first); see the module rules."""
    undone = {d["undoes"] for d in decisions if d["kind"] == "undo"}
    everything = [d for d in decisions if d["kind"] != "undo" and d["decision_id"] not in undone]
    imported = [d for d in everything if d["kind"] == "import"]
    live = [d for d in everything if d["kind"] != "import"]
    state = {"status": "new", "current_label": None, "label_decision_id": None, "label_reviewer": None,
             "reviewers": sorted({d["reviewer"] for d in live if d["kind"] != "adjudicate"}),
             "last_decision_id": decisions[-1]["decision_id"] if decisions else None,
             "last_decided_at": decisions[-1]["decided_at"] if decisions else None}
    adjudications = [d for d in live if d["kind"] == "adjudicate"]
    if adjudications:
        return {**state, **_labeled(adjudications[-1])}
    reviewed = _reviewed(state, live, overlap)
    if imported and reviewed["status"] in ("new", "skipped"):  # an imported label stands until a reviewer decides
        return {**reviewed, **_labeled(imported[-1])}
    return reviewed


def _reviewed(state: dict, live: list[dict], overlap: int | None) -> dict:
    """The state that reviewers' own decisions give (rules 2 and 3)."""
    if not live:
        return state
    if overlap:
        latest = {d["reviewer"]: d for d in live}
        votes = [d for d in latest.values() if d["kind"] in ("label", "unsure")]
        labels = {d["label"] for d in votes if d["kind"] == "label"}
        if any(d["kind"] == "unsure" for d in votes) or len(labels) > 1:
            return {**state, "status": "disputed"}
        if len(votes) >= overlap:
            return {**state, **_labeled(votes[-1])}
        return state
    last = live[-1]
    if last["kind"] == "label":
        return {**state, **_labeled(last)}
    return {**state, "status": {"junk": "junk", "skip": "skipped", "unsure": "disputed"}[last["kind"]]}


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


def write_reviews(tx, ws: Workspace, item_ids: list[str]) -> None:
    """Recompute and rewrite the `reviews` rows of these items from their decisions and claims."""
    lock_items(tx, item_ids)
    decisions = tx.rows(
        "SELECT * FROM decisions WHERE item_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY decided_at, decision_id", [item_ids])
    claims = {r["item_id"]: r for r in tx.rows(
        "SELECT item_id, arg_max(reviewer, claimed_at) AS reviewer, max(claimed_at) AS claimed_at, "
        "arg_max(expires_at, claimed_at) AS expires "
        "FROM claims WHERE item_id IN (SELECT unnest(?::VARCHAR[])) GROUP BY item_id", [item_ids])}
    gold = {r["item_id"] for r in tx.rows(
        "SELECT DISTINCT item_id FROM gold WHERE item_id IN (SELECT unnest(?::VARCHAR[]))", [item_ids])}
    overlap = review_config(ws)["overlap"]
    by_item: dict[str, list[dict]] = {i: [] for i in item_ids}
    for d in decisions:
        by_item[d["item_id"]].append(d)
    rows = []
    for item_id, item_decisions in by_item.items():
        state = derive_review(item_decisions, overlap=overlap if needs_overlap(ws, item_id, gold=item_id in gold) else None)
        claim = claims.get(item_id)
        released = claim and any(d["reviewer"] == claim["reviewer"] and d["decided_at"] >= claim["claimed_at"] for d in item_decisions)
        active = claim if claim and not released else None
        rows.append({"item_id": item_id, **state, "claimed_by": active and active["reviewer"],
                     "claim_expires": active and active["expires"]})
    tx.execute("DELETE FROM reviews WHERE item_id IN (SELECT unnest(?::VARCHAR[]))", [item_ids])
    tx.insert("reviews", pa.Table.from_pylist(rows, schema=_REVIEW_SCHEMA))


_REVIEW_SCHEMA = pa.schema([
    ("item_id", pa.string()), ("status", pa.string()), ("current_label", pa.string()),
    ("label_decision_id", pa.string()), ("label_reviewer", pa.string()), ("reviewers", pa.list_(pa.string())),
    ("last_decision_id", pa.string()), ("last_decided_at", pa.timestamp("us")), ("claimed_by", pa.string()),
    ("claim_expires", pa.timestamp("us")),
])
