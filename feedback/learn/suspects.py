"""Suspected label errors: trusted labels that an out-of-fold model contradicts.

The method is confident learning (Northcutt et al., 2021), written here on numpy: the
`cleanlab` package is AGPL-licensed and is never a dependency.

1. Out-of-fold probabilities: every labeled text is scored by a TF-IDF + logistic
   regression model that did not see it (`model.out_of_fold_proba`).
2. Per-label thresholds: the mean probability the model gives label k on the examples
   labeled k. An example's confident label is its most probable label among those whose
   probability reaches their threshold.
3. The confident joint C[given, confident] counts examples by given and confident label.
   Calibrated (each row rescaled to the number of examples with that given label), its
   off-diagonal cells estimate how many labels are wrong, and into which label.

Score convention: in [0, 1], higher means a person should look sooner. `disagreement` is
p(best other label) / (p(best other label) + p(given label)): above 0.5 exactly when the
model prefers another label to the given one.

Methods (`SUSPECT_METHODS`), measured in `bench/suspects.py`:
- `ranked` (default): the `expected_errors` examples of highest disagreement. Each example counts
  p(best other label), the chance that its likeliest other label is the true one, in full when the
  model prefers that label and in proportion (2 x disagreement) when it does not. Unlike the
  calibrated confident joint, this count follows the noise both where errors sit on ambiguous texts
  the model is unsure of (real human noise on news: 0.47 F1 where the joint's count gave 0.33) and
  where the model itself confuses two labels (planted flips between intents: 0.73, was 0.70);
- `confident_learning`: the examples off the diagonal of the confident joint;
- `disagreement`: every example whose out-of-fold prediction is not its label.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from ..errors import FeedbackError
from ..progress import Progress, Steps
from ..review.queue import log_reasons
from ..review.state import sync_items
from ..roles import Actor, system_actor
from ..workspace import Workspace
from .choices import DEFAULT_SUSPECT_METHOD, SUSPECT_METHODS, SUSPECTS_CONFIRMED_DAYS, SUSPECTS_MIN_EXAMPLES
from .jobs import JobBusy, job_lock
from .model import model_factory, out_of_fold_proba

FINDER = system_actor("label-error-finder")

# Trusted labels, with `settled`: adjudicated, or set or confirmed by a person (a live label decision or gold
# answer giving the current label) since the cutoff (the parameter) with no production event since
_TRUSTED = """
WITH live AS (SELECT item_id, kind, label, decided_at FROM decisions WHERE kind IN ('label', 'adjudicate')
              AND decision_id NOT IN (SELECT undoes FROM decisions WHERE kind = 'undo' AND undoes IS NOT NULL)
              UNION ALL SELECT item_id, 'gold', label, set_at FROM gold),
confirmed AS (SELECT l.item_id, max(l.decided_at) AS at, bool_or(l.kind = 'adjudicate') AS adjudicated
              FROM live l JOIN reviews r ON r.item_id = l.item_id AND r.current_label = l.label GROUP BY l.item_id)
SELECT i.item_id, i.text, r.current_label AS label, r.label_decision_id,
       coalesce(c.adjudicated OR (c.at >= ? AND (i.last_ts IS NULL OR i.last_ts <= c.at)), false) AS settled
FROM reviews r JOIN items i USING (item_id) LEFT JOIN confirmed c USING (item_id)
WHERE r.current_label IS NOT NULL AND i.text IS NOT NULL
ORDER BY i.item_id
"""
_FLAGGED = "SELECT DISTINCT item_id FROM queue_reasons WHERE reason = 'suspected_label_error'"


def confident_joint(labels, probs) -> tuple[np.ndarray, np.ndarray]:
    """The confident joint C[given, confident] and each example's confident label (-1 when none).

    `labels` are column indices of `probs` (examples x labels, out-of-fold).
    """
    labels, probs = np.asarray(labels), np.asarray(probs, dtype=float)
    k = probs.shape[1]
    counts = np.bincount(labels, minlength=k)
    sums = np.bincount(labels, weights=probs[np.arange(len(labels)), labels], minlength=k)
    thresholds = np.divide(sums, counts, out=np.full(k, np.inf), where=counts > 0)
    above = probs >= thresholds
    confident = np.where(above.any(axis=1), np.where(above, probs, -1.0).argmax(axis=1), -1)
    joint = np.zeros((k, k), dtype=np.int64)
    sure = confident >= 0
    np.add.at(joint, (labels[sure], confident[sure]), 1)
    return joint, confident


def _others(labels, probs) -> np.ndarray:
    """The probabilities with each example's given label left out (-inf)."""
    labels, others = np.asarray(labels), np.array(probs, dtype=float)
    others[np.arange(len(labels)), labels] = -np.inf
    return others


