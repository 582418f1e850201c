"""The review queue: items that need a person, by priority, with filters, counts and claims.

An item is in the queue while it has at least one reason (see `state` for the
reasons and the priority rule). Fetching the next item claims it for the reviewer for
`review.lease_seconds`, so two reviewers working at once never get the same item; an
expired lease returns it to the queue. A reviewer holds one item at a time: asking for a
particular one (`first`: the item an undo brought back, a row opened from the queue page)
gives back the one they held.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ..errors import FeedbackError, NotFound
from ..roles import Actor
from ..workspace import Workspace
from .choices import REASONS, STATUSES
from .state import append_reasons, lock_items, refresh_items, review_config, sync_items, write_reviews

_STATUS = ("CASE WHEN r.claim_expires > now()::TIMESTAMP AND coalesce(r.status, 'new') IN ('new', 'skipped', 'second_review') "
           "THEN 'in review' ELSE coalesce(r.status, 'new') END")
_COLUMNS = (f"i.item_id, i.text, i.pred_label, i.pred_score, i.model_version, i.corr_label, i.source, i.first_ts, "
            f"i.last_ts, i.reasons, i.priority, {_STATUS} AS status, r.current_label, r.label_reviewer, "
            f"r.claimed_by, r.reviewers, r.last_decision_id")
_FROM = "items i LEFT JOIN reviews r USING (item_id)"
#: Items a reviewer (the parameter) may be given: new or skipped ones and those waiting for a second review that
#: they have not decided, and decided ones queued again since (a suspected label error, say).
_OPEN_TO = ("((coalesce(r.status, 'new') IN ('new', 'skipped', 'second_review') "
            "  AND NOT list_contains(coalesce(r.reviewers, []::VARCHAR[]), ?)) "
            " OR (r.status IN ('labeled', 'junk') AND i.last_queued_at > r.last_decided_at))")
_NOT_UNDONE = "decision_id NOT IN (SELECT undoes FROM decisions WHERE kind = 'undo' AND undoes IS NOT NULL)"


@dataclass(frozen=True)
class QueueFilter:
    """What a reviewer narrows the queue to. Every field is optional."""

    reason: str | None = None
    status: str | None = None
    pred_label: str | None = None
    corr_label: str | None = None
    current_label: str | None = None
    model_version: str | None = None
    source: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None

    def __post_init__(self):
        if self.status is not None and self.status not in STATUSES:
            raise FeedbackError(f"status {self.status!r} is not one of {', '.join(STATUSES)}")

    def where(self, *, queued: bool = True) -> tuple[str, list]:
        """The SQL condition (over `items i` and `reviews r`) and its parameters; with `queued`, only items
        that are in the queue (have a reason)."""
        clauses, params = ["len(i.reasons) > 0" if queued else "true"], []
        simple = {"pred_label": "i.pred_label", "corr_label": "i.corr_label", "current_label": "r.current_label",
                  "model_version": "i.model_version", "source": "i.source", "status": _STATUS}
        for name, column in simple.items():
            value = getattr(self, name)
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if self.reason is not None:
            clauses.append("list_contains(i.reasons, ?)")
            params.append(self.reason)
        if self.since is not None:
            clauses.append("i.last_ts >= ?")
            params.append(self.since)
        if self.until is not None:
            clauses.append("i.last_ts < ?")
            params.append(self.until)
        if self.text:
            clauses.append("i.text ILIKE ? ESCAPE '\\'")
            params.append("%" + self.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
        return " AND ".join(clauses), params


def queue_page(ws: Workspace, flt: QueueFilter = QueueFilter(), *, sort: str = "priority", limit: int = 50,
               offset: int = 0) -> list[dict]:
    """A page of the queue, highest priority (or newest, with sort='time') first."""
    order = {"priority": "i.priority DESC, i.item_id", "time": "i.last_ts DESC, i.item_id"}.get(sort)
    if order is None:
        raise FeedbackError(f"sort {sort!r}: use 'priority' or 'time'")
    where, params = flt.where()
    with ws.store().atomic(shared=True) as tx:
        sync_items(tx, ws)
        return tx.rows(f"SELECT {_COLUMNS} FROM {_FROM} WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?",
                       params + [limit, offset])


def queue_counts(ws: Workspace, flt: QueueFilter = QueueFilter()) -> dict[str, dict]:
    """For the sidebar: how many queued items match the filter, by reason, status, labels, model and source."""
    where, params = flt.where()
    groups = {"status": _STATUS, "pred_label": "i.pred_label", "corr_label": "i.corr_label",
              "current_label": "r.current_label", "model_version": "i.model_version", "source": "i.source"}
    with ws.store().atomic(shared=True) as tx:
        sync_items(tx, ws)
        counts = {"total": {"items": tx.value(f"SELECT count(*) FROM {_FROM} WHERE {where}", params)}}
        counts["reason"] = {r["v"]: r["n"] for r in tx.rows(
            f"SELECT unnest(i.reasons) AS v, count(*) AS n FROM {_FROM} WHERE {where} GROUP BY 1 ORDER BY 2 DESC", params)}
        for name, column in groups.items():
            counts[name] = {r["v"]: r["n"] for r in tx.rows(
                f"SELECT {column} AS v, count(*) AS n FROM {_FROM} WHERE {where} AND {column} IS NOT NULL "
                f"GROUP BY 1 ORDER BY 2 DESC, 1", params)}
    return counts


def item(ws: Workspace, item_id: str) -> dict:
    """One item's queue row (text, prediction, correction, reasons, status, current label)."""
    with ws.store().atomic(shared=True) as tx:
        sync_items(tx, ws)
        rows = tx.rows(f"SELECT {_COLUMNS} FROM {_FROM} WHERE i.item_id = ?", [item_id])
    if not rows:
        raise NotFound(f"item {item_id!r} is not in the store")
    return rows[0]


