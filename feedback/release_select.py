"""Which examples a release holds, read from the store in one short transaction.

An example is an item with a trusted current label (review status `labeled`). By default
every such item is selected; a `Selection` narrows it by label, source, decision time, a
group-relabel batch or a saved list of item ids, or (`from_parent`) takes the parent
release's examples plus the items decided since the parent was made. Items without text
(purged, or captured with features only) are left out and counted.

Row hash: MD5 (hex) of the row's id, label and text, each as a netstring
(`<UTF-8 byte length>:<value>`), computed in SQL when building and in Python when
verifying (`row_hash`); the two must stay the same formula.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from datetime import datetime

import pyarrow as pa

from .state import sync_items
from .workspace import Workspace

_ROW_HASH_SQL = ("md5(strlen(i.item_id) || ':' || i.item_id || strlen(r.current_label) || ':' || r.current_label "
                 "|| strlen(i.text) || ':' || i.text)")
_EXAMPLES = f"""
WITH picked AS (
    SELECT i.item_id, i.text, i.source, r.current_label, r.label_decision_id, r.label_reviewer, r.reviewers,
           {_ROW_HASH_SQL} AS row_hash
    FROM items i JOIN reviews r USING (item_id)
    WHERE r.status = 'labeled' AND ({{where}})
)
SELECT p.item_id AS id, p.text, p.current_label AS label, p.source, p.row_hash,
       (md5_number(? || p.item_id) >> 64)::DOUBLE / 18446744073709551616.0 AS bucket,
       p.label_decision_id, p.label_reviewer, d.kind AS label_kind, len(p.reviewers) AS reviewers,
       coalesce(e.event_ids, []::VARCHAR[]) AS event_ids
FROM picked p
LEFT JOIN decisions d ON d.decision_id = p.label_decision_id
LEFT JOIN (SELECT item_id, list(event_id ORDER BY seq) AS event_ids FROM events
           WHERE item_id IN (SELECT item_id FROM picked) GROUP BY item_id) e USING (item_id)
ORDER BY id
"""


@dataclass(frozen=True)
class Selection:
    """What goes into a release. Empty fields select everything with a trusted label."""

    labels: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    since: datetime | None = None  # label decided at or after (UTC)
    until: datetime | None = None  # label decided before (UTC)
    batch: str | None = None  # items decided in this group-relabel batch
    items: tuple[str, ...] | None = None  # a saved list of item ids
    from_parent: bool = False  # the parent's examples, plus what was decided since the parent

    def describe(self) -> dict:
        """The selection as JSON-ready data, for the recipe."""
        data = asdict(self)
        for key in ("since", "until"):
            data[key] = data[key] and data[key].isoformat()
        data["labels"], data["sources"] = list(self.labels), list(self.sources)
        data["items"] = None if self.items is None else len(self.items)
        return data

    def where(self) -> tuple[str, list]:
        """The SQL condition over `items i` and `reviews r`, and its parameters."""
        clauses, params = ["TRUE"], []
        if self.labels:
            clauses.append("r.current_label IN (SELECT unnest(?::VARCHAR[]))")
            params.append(list(self.labels))
        if self.sources:
            clauses.append("i.source IN (SELECT unnest(?::VARCHAR[]))")
            params.append(list(self.sources))
        for bound, op in ((self.since, ">="), (self.until, "<")):
            if bound is not None:
                clauses.append(f"r.label_decision_id IN (SELECT decision_id FROM decisions WHERE decided_at {op} ?)")
                params.append(bound)
        if self.batch is not None:
            clauses.append("i.item_id IN (SELECT item_id FROM decisions WHERE batch_id = ?)")
            params.append(self.batch)
        if self.items is not None:
            clauses.append("i.item_id IN (SELECT unnest(?::VARCHAR[]))")
            params.append(list(self.items))
        return " AND ".join(clauses), params


def read_examples(ws: Workspace, selection: Selection, *, salt: str, parent_ids: pa.Table | None = None,
                  parent_created: datetime | None = None) -> dict:
    """The selected examples (Arrow, sorted by id), the store watermark and the reviewer-overlap count.

    `bucket` in [0, 1) is the salted hash of the item id that places it in a split.
    With `selection.from_parent`, `parent_ids` (a table with an `id` column) and
    `parent_created` say what the parent held and when it was made.
    """
    where, params = selection.where()
    with ws.store().atomic() as tx:
        watermark = sync_items(tx, ws)
        last_decision = tx.value("SELECT max(decided_at) FROM decisions")
        overlap = tx.value("SELECT count(*) FROM reviews WHERE len(reviewers) >= 2")
        if selection.from_parent and parent_ids is not None:
            with tx.registered(parent_ids) as parent:
                where = (f"i.item_id IN (SELECT id FROM {parent}) OR (({where}) AND i.item_id IN "
                         "(SELECT item_id FROM decisions WHERE decided_at > ?))")
                examples = tx.arrow(_EXAMPLES.format(where=where), [*params, parent_created, salt])
        else:
            examples = tx.arrow(_EXAMPLES.format(where=where), [*params, salt])
    return {"examples": examples, "watermark": {"event_seq": watermark, "decided_at": last_decision},
            "overlap_items": overlap}


def row_hash(item_id: str, label: str, text: str) -> str:
    """The row hash of one example (see the module docstring)."""
    parts = [value.encode() for value in (item_id, label, text)]
    return hashlib.md5(b"".join(b"%d:%s" % (len(p), p) for p in parts)).hexdigest()
