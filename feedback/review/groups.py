"""Near-duplicate groups of the store's items, and "more like this" for one item.

The grouping itself is `similar` (rapidfuzz with blocking); this module feeds
it the items' texts in one short read and adds what a reviewer sorts groups by: size,
disputed items, and the labels the members carry now. A reviewer who finds that a group (or a
pair) is not a set of duplicates marks it so (`mark_distinct`, an appended event that
`undo_distinct` takes back); grouping here and in releases then keeps those items apart.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter
from datetime import datetime, timezone

import pyarrow as pa

from ..errors import FeedbackError, NotFound
from ..progress import Progress, Steps
from ..roles import Actor
from ..workspace import Workspace
from . import similar
from .state import sync_items

_ITEMS = ("SELECT i.item_id, i.text, i.pred_label, r.current_label, coalesce(r.status, 'new') AS status "
          "FROM items i LEFT JOIN reviews r USING (item_id) WHERE i.text IS NOT NULL "
          "AND (? OR len(i.reasons) > 0) ORDER BY i.last_ts DESC LIMIT ?")


def near_duplicate_groups(ws: Workspace, *, threshold: float = 90.0, min_size: int = 2, queued_only: bool = True,
                          max_items: int = 100_000, progress: Progress | None = None) -> list[dict]:
    """Groups of near-duplicate items, largest and most disputed first.

        for g in feedback.review.near_duplicate_groups(ws, threshold=90)[:5]:
            print(g["size"], g["labels"], g["text"])
    """
    with Steps(progress, 2, "reading the items") as job:
        with ws.store().atomic(shared=True) as tx:  # only reads, once `items` is up to date
            sync_items(tx, ws)
            rows = tx.rows(_ITEMS, [not queued_only, max_items])
            marks = distinct_sets(tx, [r["item_id"] for r in rows])
        job.advance(stage=f"comparing {len(rows):,} texts")
        members = similar.group([r["text"] for r in rows], threshold=threshold, min_size=min_size,
                                apart=positions(marks, [r["item_id"] for r in rows]))
    result = []
    for indices in members:
        items = sorted((rows[i] for i in indices), key=lambda r: r["item_id"])
        ids = [r["item_id"] for r in items]
        result.append({
            "group_id": "g-" + hashlib.blake2b("\n".join(ids).encode(), digest_size=6).hexdigest(),
            "item_ids": ids,
            "size": len(ids),
            "disputed": sum(r["status"] == "disputed" for r in items),
            "unlabeled": sum(r["current_label"] is None for r in items),
            "labels": dict(Counter(r["current_label"] for r in items if r["current_label"])),
            "predicted": dict(Counter(r["pred_label"] for r in items if r["pred_label"])),
            "text": items[0]["text"],
        })
    result.sort(key=lambda g: (-g["size"], -g["disputed"], g["group_id"]))
    return result


def mark_distinct(ws: Workspace, actor: Actor, item_ids: list[str]) -> str:
    """Mark items (a group, or a pair) "not duplicates of each other"; grouping and the release gates respect it.
    Returns the mark's id, which `undo_distinct` takes back."""
    actor.require(ws, "decide")
    ids = sorted(set(item_ids))
    if len(ids) < 2:
        raise FeedbackError("mark at least two items as not duplicates of each other")
    mark_id = "apart-" + uuid.uuid4().hex[:12]
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    with ws.store().atomic() as tx:
        known = tx.value("SELECT count(*) FROM items WHERE item_id IN (SELECT unnest(?::VARCHAR[]))", [ids])
        if known != len(ids):
            raise NotFound(f"{len(ids) - known} of the {len(ids)} items are not in the store")
        tx.insert("distinct_marks", pa.table({
            "mark_id": [mark_id] * len(ids), "item_id": ids, "marked_by": [actor.name] * len(ids),
            "marked_at": pa.array([now] * len(ids), pa.timestamp("us"))}))
    return mark_id


def undo_distinct(ws: Workspace, actor: Actor, mark_id: str) -> None:
    """Take back a "not duplicates" mark (appends an undo; the mark stays in the log)."""
    actor.require(ws, "decide")
    with ws.store().atomic() as tx:
        if not tx.value("SELECT count(*) FROM distinct_marks WHERE mark_id = ?", [mark_id]):
            raise NotFound(f"no mark {mark_id!r}; see the groups page or `feedback groups`")
        if tx.value("SELECT count(*) FROM distinct_mark_undos WHERE mark_id = ?", [mark_id]):
            raise FeedbackError(f"{mark_id} is undone already")
        tx.execute("INSERT INTO distinct_mark_undos VALUES (?, ?, now()::TIMESTAMP)", [mark_id, actor.name])


