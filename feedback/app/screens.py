"""What the app's screens show, each gathered by one call (the app holds no queries or rules)."""

from __future__ import annotations

import json

import pandas as pd

from ..monitor.checks import drift
from ..review.decisions import item_history
from ..review.groups import similar_items
from ..review.queue import QueueFilter, claim_next
from ..roles import Actor
from ..workspace import Workspace


def review_screen(ws: Workspace, actor: Actor, flt: QueueFilter = QueueFilter(), *, exclude=(),
                  similar_pool: int = 20_000) -> dict | None:
    """The reviewer's next item (claimed), its top predicted classes, its history and similar items: one transaction."""
    with ws.store().atomic() as tx:
        row = claim_next(tx, ws, actor, flt, exclude=exclude)
        if row is None:
            return None
        item_id = row["item_id"]
        similar = similar_items(tx, item_id, row["text"], limit=5, max_items=similar_pool) if row["text"] else []
        return {"item": row, "probs": _probabilities(tx, item_id), "history": item_history(tx, item_id),
                "similar": similar}


def _probabilities(tx, item_id: str) -> dict[str, float]:
    """The latest prediction's per-class probabilities, highest first."""
    raw = tx.value("SELECT arg_max(pred_probs, seq) FROM events WHERE item_id = ? AND type = 'prediction'", [item_id])
    probs = json.loads(raw) if raw else {}
    return dict(sorted(probs.items(), key=lambda kv: -kv[1]))


def quick_labels(ws: Workspace, item: dict, probs: dict[str, float], *, size: int = 9) -> list[str]:
    """Labels for the number keys: the user's correction, the prediction, then the likeliest alternatives."""
    picks = [item.get("corr_label"), item.get("pred_label"), *probs]
    allowed = [p for p in dict.fromkeys(picks) if p and ws.taxonomy.accepts(p)]
    return allowed[:size]


def adjudication_queue(ws: Workspace, *, limit: int = 50) -> list[dict]:
    """Disputed items with each reviewer's live decision side by side."""
    with ws.store().connect() as tx:
        items = tx.rows(
            "SELECT i.item_id, i.text, i.pred_label, i.corr_label FROM reviews r JOIN items i USING (item_id) "
            "WHERE r.status = 'disputed' ORDER BY i.priority DESC, i.item_id LIMIT ?", [limit])
        votes = tx.rows(
            "SELECT item_id, reviewer, arg_max(coalesce(label, kind), decided_at) AS decision, max(decided_at) AS last_at "
            "FROM decisions WHERE item_id IN (SELECT unnest(?::VARCHAR[])) AND kind IN ('label', 'unsure', 'skip', 'junk') "
            "AND decision_id NOT IN (SELECT undoes FROM decisions WHERE kind = 'undo') GROUP BY item_id, reviewer "
            "ORDER BY last_at", [[i["item_id"] for i in items]])
    by_item: dict[str, dict[str, str]] = {i["item_id"]: {} for i in items}
    for v in votes:
        by_item[v["item_id"]][v["reviewer"]] = v["decision"]
    return [{**i, "decisions": by_item[i["item_id"]]} for i in items]


def recent_batches(ws: Workspace, *, limit: int = 20) -> list[dict]:
    """Group relabel batches, newest first, with how many of their decisions are still live."""
    return ws.store().rows(
        "SELECT batch_id, any_value(label) FILTER (WHERE kind <> 'undo') AS label, "
        "any_value(reviewer) AS reviewer, min(decided_at) AS started, "
        "count(*) FILTER (WHERE kind <> 'undo') - count(*) FILTER (WHERE kind = 'undo') AS live "
        "FROM decisions WHERE batch_id IS NOT NULL GROUP BY batch_id ORDER BY started DESC LIMIT ?", [limit])


def drift_figures(ws: Workspace) -> dict:
    """The drift report of recent production against the latest release, shaped for the dashboard's charts:
    the label mix is that of the model version that moved most, its labels with the largest PSI parts."""
    report = drift(ws)
    worst = max(report["label_mix"], key=lambda m: m["psi"], default={"model_version": None, "by_label": []})
    mix = [{"label": b["label"], "source": source, "share": b[source]}
           for b in worst["by_label"] for source in ("recent", "release")]
    return {"window": report["window"], "release": report["release"], "checks": report["checks"],
            "model_version": worst["model_version"], "label_mix": pd.DataFrame(mix, columns=["label", "source", "share"]),
            "confidence": pd.DataFrame(report["confidence"], columns=["model_version", "ks", "median", "median_before"]),
            "novel_terms": pd.DataFrame([{**{k: t[k] for k in ("term", "recent", "release")}, "g2": round(t["g2"], 1),
                                          "examples": ", ".join(t["examples"])} for t in report["novel_terms"]],
                                        columns=["term", "recent", "release", "g2", "examples"])}
