"""Derived state, kept in two tables maintained beside the logs they come from.

`items`: one row per item, from its production events and queue reasons: text, the
latest prediction, the latest user correction, errors, source, time range, the
reasons it is in the queue and its priority. Refreshed for the items whose events
arrived since the last refresh (a watermark in `state_marks`) and for items given a
new queue reason.

`reviews`: one row per item that reviewers touched, derived from its decisions,
claims and gold answer by `derive_review` (the documented rules below), rewritten in
the same transaction as the decision or claim that changes it.

Priority rule: priority = sum over the item's reasons of weight(reason) x score, with
scores in [0, 1] and weights from `[queue.weights]` in the config (defaults below).
Automatic reasons: `correction` (a user correction that disagrees with the model,
score 1), `error` (a production error, score 1), `low_confidence` (score 1 - confidence):
by default relative to each model version, its predictions whose score falls in the lowest
`review.low_confidence_share` (10%) of that version's own scores, since a model with 150
classes gives most predictions a score a 4-class model would call hopeless; with
`review.low_confidence` set to a number, the predictions scored under it. Other reasons
(`suspected_label_error`, `active_learning`, `manual`) are logged in `queue_reasons`
with their own score; a reason logged after an item's last decision puts a decided item
(say, a suspected label error) in front of reviewers again.

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

from ..errors import FeedbackError
from ..workspace import Workspace

DEFAULT_WEIGHTS = {"correction": 1.0, "error": 0.8, "suspected_label_error": 0.9, "low_confidence": 0.6,
                   "active_learning": 0.7, "novelty": 0.5, "manual": 1.0}
REVIEW_DEFAULTS = {"overlap": 2, "overlap_share": 0.0, "lease_seconds": 600, "low_confidence": "relative",
                   "low_confidence_share": 0.10}
_EXACT_BELOW = 2_000  # a model version with fewer scored predictions gets its threshold computed at every sync


def review_config(ws: Workspace) -> dict:
    return {**REVIEW_DEFAULTS, **ws.config.get("review", {})}


def weights(ws: Workspace) -> dict[str, float]:
    return {**DEFAULT_WEIGHTS, **ws.config.get("queue", {}).get("weights", {})}


def sync_items(tx, ws: Workspace) -> int:
    """Refresh `items` for events that arrived since the last refresh; return the new watermark."""
    mark = tx.value("SELECT max(value) FROM state_marks WHERE name = 'items'") or 0
    top = tx.value("SELECT max(seq) FROM events") or 0
    if top > mark:
        if review_config(ws)["low_confidence"] == "relative":
            _update_thresholds(tx, ws, mark)
        tx.execute("CREATE TEMP TABLE touched AS SELECT DISTINCT item_id FROM events WHERE seq > ?", [mark])
        _rebuild_touched(tx, ws)
        tx.execute("INSERT INTO state_marks VALUES ('items', ?, now()::TIMESTAMP)", [top])
    return top


def refresh_items(tx, ws: Workspace, item_ids: list[str]) -> None:
    """Recompute the `items` rows of these items (after new queue reasons)."""
    tx.execute("CREATE TEMP TABLE touched AS SELECT DISTINCT unnest(?::VARCHAR[]) AS item_id", [item_ids])
    _rebuild_touched(tx, ws)


def _update_thresholds(tx, ws: Workspace, mark: int) -> None:
    """Keep each model version's low-confidence threshold: the `low_confidence_share` quantile of its scores,
    computed again whenever its scored predictions have doubled since (always, while they are few)."""
    share = float(review_config(ws)["low_confidence_share"])
    arrived = tx.rows("SELECT coalesce(model_version, '') AS v, count(*) AS n FROM events WHERE seq > ? "
                      "AND type = 'prediction' AND pred_score IS NOT NULL GROUP BY 1", [mark])
    known = {r["model_version"]: r for r in tx.rows("SELECT * FROM score_thresholds")}
    for row in arrived:
        old = known.get(row["v"], {"threshold": None, "basis": 0, "seen": 0})
        seen = old["seen"] + row["n"]
        threshold, basis = old["threshold"], old["basis"]
        if seen >= 2 * basis or seen < _EXACT_BELOW:
            threshold = tx.value("SELECT quantile_cont(pred_score, ?) FROM events WHERE type = 'prediction' "
                                 "AND coalesce(model_version, '') = ? AND pred_score IS NOT NULL", [share, row["v"]])
            basis = seen
        tx.execute("DELETE FROM score_thresholds WHERE model_version = ?", [row["v"]])
        tx.execute("INSERT INTO score_thresholds VALUES (?, ?, ?, ?)", [row["v"], threshold, basis, seen])


def _low_confidence(ws: Workspace) -> tuple[str, list]:
    """The SQL condition (over `agg`) and parameters of the `low_confidence` reason."""
    setting = review_config(ws)["low_confidence"]
    if setting == "relative":
        return ("pred_score < (SELECT threshold FROM score_thresholds t "
                "WHERE t.model_version = coalesce(agg.model_version, ''))"), []
    if isinstance(setting, bool) or not isinstance(setting, (int, float)):
        raise FeedbackError(f"[review] low_confidence = {setting!r}: use \"relative\" or a score such as 0.5")
    return "pred_score < ?", [float(setting)]


def _rebuild_touched(tx, ws: Workspace) -> None:
    w = weights(ws)
    low, low_params = _low_confidence(ws)
    tx.execute("DELETE FROM items WHERE item_id IN (SELECT item_id FROM touched)")
    tx.execute(
        f"""
        INSERT INTO items
        WITH e AS (SELECT * FROM events WHERE item_id IN (SELECT item_id FROM touched)),
        agg AS (
            SELECT item_id,
                   arg_min(input_text, seq) FILTER (WHERE input_text IS NOT NULL) AS text,
                   arg_max(pred_label, seq) FILTER (WHERE type = 'prediction') AS pred_label,
                   arg_max(pred_score, seq) FILTER (WHERE type = 'prediction') AS pred_score,
                   arg_max(model_version, seq) FILTER (WHERE type = 'prediction') AS model_version,
                   arg_max(corr_label, ts) FILTER (WHERE type = 'correction') AS corr_label,
                   bool_or(type = 'error') AS has_error,
                   arg_min(coalesce(meta->>'source', meta->>'channel', split_part(source, ':', 1)), seq) AS source,
                   min(ts) AS first_ts, max(ts) AS last_ts
            FROM e GROUP BY item_id
        ),
        reasons AS (
            SELECT item_id, 'correction' AS reason, 1.0 AS score FROM agg
             WHERE corr_label IS NOT NULL AND corr_label IS DISTINCT FROM pred_label
            UNION ALL SELECT item_id, 'error', 1.0 FROM agg WHERE has_error
            UNION ALL SELECT item_id, 'low_confidence', 1.0 - pred_score FROM agg WHERE {low}
            UNION ALL SELECT item_id, reason, max(score) FROM queue_reasons
             WHERE item_id IN (SELECT item_id FROM touched) GROUP BY item_id, reason
        ),
        weights AS (SELECT unnest(?::VARCHAR[]) AS reason, unnest(?::DOUBLE[]) AS weight),
        ranked AS (
            SELECT item_id, list(DISTINCT reason ORDER BY reason) AS reasons,
                   sum(score * coalesce(weight, 1.0)) AS priority
            FROM reasons LEFT JOIN weights USING (reason) GROUP BY item_id
        ),
        queued AS (
            SELECT item_id, max(queued_at) AS last_queued_at FROM queue_reasons
            WHERE item_id IN (SELECT item_id FROM touched) GROUP BY item_id
        )
        SELECT agg.item_id, text, pred_label, pred_score, model_version, corr_label, has_error, source,
               first_ts, last_ts, coalesce(reasons, []::VARCHAR[]), coalesce(priority, 0.0), last_queued_at
        FROM agg LEFT JOIN ranked USING (item_id) LEFT JOIN queued USING (item_id)
        ORDER BY coalesce(priority, 0.0) DESC, agg.item_id  -- pages by priority can skip low row groups
        """,
        [*low_params, list(w), list(w.values())],
    )
    tx.execute("DROP TABLE touched")


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


def write_reviews(tx, ws: Workspace, item_ids: list[str]) -> None:
    """Recompute and rewrite the `reviews` rows of these items from their decisions and claims."""
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
