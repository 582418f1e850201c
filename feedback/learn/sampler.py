"""The active-learning sampler: runs that queue the unlabeled items a model would learn most from.

A run (`sample`):
1. reads, in one short transaction, the pool: every item with text that has no trusted
   label (not labeled, junk or disputed), is not waiting for review as an earlier pick, and was
   not picked by the last `recent_runs` runs, with its latest stored production probabilities
   and score; and the trusted labels. An item queued for another reason (low confidence, a
   correction) stays in the pool: a pick adds `active_learning` to its reasons and priority;
2. scores the pool without holding the store (`probabilities="auto"`): with a model fitted on
   the trusted labels when there are enough of them (`MIN_TRUSTED`, two labels or more) and
   the stored probabilities are missing for half the pool, come from an older model version,
   or predate labels decided since that version started; else with the stored probabilities;
   else, with neither, by least confidence on the logged top-1 score; else, with no score
   either, with a model fitted on as few labels as there are (two labels or more). With no
   labels at all, a first run picks typical texts of the whole pool, the cold start of
   `strategies`. Then it picks a diverse batch (`strategies`);
3. in one short transaction, keeps the picks that are still eligible, queues them with the
   reason `active_learning` and their score, and records the run (`sampler_runs`) and its
   picks (`sampler_picks`).

Made for cron: one run at a time per workspace (`job_lock`); the write re-checks that each
pick is still eligible, so even runs that do not share the lock never queue an item twice;
a run `key` (e.g. the scheduled time) makes a retried run a no-op; a run that finds nothing
to do is recorded and says so.

Yield (`report`): of a run's picks that reviewers have labeled since, the share whose label
differs from the model's prediction at pick time. A high yield means the sampler finds the
items the model gets wrong.
"""

from __future__ import annotations

import json
import uuid

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import FeedbackError
from ..progress import Progress, Steps
from ..review.queue import log_reasons
from ..review.state import sync_items
from ..roles import Actor, system_actor
from ..store import scratch
from ..workspace import Workspace
from .choices import DEFAULT_DIVERSITY, DEFAULT_STRATEGY, DIVERSITY, PROBABILITIES, QUOTA_FIELDS, STRATEGIES
from .jobs import JobBusy, job_lock, now
from .model import fit_predict_proba, model_factory
from .strategies import select, uncertainty

SAMPLER = system_actor("sampler")
MIN_TRUSTED = 20  # trusted labels (of two labels or more) needed to fit a model

_ELIGIBLE = """i.text IS NOT NULL AND NOT list_contains(i.reasons, 'active_learning')
    AND i.item_id NOT IN (SELECT item_id FROM reviews WHERE current_label IS NOT NULL
                          OR status IN ('junk', 'disputed', 'second_review'))
    AND i.item_id NOT IN (SELECT item_id FROM sampler_picks WHERE run_id IN (
        SELECT run_id FROM sampler_runs WHERE picked > 0 ORDER BY started_at DESC LIMIT ?))"""
_CURRENT = """(SELECT model_version FROM events WHERE type = 'prediction' AND model_version IS NOT NULL
               ORDER BY ts DESC, seq DESC LIMIT 1)"""
_POOL = f"""
WITH latest AS (SELECT item_id, pred_probs FROM events
                WHERE seq IN (SELECT max(seq) FROM events WHERE type = 'prediction' GROUP BY item_id))
SELECT i.item_id, i.text, i.pred_label, i.pred_score, i.model_version, i.source,
       i.model_version IS NOT DISTINCT FROM {_CURRENT} AS fresh,
       {{probs}} AS probs
FROM items i LEFT JOIN latest l USING (item_id)
WHERE {_ELIGIBLE}
ORDER BY i.item_id
"""
_PROBS = "CAST(json_extract({}, '$.*') AS DOUBLE[])"  # the stored probabilities' values, in the JSON's order
# `since_model`: a person labeled it after the current model's first prediction (an imported label is what a
# model learned from, not news to it, whenever it was imported)
_TRUSTED = ("SELECT i.item_id, i.text, r.current_label AS label, d.kind <> 'import' AND d.decided_at > (SELECT "
            f"min(ts) FROM events WHERE type = 'prediction' AND model_version = {_CURRENT}) AS since_model "
            "FROM reviews r JOIN items i USING (item_id) LEFT JOIN decisions d ON d.decision_id = r.label_decision_id "
            "WHERE r.current_label IS NOT NULL AND i.text IS NOT NULL")


