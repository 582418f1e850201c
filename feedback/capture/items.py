"""Derived item state: the `items` table, one row per item, kept in step with the event log.

A row holds what the item's production events say (text, the latest prediction, the latest
user correction, errors, source, time range) and its queue reasons with their priority. It is
refreshed for the items whose events arrived since the last refresh (a watermark in
`state_marks`) and for items given a new queue reason. Ingest refreshes it in the transaction
that stores the events, so a reader's first page after an ingest finds nothing to do; readers
still call `sync_items` first (events written some other way are caught up there).

Priority rule: priority = sum over the item's reasons of weight(reason) x score, with
scores in [0, 1] and weights from `[queue.weights]` in the config (defaults below).
Automatic reasons: `correction` (a user correction that disagrees with the model,
score 1), `error` (a production error, score 1), `low_confidence` (score 1 - confidence):
by default relative to each model version, its predictions whose score falls in the lowest
`review.low_confidence_share` (10%) of that version's own scores, since a model with 150
classes gives most predictions a score a 4-class model would call hopeless; with
`review.low_confidence` set to a number, the predictions scored under it. Other reasons
(`suspected_label_error`, `active_learning`, `manual`) are logged in `queue_reasons` by
`review.queue` with their own score; a reason logged after an item's last decision puts a
decided item (say, a suspected label error) in front of reviewers again. A decision resolves the
reasons before it: an item decided (any status but `new` and `skipped` in `reviews`) keeps them in
its list, but only reasons logged since add to its priority.

The queue itself, decisions and the `reviews` table belong to `review`; this module sits
below it, in capture, so that ingest can keep the table current without importing review.
"""

from __future__ import annotations

from ..errors import FeedbackError
from ..workspace import Workspace

DEFAULT_WEIGHTS = {"correction": 1.0, "error": 0.8, "suspected_label_error": 0.9, "low_confidence": 0.6,
                   "active_learning": 0.7, "novelty": 0.5, "manual": 1.0, "second_review": 1.0, "taxonomy": 0.9}
ITEM_DEFAULTS = {"low_confidence": "relative", "low_confidence_share": 0.10}  # of `[review]`
#: A `taxonomy` reason whose change was undone (over `queue_reasons`): it no longer queues the item
_UNDONE_CHANGE = ("coalesce(reason = 'taxonomy' AND detail->>'change_id' IN "
                  "(SELECT change_id FROM taxonomy_changes WHERE undone_at IS NOT NULL), false)")
_EXACT_BELOW = 2_000  # a model version with fewer scored predictions gets its threshold computed at every sync


def weights(ws: Workspace) -> dict[str, float]:
    return {**DEFAULT_WEIGHTS, **ws.config.get("queue", {}).get("weights", {})}


def _setting(ws: Workspace, name: str):
    return {**ITEM_DEFAULTS, **ws.config.get("review", {})}[name]


def sync_items(tx, ws: Workspace) -> int:
    """Refresh `items` for events that arrived since the last refresh; return the new watermark."""
    mark = tx.value("SELECT max(value) FROM state_marks WHERE name = 'items'") or 0
    top = tx.value("SELECT max(seq) FROM events") or 0
    if top > mark:
        tx.lock("items")  # transactions that run side by side (reviewers' on PostgreSQL) sync one at a time
        mark = tx.value("SELECT max(value) FROM state_marks WHERE name = 'items'") or 0
    if top > mark:
        if _setting(ws, "low_confidence") == "relative":
            _update_thresholds(tx, ws, mark)
        tx.execute("CREATE TEMP TABLE touched AS SELECT DISTINCT item_id FROM events WHERE seq > ?", [mark])
        _rebuild_touched(tx, ws)
        tx.execute("INSERT INTO state_marks VALUES ('items', ?, now()::TIMESTAMP)", [top])
    return top


def refresh_items(tx, ws: Workspace, item_ids: list[str]) -> None:
    """Recompute the `items` rows of these items (after new queue reasons)."""
    tx.execute("CREATE TEMP TABLE touched AS SELECT DISTINCT unnest(?::VARCHAR[]) AS item_id", [item_ids])
    _rebuild_touched(tx, ws)