def best_other(labels, probs) -> np.ndarray:
    """Each example's most probable label other than its given one (what a suspect suggests instead)."""
    return _others(labels, probs).argmax(axis=1)


def disagreement(labels, probs) -> np.ndarray:
    """How much more the model believes its best other label than the given one, in [0, 1]."""
    labels, probs = np.asarray(labels), np.asarray(probs, dtype=float)
    given = probs[np.arange(len(labels)), labels]
    best = _others(labels, probs).max(axis=1)
    total = best + given
    return np.divide(best, total, out=np.full(len(labels), 0.5), where=total > 0)


def label_issues(labels, probs, *, method: str = DEFAULT_SUSPECT_METHOD) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the likely label errors, most likely first, and every example's disagreement score."""
    if method not in SUSPECT_METHODS:
        raise ValueError(f"method {method!r} is not one of {', '.join(SUSPECT_METHODS)}")
    labels, probs = np.asarray(labels), np.asarray(probs, dtype=float)
    if probs.ndim != 2 or len(labels) != len(probs):
        raise ValueError(f"labels ({len(labels)}) and probs {probs.shape} must have one row per example")
    score = disagreement(labels, probs)
    if method == "ranked":
        return np.argsort(-score, kind="stable")[:int(np.rint(expected_errors(labels, probs)))], score
    if method == "disagreement":
        flagged = probs.argmax(axis=1) != labels
    else:
        confident = confident_joint(labels, probs)[1]
        flagged = (confident >= 0) & (confident != labels)
    positions = np.flatnonzero(flagged)
    return positions[np.argsort(-score[positions], kind="stable")], score


def expected_errors(labels, probs) -> float:
    """How many of the labels are wrong, by the out-of-fold probabilities: the sum over examples of
    p(best other label) x min(1, 2 x disagreement). Mass the model spreads over many other labels is
    its own doubt, not evidence against the given one, so only the likeliest other label counts."""
    return float((_others(labels, probs).max(axis=1) * np.minimum(1.0, 2 * disagreement(labels, probs))).sum())


def find_suspects(ws: Workspace, *, method: str = DEFAULT_SUSPECT_METHOD, folds: int = 5, limit: int | None = None,
                  min_examples: int | None = None, dry_run: bool = False, scores: bool = False, seed: int = 0,
                  actor: Actor = FINDER, progress: Progress | None = None) -> dict:
    """Find trusted labels that look wrong and queue them (`suspected_label_error`), most suspicious first.

    Items flagged before are not queued again, nor are labels people settled: adjudicated, or set or
    confirmed within `[learn] suspects_confirmed_days` (30) with no production event about the item since
    (they still train the judging model). A label with fewer than `min_examples` trusted
    examples (`[learn] suspects_min_examples`, 10; at least `folds`) is too small to judge: its
    items are left out, and counted in the result's `too_few`. A suspect suggests the likeliest other
    label, never the one it has. With `scores`, the result also holds `scores`: every judged
    label's score and suggestion, flagged or not, so a caller can choose its own cutoff. The
    result's `status` is `done`, `nothing_to_do`, `dry_run` (suspects shown, nothing queued) or
    `busy` (another run holds the lock).

        found = feedback.learn.find_suspects(ws, limit=50)
        for s in found["suspects"]:
            print(s["item_id"], s["label"], "->", s["suggested"])
    """
    if method not in SUSPECT_METHODS:
        raise FeedbackError(f"method {method!r} is not one of {', '.join(SUSPECT_METHODS)}")
    if folds < 2:
        raise FeedbackError(f"folds {folds}: cross-validation needs at least 2")
    if limit is not None and limit < 1:
        raise FeedbackError(f"limit {limit}: give at least 1, or no limit")
    if min_examples is None:
        min_examples = ws.config.get("learn", {}).get("suspects_min_examples", SUSPECTS_MIN_EXAMPLES)
        if isinstance(min_examples, bool) or not isinstance(min_examples, int):
            raise FeedbackError(f"[learn] suspects_min_examples = {min_examples!r}: give a whole number of examples")
    if min_examples < folds:
        raise FeedbackError(f"min_examples {min_examples}: a label needs at least as many examples as folds ({folds})")
    actor.require(ws, "add_to_queue")
    options = {"method": method, "folds": folds, "limit": limit, "min_examples": min_examples, "seed": seed,
               "scores": scores}
    with Steps(progress, folds + 2, "reading the trusted labels") as job:
        try:
            if dry_run:
                return {**_find(ws, **options, job=job), "status": "dry_run", "queued": 0}
            with job_lock(ws, "suspects"):
                found = _find(ws, **options, job=job)
                if not found["suspects"]:
                    return {**found, "status": "nothing_to_do", "queued": 0}
                return _queue(ws, found, actor)
        except JobBusy as exc:
            return {"status": "busy", "message": str(exc), "suspects": []}