def sample(ws: Workspace, *, budget: int = 100, strategy: str = DEFAULT_STRATEGY,
           diversity: str = DEFAULT_DIVERSITY, quotas: dict[str, int] | None = None, probabilities: str = "auto",
           recent_runs: int = 10, key: str | None = None, dry_run: bool = False, seed: int = 0,
           actor: Actor = SAMPLER, progress: Progress | None = None) -> dict:
    """Pick up to `budget` unlabeled items and queue them for review (`active_learning`); return the run.

    `quotas` caps the picks per value of a field, e.g. {"pred_label": 5}. The run's
    `status` is `done`, `nothing_to_do`, `dry_run` (picks shown, nothing written), `busy`
    (another run holds the lock; nothing done) or `repeat` (`key` ran before; nothing done).

        run = feedback.learn.sample(ws, budget=200, key="2026-w48")
        print(run["message"])   # queued 200 of 48,112 scored items (tf-idf + logistic regression ...)
    """
    params = {"budget": budget, "diversity": diversity, "quotas": dict(quotas or {}), "probabilities": probabilities,
              "recent_runs": recent_runs, "seed": seed}
    _check(strategy, params)
    actor.require(ws, "add_to_queue")
    with Steps(progress, 4, "reading the pool") as job:
        try:
            if dry_run:
                return {**_plan(ws, strategy, params, job), "status": "dry_run"}
            with job_lock(ws, "sample"):
                earlier = key and _run_with_key(ws, key)
                if earlier:
                    return {**earlier, "status": "repeat", "picks": [],
                            "message": f"run key {key!r} already ran as {earlier['run_id']}; nothing done"}
                started = now()
                return _record(ws, _plan(ws, strategy, params, job), actor=actor, key=key, started=started)
        except JobBusy as exc:
            return {"status": "busy", "message": str(exc), "picks": []}


def sampler_report(ws: Workspace, *, runs: int = 20) -> dict:
    """The latest runs, newest first, with their yield so far, and the totals over them."""
    rows = ws.store().rows(
        """
        WITH recent AS (SELECT * FROM sampler_runs ORDER BY started_at DESC LIMIT ?)
        SELECT r.run_id, r.started_at, r.status, r.strategy, r.model, r.picked,
               count(v.item_id) FILTER (WHERE v.status = 'labeled') AS reviewed,
               count(v.item_id) FILTER (WHERE v.status = 'labeled' AND v.current_label IS DISTINCT FROM p.predicted)
                   AS relabeled
        FROM recent r LEFT JOIN sampler_picks p USING (run_id) LEFT JOIN reviews v USING (item_id)
        GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY r.started_at DESC
        """, [runs])
    total = {key: sum(r[key] for r in rows) for key in ("picked", "reviewed", "relabeled")}
    return {"runs": [{**r, "yield": _share(r)} for r in rows], "total": {**total, "yield": _share(total)}}


def _share(counts: dict) -> float | None:
    return counts["relabeled"] / counts["reviewed"] if counts["reviewed"] else None


def _check(strategy: str, params: dict) -> None:
    choices = {"strategy": (strategy, STRATEGIES), "diversity": (params["diversity"], DIVERSITY),
               "probabilities": (params["probabilities"], PROBABILITIES)}
    for name, (value, allowed) in choices.items():
        if value not in allowed:
            raise FeedbackError(f"{name} {value!r} is not one of {', '.join(allowed)}")
    if params["budget"] < 1:
        raise FeedbackError(f"budget {params['budget']}: give at least 1 item")
    if params["recent_runs"] < 0:
        raise FeedbackError(f"recent_runs {params['recent_runs']}: give 0 or more")
    for field, cap in params["quotas"].items():
        if field not in QUOTA_FIELDS:
            raise FeedbackError(f"quota field {field!r} is not one of {', '.join(QUOTA_FIELDS)}")
        if cap < 1:
            raise FeedbackError(f"quota {field}={cap}: allow at least 1 pick per value")


def _run_with_key(ws: Workspace, key: str) -> dict | None:
    rows = ws.store().rows("SELECT * FROM sampler_runs WHERE run_key = ? ORDER BY started_at DESC LIMIT 1", [key])
    return rows[0] if rows else None


