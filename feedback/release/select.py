"""Which examples a release holds, read from the store in one short transaction.

An example is an item with a trusted current label (see the rule in `review.state`: items waiting
for a second review ship the label they had, and a gate counts them). By default
every such item is selected; a `Selection` narrows it by label, source, decision time, a
group-relabel batch or a saved list of item ids, or (`from_parent`) takes the parent
release's examples plus the items decided since the parent was made. Items without text
(purged, or captured with features only) are left out and counted.

Row hash: the MD5 (16 bytes) of the row's id, label and text, each as a netstring
(`<UTF-8 byte length>:<value>`), computed in DuckDB's SQL when building (on a team store, in
`scratch` over the rows PostgreSQL returns) and in Python when verifying (`row_hash`); the two
must stay the same formula.
"""

from __future__ import annotations

import hashlib
import re
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from datetime import datetime

import numpy as np
import pyarrow as pa

from ..errors import FeedbackError
from ..review.groups import distinct_sets
from ..review.state import sync_items
from ..store import scratch
from ..workspace import Workspace

ROW_HASH = pa.binary(16)
_MEMORY = re.compile(r"^[0-9]+(\.[0-9]+)?\s*[KMGT]i?B$")
_LABELED = "FROM reviews r JOIN items i USING (item_id) WHERE r.current_label IS NOT NULL AND ({where})"


def _row_md5(item_id: str, label: str, text: str) -> str:
    """The row hash in SQL, as a number (see `_HASHED` for its bytes)."""
    return (f"md5_number(strlen({item_id}) || ':' || {item_id} || strlen({label}) || ':' || {label}"
            f" || strlen({text}) || ':' || {text})")


#: The row hash in SQL over `items i` and `reviews r`
ROW_MD5 = _row_md5("i.item_id", "r.current_label", "i.text")
# The selected examples, in SQL both backends read; the hashes come after, in DuckDB (`_HASHED`)
_PICKED = """
WITH special AS (SELECT decision_id, kind FROM decisions WHERE kind IN ('adjudicate', 'import')),
pins AS (SELECT item_id, arg_max(split, pinned_at) AS pinned_split FROM pinned_splits GROUP BY item_id)
SELECT i.item_id AS id, i.text, r.current_label AS label, i.source, r.label_decision_id, r.label_reviewer,
       coalesce(s.kind = 'adjudicate', false) AS adjudicated, coalesce(s.kind = 'import', false) AS imported,
       pins.pinned_split, len(r.reviewers) AS reviewers, r.status AS review_status
FROM reviews r JOIN items i USING (item_id) LEFT JOIN special s ON s.decision_id = r.label_decision_id
     LEFT JOIN pins ON pins.item_id = i.item_id
WHERE r.current_label IS NOT NULL AND i.text IS NOT NULL AND ({where})
"""
# md5_number is the digest read as a little-endian 128-bit number: its low half holds bytes 0-7
_HASHED = f"""
SELECT * EXCLUDE (row_md5), (row_md5 & 18446744073709551615::UHUGEINT)::UBIGINT AS md5_head,
       (row_md5 >> 64)::UBIGINT AS md5_tail
FROM (SELECT *, {_row_md5("id", "label", "text")} AS row_md5,
             (md5_number(? || id) >> 64)::DOUBLE / 18446744073709551616.0 AS bucket, hash(text) AS text_hash
      FROM {{picked}}) hashed
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
        if self.items is not None:
            listed = "\n".join(sorted(set(self.items))).encode()
            data["items"] = {"count": len(set(self.items)), "sha256": hashlib.sha256(listed).hexdigest()}
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


def read_examples(ws: Workspace, selection: Selection, *, salt: str, memory_limit: str,
                  parent_ids: pa.Table | None = None, parent_decided: datetime | None = None) -> dict:
    """The selected examples (Arrow, sorted by id), how many were left out for lack of text, the store
    watermark, how many items several reviewers decided, and the live "not duplicates" marks (`apart`).

    `bucket` in [0, 1) is the salted hash of the item id that places it in a split;
    `text_hash` a 64-bit hash of the text that finds exact duplicates fast. DuckDB may use
    `memory_limit` (such as "500MB") for the read, and spills to disk beyond it.
    With `selection.from_parent`, `parent_ids` (a table with an `id` column) and
    `parent_decided` (its store's last decision time) say what the parent held and saw.
    """
    if not _MEMORY.match(memory_limit):
        raise FeedbackError(f"[release] memory_limit = {memory_limit!r}: give a size such as \"500MB\" or \"2GB\"")
    where, params = selection.where()
    from_parent = selection.from_parent and parent_ids is not None
    store = ws.store()
    with store.memory_limit(memory_limit), store.atomic() as tx, \
            (tx.registered(parent_ids) if from_parent else nullcontext()) as parent:
        watermark = sync_items(tx, ws)
        last_decision = tx.value("SELECT max(decided_at) FROM decisions")
        overlap = tx.value("SELECT count(*) FROM reviews WHERE len(reviewers) >= 2")
        if from_parent:
            where = (f"i.item_id IN (SELECT id FROM {parent}) OR (({where}) AND i.item_id IN "
                     "(SELECT item_id FROM decisions WHERE decided_at > ?))")
            params = [*params, parent_decided]
        picked = _PICKED.format(where=where)
        if tx.dialect == "duckdb":
            examples = tx.arrow(_HASHED.format(picked=f"({picked}) picked"), [salt, *params])
        else:
            examples = tx.arrow(picked, params)
        no_text = tx.value(f"SELECT count(*) {_LABELED.format(where=where)} AND i.text IS NULL", params)
        apart = distinct_sets(tx)
    if store.dialect != "duckdb":
        with scratch() as db, db.registered(examples) as name:
            examples = db.arrow(_HASHED.format(picked=name), [salt])
    examples = examples.append_column("row_hash", _row_hashes(examples["md5_head"], examples["md5_tail"]))
    return {"examples": examples.drop_columns(["md5_head", "md5_tail"]), "no_text": no_text, "overlap_items": overlap,
            "watermark": {"event_seq": watermark, "decided_at": last_decision}, "apart": apart}


def _row_hashes(head: pa.ChunkedArray, tail: pa.ChunkedArray) -> pa.FixedSizeBinaryArray:
    """Row hashes from the two little-endian halves of their MD5 digests."""
    halves = np.column_stack([np.asarray(head), np.asarray(tail)]).astype("<u8")
    return pa.FixedSizeBinaryArray.from_buffers(ROW_HASH, len(halves), [None, pa.py_buffer(halves)])


def row_hash(item_id: str, label: str, text: str) -> bytes:
    """The row hash of one example (see the module docstring)."""
    parts = [value.encode() for value in (item_id, label, text)]
    return hashlib.md5(b"".join(b"%d:%s" % (len(p), p) for p in parts)).digest()