def distinct_sets(tx, item_ids: list[str] | None = None) -> list[list[str]]:
    """The live "not duplicates" marks (among these items, or all), each as its items, in an open connection."""
    rows = tx.rows(
        "SELECT mark_id, array_agg(item_id ORDER BY item_id) AS items FROM distinct_marks "
        "WHERE (?::VARCHAR[] IS NULL OR item_id IN (SELECT unnest(?::VARCHAR[]))) "
        "AND mark_id NOT IN (SELECT mark_id FROM distinct_mark_undos) "
        "GROUP BY mark_id HAVING count(*) >= 2 ORDER BY mark_id", [item_ids, item_ids])
    return [r["items"] for r in rows]


def positions(sets: list[list[str]], ids: list[str]) -> list[list[int]]:
    """Sets of item ids as sets of positions in `ids`."""
    where = {item_id: n for n, item_id in enumerate(ids)}
    return [[where[i] for i in members if i in where] for members in sets]


def more_like_this(ws: Workspace, item_id: str, *, limit: int = 10, threshold: float = 70.0,
                   max_items: int = 100_000) -> list[dict]:
    """The items whose text is closest to this item's, best first, with their similarity score."""
    with ws.store().connect() as tx:
        text = tx.value("SELECT text FROM items WHERE item_id = ?", [item_id])
        if text is None:
            raise NotFound(f"item {item_id!r} has no text in the store")
        return similar_items(tx, item_id, text, limit=limit, threshold=threshold, max_items=max_items,
                             pool_key=str(ws.root))


def similar_items(tx, item_id: str, text: str, *, limit: int = 10, threshold: float = 70.0,
                  max_items: int = 100_000, pool_key: str | None = None) -> list[dict]:
    """`more_like_this` inside an open connection, for a known text.

    With `pool_key` (the workspace's root, say), the newest `max_items` texts, normalised, are kept in
    this process between calls and read again only when the items change (their count, texts or latest
    time): the Review page asks this on every keypress, and reading and normalising the texts was most
    of its cost.
    """
    ids, texts = _text_pool(tx, max_items, pool_key)
    found = similar.closest(text, texts, limit=limit + 1, threshold=threshold)  # + 1: the item itself
    hits = [(ids[i], score) for i, score in found if ids[i] != item_id][:limit]
    if not hits:
        return []
    details = {r["item_id"]: r for r in tx.rows(_DETAILS, [[i for i, _ in hits]])}
    return [{**details[i], "score": score} for i, score in hits if i in details]


_DETAILS = ("SELECT i.item_id, i.text, i.pred_label, r.current_label, coalesce(r.status, 'new') AS status "
            "FROM items i LEFT JOIN reviews r USING (item_id) WHERE i.item_id IN (SELECT unnest(?::VARCHAR[]))")
_POOLS: dict[tuple, tuple] = {}  # (pool_key, max_items) -> (version, item ids, normalised texts)
_POOLS_KEPT = 4


def _text_pool(tx, max_items: int, key: str | None) -> tuple[list[str], list[str]]:
    """The ids and normalised texts of the newest `max_items` items with a text, from the cache when kept."""
    version = None
    if key is not None:
        version = tuple(tx.rows("SELECT count(*) AS n, count(text) AS texts, max(last_ts) AS last FROM items")[0]
                        .values())
        kept = _POOLS.get((key, max_items))
        if kept and kept[0] == version:
            return kept[1], kept[2]
    table = tx.arrow("SELECT item_id, text FROM items WHERE text IS NOT NULL ORDER BY last_ts DESC LIMIT ?",
                     [max_items])
    ids = table.column("item_id").to_pylist()
    texts = [similar.normalise(t) for t in table.column("text").to_pylist()]
    if key is not None:
        _POOLS[(key, max_items)] = (version, ids, texts)
        while len(_POOLS) > _POOLS_KEPT:
            _POOLS.pop(next(iter(_POOLS)))
    return ids, texts