def _plan(ws: Workspace, strategy: str, params: dict, job: Steps) -> dict:
    """Read the pool, score it and choose the picks; nothing is written."""
    with ws.store().atomic() as tx:
        sync_items(tx, ws)
        pool = _pool(tx, params["recent_runs"])
        # by id, in code point order whatever the store and its collation: the same labels fit the same model
        trusted = sorted(tx.rows(_TRUSTED), key=lambda row: row["item_id"])
    plan = {"strategy": strategy, "params": params, "pool": pool.num_rows, "scored": 0, "model": None, "picks": []}
    job.advance(stage="scoring the pool")
    try:
        if not pool.num_rows:
            raise _NothingToDo("every item with text is labeled, waiting as an earlier pick, or recently picked")
        classes = len(ws.taxonomy.names) if ws.taxonomy.mode == "fixed" else None  # a stored row's label count
        positions, scores, predicted, model, labels_per_class = _scored(
            pool, trusted, strategy, params["probabilities"], params["seed"], model_factory(ws.config), classes)
    except _NothingToDo as exc:
        return {**plan, "message": f"nothing to do: {exc}"}
    job.advance(stage="choosing the picks")
    column = {name: pool.column(name).take(positions) for name in ("text", *params["quotas"])}
    values = {name: array.to_numpy(zero_copy_only=False) for name, array in column.items()}
    chosen = select(scores, values["text"], budget=params["budget"], diversity=params["diversity"],
                    quotas=[(values[name], cap) for name, cap in params["quotas"].items()], seed=params["seed"],
                    labels_per_class=labels_per_class)
    rows = pool.select(["item_id", "text", "pred_label", "model_version", "source"]).take(positions[chosen]).to_pylist()
    labels = predicted.take(chosen).to_pylist()
    picks = [{**row, "rank": rank, "score": float(scores[i]), "predicted": label}
             for rank, (row, i, label) in enumerate(zip(rows, chosen, labels), start=1)]
    job.advance(stage="queueing the picks")
    message = f"picked {len(picks)} of {len(positions):,} scored items ({model})"
    return {**plan, "scored": len(positions), "model": model, "picks": picks, "message": message}


def _pool(tx, recent_runs: int) -> pa.Table:
    """The pool, by item id, its probabilities as lists (read out of their JSON by DuckDB)."""
    if tx.dialect == "duckdb":
        return tx.arrow(_POOL.format(probs=_PROBS.format("l.pred_probs")), [recent_runs])
    pool = tx.arrow(_POOL.format(probs="l.pred_probs::TEXT"), [recent_runs])
    with scratch() as db, db.registered(pool) as name:
        return db.arrow(f"SELECT * REPLACE ({_PROBS.format('probs::JSON')} AS probs) FROM {name} ORDER BY item_id")


class _NothingToDo(Exception):
    """Why a run cannot pick anything."""


def _scored(pool: pa.Table, trusted: list[dict], strategy: str, probabilities: str, seed: int, text_model: tuple,
            classes: int | None):
    """The pool positions scored, their uncertainty scores and predicted labels, the model's description, and the
    labels per class it learned from (None for a production model's stored probabilities or scores)."""
    lengths = pc.list_value_length(pool.column("probs")).fill_null(0).to_numpy()
    fresh = np.flatnonzero(pool.column("fresh").to_numpy(zero_copy_only=False) & (lengths > 0))
    two_labels = len({t["label"] for t in trusted}) >= 2
    fittable = len(trusted) >= MIN_TRUSTED and two_labels
    stale = len(fresh) < pool.num_rows / 2 or any(t["since_model"] for t in trusted)
    source = probabilities
    if probabilities == "auto":
        if not len(fresh) and pool.column("pred_score").null_count == pool.num_rows:  # nothing stored to go by
            source = "fit" if two_labels else "typical"
        else:
            source = "fit" if fittable and stale else "stored"
    if source == "typical":
        return _typical(pool, seed)
    if source == "fit":
        if probabilities == "fit" and not fittable:
            raise _NothingToDo(f"{len(trusted)} trusted labels; fitting a model needs {MIN_TRUSTED} in two labels or "
                               "more (label more items, or use the stored probabilities)")
        factory, described = text_model
        probs, classes = fit_predict_proba([t["text"] for t in trusted], [t["label"] for t in trusted],
                                           [*pool.column("text").to_pylist(), ""], seed=seed, factory=factory)
        probs, blank = probs[:-1], probs[-1]
        predicted = pa.array(classes.tolist()).take(probs.argmax(axis=1))
        scores = uncertainty(probs, strategy)
        # A text that shares no word with the trusted ones reads as the empty text: its flat probabilities
        # say nothing about what the model would learn from it, so it goes last, not first
        scores[np.isclose(probs, blank, rtol=0, atol=1e-12).all(axis=1)] = 0.0
        return (np.arange(pool.num_rows), scores, predicted, f"{described} fitted on {len(trusted)} trusted labels",
                len(trusted) / len(classes))
    if not len(fresh) and probabilities == "auto":
        return _by_score(pool, len(trusted))
    if not len(fresh):
        raise _NothingToDo("no pool item has stored probabilities from the latest model version, and "
                           f"{len(trusted)} trusted labels are too few to fit a model (need {MIN_TRUSTED})")
    version = pool.column("model_version")[int(fresh[0])].as_py()
    probs, predicted = _padded(pool.column("probs").take(fresh)), pool.column("pred_label").take(fresh)
    return (fresh, uncertainty(probs, strategy, classes=classes), predicted,
            f"stored probabilities of model version {version}", None)