def settle_priority(tx, ws: Workspace, item_ids: list[str]) -> None:
    """Set the priority of these decided items (they have a `reviews` row) to what the rule gives them: the
    reasons logged since their last decision; their reasons' list stays. Cheaper than a rebuild: no events read."""
    w = weights(ws)
    priority = dict.fromkeys(item_ids, 0.0)
    for r in tx.rows(f"SELECT q.item_id, q.reason, max(q.score) AS score FROM queue_reasons q "
                     f"JOIN reviews d ON d.item_id = q.item_id AND q.queued_at > d.last_decided_at "
                     f"WHERE q.item_id IN (SELECT unnest(?::VARCHAR[])) AND NOT {_UNDONE_CHANGE} GROUP BY 1, 2",
                     [item_ids]):
        priority[r["item_id"]] += r["score"] * w.get(r["reason"], 1.0)
    if len(priority) == 1:  # one decision: a lookup by the key, not a join over every item
        (item_id, value), = priority.items()
        tx.execute("UPDATE items SET priority = ? WHERE item_id = ?", [value, item_id])
        return
    tx.execute("UPDATE items SET priority = p.priority FROM (SELECT unnest(?::VARCHAR[]) AS item_id, "
               "unnest(?::DOUBLE[]) AS priority) p WHERE items.item_id = p.item_id",
               [list(priority), list(priority.values())])


def _update_thresholds(tx, ws: Workspace, mark: int) -> None:
    """Keep each model version's low-confidence threshold: the `low_confidence_share` quantile of its scores,
    computed again whenever its scored predictions have doubled since (always, while they are few)."""
    share = float(_setting(ws, "low_confidence_share"))
    arrived = tx.rows("SELECT coalesce(model_version, '') AS v, count(*) AS n FROM events WHERE seq > ? "
                      "AND type = 'prediction' AND pred_score IS NOT NULL GROUP BY 1", [mark])
    known = {r["model_version"]: r for r in tx.rows("SELECT * FROM score_thresholds")}
    for row in arrived:
        old = known.get(row["v"], {"threshold": None, "basis": 0, "seen": 0})
        seen = old["seen"] + row["n"]
        threshold, basis = old["threshold"], old["basis"]
        if seen >= 2 * basis or seen < _EXACT_BELOW:
            threshold = tx.value("SELECT percentile_cont(?) WITHIN GROUP (ORDER BY pred_score) FROM events WHERE type = 'prediction' "
                                 "AND coalesce(model_version, '') = ? AND pred_score IS NOT NULL", [share, row["v"]])
            basis = seen
        tx.execute("DELETE FROM score_thresholds WHERE model_version = ?", [row["v"]])
        tx.execute("INSERT INTO score_thresholds VALUES (?, ?, ?, ?)", [row["v"], threshold, basis, seen])


def _low_confidence(ws: Workspace) -> tuple[str, list]:
    """The SQL condition (over `agg`) and parameters of the `low_confidence` reason."""
    setting = _setting(ws, "low_confidence")
    if setting == "relative":
        return ("pred_score < (SELECT threshold FROM score_thresholds t "
                "WHERE t.model_version = coalesce(agg.model_version, ''))"), []
    if isinstance(setting, bool) or not isinstance(setting, (int, float)):
        raise FeedbackError(f"[review] low_confidence = {setting!r}: use \"relative\" or a score such as 0.5")
    return "pred_score < ?", [float(setting)]


def _extreme(tx, which: str, value: str, key: str, where: str = "true") -> str:
    """The aggregate of `value` at the row with the largest (`max`) or smallest (`min`) `key` among the rows
    `where` holds, NULL values and keys left out: DuckDB's `arg_max`, PostgreSQL's first of an ordered array."""
    if tx.dialect == "duckdb":
        return f"arg_{which}({value}, {key}) FILTER (WHERE {where})"
    order = "DESC" if which == "max" else "ASC"
    return (f"(array_agg({value} ORDER BY {key} {order}) FILTER (WHERE ({where}) AND ({value}) IS NOT NULL "
            f"AND {key} IS NOT NULL))[1]")


