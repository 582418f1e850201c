"""The current trusted labels, read as a table: what an evaluator or a notebook needs, with no private table."""

from __future__ import annotations

import pyarrow as pa

from ..workspace import Workspace
from .state import sync_items


def trusted_labels(ws: Workspace) -> pa.Table:
    """Every item with a current label (the rule in `review.state`; exactly what a release would hold, texts
    included), by id: item_id, text, label, status, label_reviewer, provenance (label, adjudicate, import, or
    gold) and decided_at. `.to_pandas()` for a DataFrame.

        frame = feedback.trusted_labels(ws).to_pandas()
    """
    with ws.store().atomic(shared=True) as tx:
        sync_items(tx, ws)
        table = tx.arrow(
            "SELECT r.item_id, i.text, r.current_label AS label, r.status, r.label_reviewer, "
            "coalesce(d.kind, 'gold') AS provenance, d.decided_at "
            "FROM reviews r JOIN items i USING (item_id) LEFT JOIN decisions d ON d.decision_id = r.label_decision_id "
            "WHERE r.current_label IS NOT NULL")
    return table.sort_by("item_id")
