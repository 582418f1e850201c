"""Near-duplicate groups of the store's items, and "more like this" for one item.

The grouping itself is `similar` (rapidfuzz with blocking); this module feeds
it the items' texts in one short read and adds what a reviewer sorts groups by: size,
disputed items, and the labels the members carry now.
"""

from __future__ import annotations

import hashlib
from collections import Counter

from ..errors import NotFound
from ..workspace import Workspace
from . import similar
from .state import sync_items

_ITEMS = ("SELECT i.item_id, i.text, i.pred_label, r.current_label, coalesce(r.status, 'new') AS status "
          "FROM items i LEFT JOIN reviews r USING (item_id) WHERE i.text IS NOT NULL "
          "AND (? OR len(i.reasons) > 0) ORDER BY i.last_ts DESC LIMIT ?")


def near_duplicate_groups(ws: Workspace, *, threshold: float = 90.0, min_size: int = 2, queued_only: bool = True,
                          max_items: int = 100_000) -> list[dict]:
    """Groups of near-duplicate items, largest and most disputed first."""
    with ws.store().atomic() as tx:
        sync_items(tx, ws)
        rows = tx.rows(_ITEMS, [not queued_only, max_items])
    members = similar.group([r["text"] for r in rows], threshold=threshold, min_size=min_size)
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


def more_like_this(ws: Workspace, item_id: str, *, limit: int = 10, threshold: float = 70.0,
                   max_items: int = 100_000) -> list[dict]:
    """The items whose text is closest to this item's, best first, with their similarity score."""
    with ws.store().connect() as tx:
        text = tx.value("SELECT text FROM items WHERE item_id = ?", [item_id])
        if text is None:
            raise NotFound(f"item {item_id!r} has no text in the store")
        return similar_items(tx, item_id, text, limit=limit, threshold=threshold, max_items=max_items)


def similar_items(tx, item_id: str, text: str, *, limit: int = 10, threshold: float = 70.0,
                  max_items: int = 100_000) -> list[dict]:
    """`more_like_this` inside an open connection, for a known text."""
    others = [r for r in tx.rows(_ITEMS, [True, max_items]) if r["item_id"] != item_id]
    hits = similar.more_like_this(text, [r["text"] for r in others], limit=limit, threshold=threshold)
    return [{**others[i], "score": score} for i, score in hits]