def _find(ws: Workspace, *, method: str, folds: int, limit: int | None, min_examples: int, seed: int, scores: bool,
          job: Steps) -> dict:
    store = ws.store()
    with store.atomic() as tx:
        sync_items(tx, ws)
        rows = tx.rows(_TRUSTED, [_now() - timedelta(days=_confirmed_days(ws))])
        flagged_before = {r["item_id"] for r in tx.rows(_FLAGGED)}
    if store.dialect != "duckdb":  # by code point, as DuckDB orders, whatever the server's collation
        rows.sort(key=lambda r: r["item_id"])
    names, counts = np.unique([r["label"] for r in rows], return_counts=True)
    judged = [r for r in rows if counts[np.searchsorted(names, r["label"])] >= min_examples]
    too_few = int((counts < min_examples).sum())
    result = {"method": method, "labeled": len(rows), "judged": len(judged), "too_few": too_few, "flagged": 0,
              "suspects": []}
    left_out = (f"; {len(rows) - len(judged)} in {too_few} labels with fewer than {min_examples} examples are "
                "not judged" if too_few else "")
    if len({r["label"] for r in judged}) < 2:
        return {**result, "message": f"nothing to do: {len(judged)} trusted labels in labels with {min_examples}+ "
                                     f"examples; judging needs two such labels or more{left_out}"}
    job.advance(stage=f"fold 1 of {folds}")
    probs, classes = out_of_fold_proba(
        [r["text"] for r in judged], [r["label"] for r in judged], folds=folds, factory=model_factory(ws.config)[0],
        seed=seed, on_fold=lambda k: job.advance(stage=f"fold {k + 1} of {folds}" if k < folds else "ranking"))
    labels = np.searchsorted(classes, [r["label"] for r in judged])
    positions, score = label_issues(labels, probs, method=method)
    suggested = classes[best_other(labels, probs)]
    fresh = [i for i in positions if judged[i]["item_id"] not in flagged_before and not judged[i]["settled"]][:limit]
    found = [{"item_id": judged[i]["item_id"], "text": judged[i]["text"], "label": judged[i]["label"],
              "suggested": str(suggested[i]), "score": float(score[i]),
              "label_decision_id": judged[i]["label_decision_id"]} for i in fresh]
    if scores:
        flagged = set(positions.tolist())
        result["scores"] = [{"item_id": r["item_id"], "label": r["label"], "suggested": str(suggested[i]),
                             "score": float(score[i]), "flagged": i in flagged} for i, r in enumerate(judged)]
    message = (f"{len(positions)} of {len(judged)} judged labels look wrong; {len(positions) - len(fresh)} of them "
               f"flagged before, settled by people, or over the limit{left_out}")
    return {**result, "flagged": len(positions), "suspects": found,
            "message": message if found else f"nothing to do: {message}"}


def _queue(ws: Workspace, found: dict, actor: Actor) -> dict:
    """Queue the suspects whose label has not changed and that nobody flagged meanwhile, in one transaction."""
    with ws.store().atomic() as tx:
        sync_items(tx, ws)
        current = {r["item_id"]: r["label_decision_id"] for r in tx.rows(
            f"SELECT item_id, label_decision_id FROM reviews WHERE current_label IS NOT NULL AND item_id NOT IN ({_FLAGGED}) "
            "AND item_id IN (SELECT unnest(?::VARCHAR[]))", [[s["item_id"] for s in found["suspects"]]])}
        still = [s for s in found["suspects"] if current.get(s["item_id"]) == s["label_decision_id"]]
        if still:
            log_reasons(tx, ws, actor, [s["item_id"] for s in still], reason="suspected_label_error",
                    scores=[s["score"] for s in still],
                    details=[{"method": found["method"], "label": s["label"], "suggested": s["suggested"]}
                             for s in still])
    if not still:
        return {**found, "status": "nothing_to_do", "queued": 0, "suspects": [],
                "message": "nothing to do: the suspects were relabeled or flagged meanwhile"}
    return {**found, "status": "done", "queued": len(still), "suspects": still,
            "message": f"queued {len(still)} suspected label errors; {found['message']}"}


def _confirmed_days(ws: Workspace) -> float:
    days = ws.config.get("learn", {}).get("suspects_confirmed_days", SUSPECTS_CONFIRMED_DAYS)
    if isinstance(days, bool) or not isinstance(days, (int, float)) or days < 0:
        raise FeedbackError(f"[learn] suspects_confirmed_days = {days!r}: give a number of days, 0 or more")
    return float(days)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