def _rebuild_touched(tx, ws: Workspace) -> None:
    w = weights(ws)
    low, low_params = _low_confidence(ws)
    source = "coalesce(meta->>'source', meta->>'channel', split_part(source, ':', 1))"
    tx.execute("DELETE FROM items WHERE item_id IN (SELECT item_id FROM touched)")
    tx.execute(
        f"""
        INSERT INTO items
        WITH e AS (SELECT item_id, seq, ts, type, input_text, pred_label, pred_score, model_version, corr_label,
                          {source} AS origin
                   FROM events WHERE item_id IN (SELECT item_id FROM touched)),
        agg AS (
            SELECT item_id,
                   {_extreme(tx, "min", "input_text", "seq", "input_text IS NOT NULL")} AS text,
                   {_extreme(tx, "max", "pred_label", "seq", "type = 'prediction'")} AS pred_label,
                   {_extreme(tx, "max", "pred_score", "seq", "type = 'prediction'")} AS pred_score,
                   {_extreme(tx, "max", "model_version", "seq", "type = 'prediction'")} AS model_version,
                   {_extreme(tx, "max", "corr_label", "ts", "type = 'correction'")} AS corr_label,
                   bool_or(type = 'error') AS has_error,
                   {_extreme(tx, "min", "origin", "seq")} AS source,
                   min(ts) AS first_ts, max(ts) AS last_ts
            FROM e GROUP BY item_id
        ),
        reasons AS (
            SELECT item_id, 'correction' AS reason, 1.0 AS score, NULL::TIMESTAMP AS queued_at FROM agg
             WHERE corr_label IS NOT NULL AND corr_label IS DISTINCT FROM pred_label
            UNION ALL SELECT item_id, 'error', 1.0, NULL FROM agg WHERE has_error
            UNION ALL SELECT item_id, 'low_confidence', 1.0 - pred_score, NULL FROM agg WHERE {low}
            UNION ALL SELECT item_id, reason, score, queued_at FROM queue_reasons
             WHERE item_id IN (SELECT item_id FROM touched) AND NOT {_UNDONE_CHANGE}
        ),
        decided AS (
            SELECT item_id, last_decided_at FROM reviews
            WHERE item_id IN (SELECT item_id FROM touched) AND status NOT IN ('new', 'skipped')
        ),
        scored AS (  -- a decision resolves the reasons before it: only those queued since still add priority
            SELECT item_id, reason, max(score) FILTER (WHERE d.item_id IS NULL OR queued_at > d.last_decided_at) AS score
            FROM reasons LEFT JOIN decided d USING (item_id) GROUP BY item_id, reason
        ),
        weights AS (SELECT unnest(?::VARCHAR[]) AS reason, unnest(?::DOUBLE[]) AS weight),
        ranked AS (
            SELECT item_id, array_agg(DISTINCT reason ORDER BY reason) AS reasons,
                   sum(score * coalesce(weight, 1.0)) AS priority
            FROM scored LEFT JOIN weights USING (reason) GROUP BY item_id
        ),
        queued AS (
            SELECT item_id, max(queued_at) AS last_queued_at FROM queue_reasons
            WHERE item_id IN (SELECT item_id FROM touched) AND NOT {_UNDONE_CHANGE} GROUP BY item_id
        )
        SELECT agg.item_id, text, pred_label, pred_score, model_version, corr_label, has_error, source,
               first_ts, last_ts, coalesce(reasons, []::VARCHAR[]), coalesce(priority, 0.0), last_queued_at
        FROM agg LEFT JOIN ranked USING (item_id) LEFT JOIN queued USING (item_id)
        ORDER BY coalesce(priority, 0.0) DESC, agg.item_id  -- pages by priority can skip low row groups
        """,
        [*low_params, list(w), list(w.values())],
    )
    tx.execute("DROP TABLE touched")
