"""The figures a team looks at weekly, as plain tables for charts."""

from __future__ import annotations

import pandas as pd

from ..workspace import Workspace
from .agreement import reviewer_agreement
from .state import sync_items


def dashboard_figures(ws: Workspace, *, days: int = 60) -> dict[str, pd.DataFrame | dict]:
    """Incoming errors and corrections by day and model version, confusion, queue by reason, reviewer work
    (decisions by day and reviewer; imported labels are no one's work),
    and suspected label errors by the day they were found.

    `queue` counts items per reason (an item with two reasons counts in both); `items_waiting` counts each once.
    `suspects`: per day, the items flagged as suspected label errors (`found`), how many of them a reviewer
    has decided since (`reviewed`), and how many of those now carry another label than the one flagged
    (`confirmed`).
    """
    with ws.store().atomic(shared=True) as tx:  # only reads, once `items` is up to date
        sync_items(tx, ws)
        incoming = tx.arrow(
            """
            WITH e AS (SELECT e.type, e.ts, coalesce(i.model_version, '(none)') AS model_version
                       FROM events e LEFT JOIN items i USING (item_id)
                       WHERE e.type IN ('error', 'correction'))
            SELECT date_trunc('day', ts) AS day, type, model_version, count(*) AS events FROM e
            WHERE ts >= (SELECT max(ts) FROM e) - to_days(?) GROUP BY 1, 2, 3 ORDER BY day
            """, [days])
        confusion = tx.arrow(
            """
            SELECT i.pred_label AS predicted, coalesce(r.current_label, i.corr_label) AS actual,
                   CASE WHEN r.current_label IS NOT NULL THEN 'reviewed' ELSE 'user correction' END AS basis,
                   count(*) AS items
            FROM items i LEFT JOIN reviews r USING (item_id)
            WHERE i.pred_label IS NOT NULL AND coalesce(r.current_label, i.corr_label) IS NOT NULL
              AND i.pred_label <> coalesce(r.current_label, i.corr_label)
            GROUP BY 1, 2, 3 ORDER BY items DESC LIMIT 25
            """)
        waiting = "FROM items i LEFT JOIN reviews r USING (item_id) WHERE len(i.reasons) > 0 " \
                  "AND coalesce(r.status, 'new') IN ('new', 'skipped')"
        queue = tx.arrow(f"SELECT unnest(reasons) AS reason, count(*) AS items {waiting} GROUP BY 1 ORDER BY 2 DESC")
        items_waiting = tx.value(f"SELECT count(*) {waiting}")
        throughput = tx.arrow(
            "SELECT date_trunc('day', decided_at) AS day, reviewer, count(*) AS decisions FROM decisions "
            "WHERE kind NOT IN ('undo', 'import') GROUP BY 1, 2 ORDER BY day")
        suspects = tx.arrow(
            """
            WITH flagged AS (
                SELECT item_id, min(queued_at) AS flagged_at, arg_min(detail->>'label', queued_at) AS label
                FROM queue_reasons WHERE reason = 'suspected_label_error' GROUP BY item_id)
            SELECT date_trunc('day', f.flagged_at) AS day, count(*) AS found,
                   count(*) FILTER (WHERE r.last_decided_at > f.flagged_at AND r.status <> 'new') AS reviewed,
                   count(*) FILTER (WHERE r.last_decided_at > f.flagged_at AND r.status = 'labeled'
                                    AND r.current_label IS DISTINCT FROM f.label) AS confirmed
            FROM flagged f LEFT JOIN reviews r USING (item_id) GROUP BY 1 ORDER BY day
            """)
    tables = {"incoming": incoming, "confusion": confusion, "queue": queue, "throughput": throughput,
              "suspects": suspects}  # read in one short transaction, made into DataFrames after it
    return {**{name: table.to_pandas() for name, table in tables.items()}, "items_waiting": items_waiting,
            "agreement": reviewer_agreement(ws)}
