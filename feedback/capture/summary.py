"""What the store holds: counts by type, model version and label, time range, backlog, open quarantine."""

from __future__ import annotations

from ..workspace import Workspace
from . import spool
from .quarantine import OPEN


def status(ws: Workspace) -> dict:
    """A summary of the workspace as plain data (the shape of `feedback status --json`)."""
    with ws.store().connect() as tx:
        summary = tx.rows(
            "SELECT count(*) AS events, count(DISTINCT item_id) AS items, min(ts) AS first, max(ts) AS last, "
            "max(seq) AS watermark FROM events"
        )[0]
        by_type = {r["type"]: r["n"] for r in tx.rows("SELECT type, count(*) AS n FROM events GROUP BY 1 ORDER BY 1")}
        by_model = {r["v"]: r["n"] for r in tx.rows(
            "SELECT coalesce(model_version, '(none)') AS v, count(*) AS n FROM events "
            "WHERE type = 'prediction' GROUP BY 1 ORDER BY 1")}
        quarantine = tx.rows(f"SELECT q.reason, ({OPEN}) AS open, count(*) AS n FROM quarantine q GROUP BY 1, 2")
        reviews = {r["status"]: r["n"] for r in tx.rows(
            "SELECT status, count(*) AS n FROM reviews GROUP BY 1 ORDER BY 2 DESC, 1")}
    return {
        "workspace": str(ws.root),
        "dataset": ws.dataset,
        "events": summary["events"],
        "items": summary["items"],
        "by_type": by_type,
        "by_model_version": by_model,
        "labels": label_counts(ws),
        "first_event": summary["first"].isoformat() if summary["first"] else None,
        "last_event": summary["last"].isoformat() if summary["last"] else None,
        "watermark": summary["watermark"] or 0,
        "spool_pending": spool.pending_events(ws.path("spool")),
        "reviews": reviews,
        "second_review": reviews.get("second_review", 0),
        "quarantined": sum(r["n"] for r in quarantine if r["open"]),
        "quarantine_resolved": sum(r["n"] for r in quarantine if not r["open"]),
        "quarantine_by_reason": dict(sorted(((r["reason"], r["n"]) for r in quarantine if r["open"]),
                                            key=lambda pair: (-pair[1], pair[0]))),
    }


def label_counts(ws: Workspace) -> dict[str, dict]:
    """Every label of the taxonomy (fixed) or seen in events (open), with how often it was predicted and corrected."""
    rows = ws.store().rows(
        "SELECT label, count(*) FILTER (WHERE kind = 'p') AS predicted, count(*) FILTER (WHERE kind = 'c') AS corrected "
        "FROM (SELECT pred_label AS label, 'p' AS kind FROM events WHERE pred_label IS NOT NULL "
        "      UNION ALL SELECT corr_label, 'c' FROM events WHERE corr_label IS NOT NULL) AS u GROUP BY label ORDER BY label"
    )
    seen = {r["label"]: {"predicted": r["predicted"], "corrected": r["corrected"]} for r in rows}
    if ws.taxonomy.mode == "open":
        return seen
    return {name: seen.get(name, {"predicted": 0, "corrected": 0}) for name in sorted(ws.taxonomy.names)}