def next_item(ws: Workspace, actor: Actor, flt: QueueFilter | None = None, *,
              exclude: list[str] | tuple = (), first: str | None = None) -> dict | None:
    """Claim and return the next item for this reviewer: `first` when given and nobody else holds it (giving
    back the item they held), else the one they hold, else the top unclaimed one.

    `exclude` names items the reviewer passed over in this session.
    """
    with ws.store().atomic(shared=True) as tx:
        return claim_next(tx, ws, actor, flt, exclude=exclude, first=first)


def claim_next(tx, ws: Workspace, actor: Actor, flt: QueueFilter | None = None, *, exclude=(),
               first: str | None = None) -> dict | None:
    """`next_item` inside an open transaction."""
    actor.require(ws, "decide")
    flt = flt or QueueFilter()
    where, params = flt.where()
    where += " AND i.item_id NOT IN (SELECT unnest(?::VARCHAR[]))"
    params = params + [list(exclude)]
    held_where, held_params = flt.where(queued=False)  # an item asked for by name may be out of the queue
    held_where += " AND i.item_id NOT IN (SELECT unnest(?::VARCHAR[]))"
    held_params = held_params + [list(exclude)]
    lease = timedelta(seconds=review_config(ws)["lease_seconds"])
    now = _now()
    sync_items(tx, ws)
    if first is not None:
        chosen = _claim_first(tx, ws, actor, first, now, now + lease)
        if chosen is not None:
            return chosen
    holds = tx.value("SELECT count(*) FROM reviews WHERE claimed_by = ? AND claim_expires > ?", [actor.name, now])
    held = holds and tx.rows(f"SELECT {_COLUMNS} FROM {_FROM} WHERE r.claimed_by = ? AND r.claim_expires > ? "
                             f"AND {held_where} ORDER BY i.priority DESC LIMIT 1", [actor.name, now] + held_params)
    if held:
        return held[0]
    rows = _top_open(tx, actor, where, params, now)
    if not rows:
        return None
    tx.execute("INSERT INTO claims VALUES (?, ?, ?, ?)", [rows[0]["item_id"], actor.name, now, now + lease])
    write_reviews(tx, ws, [rows[0]["item_id"]])
    return {**rows[0], "status": "in review", "claimed_by": actor.name}


def _top_open(tx, actor: Actor, where: str, params: list, now: datetime) -> list[dict]:
    """The top item open to the actor and unclaimed, as a list of one row (none when nothing is left).

    On PostgreSQL, where reviewers' transactions run side by side, the item comes locked (`FOR UPDATE SKIP
    LOCKED`: items another reviewer is claiming are passed over, never waited for) and is checked again once
    locked, since a claim committed just before the lock is not in the first statement's snapshot.
    """
    query = (f"SELECT {_COLUMNS} FROM {_FROM} WHERE {where} AND {_OPEN_TO} "
             f"AND (r.claim_expires IS NULL OR r.claim_expires <= ?) ")
    if tx.dialect != "postgres":
        return tx.rows(query + "ORDER BY i.priority DESC, i.item_id LIMIT 1", params + [actor.name, now])
    passed: list[str] = []
    while True:
        rows = tx.rows(query + "AND i.item_id <> ALL(?::VARCHAR[]) ORDER BY i.priority DESC, i.item_id LIMIT 1 "
                       "FOR UPDATE OF i SKIP LOCKED", params + [actor.name, now, passed])
        if not rows or tx.rows(query + "AND i.item_id = ?", params + [actor.name, now, rows[0]["item_id"]]):
            return rows
        passed.append(rows[0]["item_id"])