def _typical(pool: pa.Table, seed: int):
    """The whole pool, in an order drawn by `seed`, for a first run with no labels, probabilities or scores:
    all alike unknown (score 1), so the diversity step picks typical texts across the pool."""
    positions = np.random.default_rng(seed).permutation(pool.num_rows)
    return (positions, np.ones(len(positions)), pool.column("pred_label").take(positions),
            "typical texts of the pool (no labels, probabilities or scores yet)", 0.0)


def _by_score(pool: pa.Table, trusted: int):
    """The pool items with a logged top-1 score, scored by least confidence (1 - score), which needs no more."""
    scored = np.flatnonzero(np.asarray(pool.column("pred_score").is_valid()))
    if not len(scored):
        raise _NothingToDo("no pool item has stored probabilities or a score, and "
                           f"{trusted} trusted labels are too few to fit a model (need {MIN_TRUSTED})")
    confidence = pool.column("pred_score").take(scored).to_numpy()
    return (scored, np.clip(1.0 - confidence, 0.0, 1.0), pool.column("pred_label").take(scored),
            "least confidence on the logged top-1 scores (too few labels to fit)", None)


def _padded(lists: pa.ChunkedArray) -> np.ndarray:
    """A list<double> column (no nulls) as a matrix, short rows padded with zeros."""
    lists = lists.combine_chunks()
    lengths = pc.list_value_length(lists).to_numpy()
    values = pc.list_flatten(lists).to_numpy()
    if (lengths == lengths[0]).all():
        return values.reshape(len(lists), lengths[0])
    matrix = np.zeros((len(lists), int(lengths.max())))
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    matrix[np.repeat(np.arange(len(lists)), lengths), np.arange(len(values)) - starts] = values
    return matrix


def _record(ws: Workspace, plan: dict, *, actor: Actor, key: str | None, started) -> dict:
    """Queue the picks still eligible, and record the run and its picks, in one transaction."""
    run_id = f"run-{started:%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
    wanted = [p["item_id"] for p in plan["picks"]]
    with ws.store().atomic() as tx:
        sync_items(tx, ws)
        still = {r["item_id"] for r in tx.rows(
            f"SELECT i.item_id FROM items i WHERE i.item_id IN (SELECT unnest(?::VARCHAR[])) AND {_ELIGIBLE}",
            [wanted, plan["params"]["recent_runs"]])}
        picks = [p for p in plan["picks"] if p["item_id"] in still]
        if picks:
            log_reasons(tx, ws, actor, [p["item_id"] for p in picks], reason="active_learning",
                    scores=[p["score"] for p in picks],
                    details=[{"run_id": run_id, "strategy": plan["strategy"], "rank": p["rank"]} for p in picks])
        status = "done" if picks else "nothing_to_do"
        message = plan["message"]
        if picks:
            message = f"queued {len(picks)} of {plan['scored']:,} scored items ({plan['model']})"
        if len(picks) < len(wanted):
            message += f"; {len(wanted) - len(picks)} of the picks were queued or labeled meanwhile and left out"
        run = {"run_id": run_id, "run_key": key, "started_at": started, "finished_at": now(), "actor": actor.name,
               "strategy": plan["strategy"], "params": json.dumps(plan["params"]), "model": plan["model"],
               "pool": plan["pool"], "picked": len(picks), "status": status, "message": message}
        tx.insert("sampler_runs", pa.Table.from_pylist([run], schema=_RUN_SCHEMA))
        tx.insert("sampler_picks", pa.Table.from_pylist(
            [{"run_id": run_id, **{k: p[k] for k in _PICK_SCHEMA.names[1:]}} for p in picks], schema=_PICK_SCHEMA))
    return {**plan, **run, "params": plan["params"], "picks": picks}


_RUN_SCHEMA = pa.schema([
    ("run_id", pa.string()), ("run_key", pa.string()), ("started_at", pa.timestamp("us")),
    ("finished_at", pa.timestamp("us")), ("actor", pa.string()), ("strategy", pa.string()), ("params", pa.string()),
    ("model", pa.string()), ("pool", pa.int64()), ("picked", pa.int64()), ("status", pa.string()),
    ("message", pa.string()),
])
_PICK_SCHEMA = pa.schema([
    ("run_id", pa.string()), ("item_id", pa.string()), ("rank", pa.int32()), ("score", pa.float64()),
    ("predicted", pa.string()),
])