def _claim_first(tx, ws: Workspace, actor: Actor, item_id: str, now: datetime, until: datetime) -> dict | None:
    """Claim this item for the actor unless someone else holds it, and give back whatever else they hold."""
    lock_items(tx, [item_id])
    rows = tx.rows(f"SELECT {_COLUMNS}, r.claim_expires FROM {_FROM} WHERE i.item_id = ?", [item_id])
    if not rows:
        return None
    row = rows.pop()
    held_by_other = row["claimed_by"] not in (None, actor.name) and row["claim_expires"] > now
    if held_by_other:
        return None
    others = [r["item_id"] for r in tx.rows("SELECT item_id FROM reviews WHERE claimed_by = ? AND claim_expires > ? "
                                            "AND item_id <> ?", [actor.name, now, item_id])]
    for other in others:
        tx.execute("INSERT INTO claims VALUES (?, ?, ?, ?)", [other, actor.name, now, now])
    if row["claimed_by"] != actor.name or row["claim_expires"] <= now:
        tx.execute("INSERT INTO claims VALUES (?, ?, ?, ?)", [item_id, actor.name, now, until])
    write_reviews(tx, ws, [item_id, *others])
    del row["claim_expires"]
    return {**row, "status": "in review", "claimed_by": actor.name}


def progress(tx, ws: Workspace, actor: Actor, *, since: datetime, exclude=()) -> dict:
    """A reviewer's session counter, inside an open transaction: `done` (their decisions since `since`, undone
    ones not counted), `left` (queued items they could still be given, the one they hold included, those
    in `exclude` not), and `per_hour` (their decisions in the last hour per hour of it, from their first
    decision in it; None below two decisions)."""
    now = _now()
    hour_ago = now - timedelta(hours=1)
    sync_items(tx, ws)
    counted = tx.rows(
        "SELECT count(*) FILTER (WHERE decided_at >= ?) AS done, count(*) FILTER (WHERE decided_at >= ?) AS recent, "
        "min(decided_at) FILTER (WHERE decided_at >= ?) AS first_recent FROM decisions "
        f"WHERE reviewer = ? AND kind NOT IN ('undo', 'import') AND decided_at >= ? AND {_NOT_UNDONE}",
        [since, hour_ago, hour_ago, actor.name, min(since, hour_ago)])[0]
    left = tx.value(
        f"SELECT count(*) FROM {_FROM} WHERE len(i.reasons) > 0 AND {_OPEN_TO} "
        "AND (r.claim_expires IS NULL OR r.claim_expires <= ? OR r.claimed_by = ?) "
        "AND i.item_id NOT IN (SELECT unnest(?::VARCHAR[]))", [actor.name, now, actor.name, list(exclude)])
    per_hour = None
    if counted["recent"] >= 2:
        span = max((now - counted["first_recent"]).total_seconds(), 60.0)
        per_hour = counted["recent"] * 3600.0 / span
    return {"done": counted["done"], "left": left, "per_hour": per_hour}


def release_claim(ws: Workspace, actor: Actor, item_id: str) -> None:
    """Give a claimed item back to the queue without deciding it."""
    now = _now()
    with ws.store().atomic(shared=True) as tx:
        lock_items(tx, [item_id])
        holder = tx.value("SELECT claimed_by FROM reviews WHERE item_id = ? AND claim_expires > ?", [item_id, now])
        if holder != actor.name:
            return
        tx.execute("INSERT INTO claims VALUES (?, ?, ?, ?)", [item_id, actor.name, now, now])
        write_reviews(tx, ws, [item_id])


def add_to_queue(ws: Workspace, actor: Actor, item_ids: list[str], *, reason: str = "manual", scores=None,
                 detail: dict | None = None) -> int:
    """Queue items for a reason (manual adds, the sampler, the label-error finder); return how many."""
    scores = [1.0] * len(item_ids) if scores is None else list(scores)
    with ws.store().atomic() as tx:
        sync_items(tx, ws)
        known = {r["item_id"] for r in tx.rows(
            "SELECT item_id FROM items WHERE item_id IN (SELECT unnest(?::VARCHAR[]))", [item_ids])}
        missing = sorted(set(item_ids) - known)
        if missing:
            raise NotFound(f"{len(missing)} items are not in the store, e.g. {missing[0]!r}")
        log_reasons(tx, ws, actor, item_ids, reason=reason, scores=scores, details=[detail] * len(item_ids))
    return len(item_ids)


def log_reasons(tx, ws: Workspace, actor: Actor, item_ids: list[str], *, reason: str, scores, details) -> None:
    """Log a queue reason for each item (score in [0, 1], detail or None) and refresh their rows, in `tx`."""
    actor.require(ws, "add_to_queue")
    if reason not in REASONS:
        raise FeedbackError(f"reason {reason!r} is not one of {', '.join(REASONS)}")
    if any(not 0.0 <= s <= 1.0 for s in scores):
        raise FeedbackError("queue scores must lie in [0, 1]")
    append_reasons(tx, list(item_ids), reason=reason, scores=scores, actor=actor.name, details=details)
    refresh_items(tx, ws, list(item_ids))


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
