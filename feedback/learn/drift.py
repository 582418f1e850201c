"""Drift and novelty: how recent production differs from what the latest release taught the model.

The window is the last `window_days` of production (`[drift]` in feedback.toml), up to the newest
event, or the events since a given time. Measures:
- label mix, per model version: the predicted labels of the window against the labels of the latest
  release, as the population stability index (PSI = sum over labels of (p - q) ln(p / q), with every
  share at least 1e-4) and the Jensen-Shannon distance (base 2, in [0, 1]), with each label's part
  of the PSI;
- confidence: the Kolmogorov-Smirnov distance between the window's prediction scores and those
  of the same model version before the window;
- error and correction rates of the window (errors per request, corrections per prediction);
- novel vocabulary: words and 2-grams (of the normalised texts) that at least `novelty_min_count`
  window texts carry and at most a tenth as often, per text, the release's texts do, ranked by
  Dunning's log-likelihood ratio G2 (at least `novelty_min_g2`: p < 1e-4), each with example items.
Each measure with a threshold is a check (`pass`, `fail`, or `skip` with too few events); a failed
check is what `feedback drift` exits 1 on. Items that carry the top novel terms can be queued with
the reason `novelty`. Everything is read in one short transaction and computed with DuckDB in
memory on the Arrow data, the store released.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..review.queue import log_reasons
from ..progress import Steps
from ..roles import Actor, system_actor
from ..store import scratch
from ..workspace import Workspace

DEFAULTS = {"window_days": 7, "min_events": 200, "max_psi": 0.25, "max_js": 0.3, "max_score_shift": 0.2,
            "max_error_rate": 0.05, "max_correction_rate": 0.2, "novelty_min_count": 5, "novelty_min_g2": 15.0,
            "max_novel_terms": 5, "novelty_examples": 3}
WATCHER = system_actor("drift-watcher")
_FLOOR = 1e-4  # the smallest share a label gets in the PSI and the distance
_WINDOW = """
SELECT e.item_id, e.type, e.ts, e.pred_label, e.pred_score, coalesce(e.model_version, '(none)') AS model_version,
       coalesce(e.input_text, i.text) AS text
FROM events e LEFT JOIN items i USING (item_id)
WHERE e.type IN ('prediction', 'correction', 'error') AND e.ts >= ?
"""
_BEFORE = ("SELECT coalesce(model_version, '(none)') AS model_version, pred_score FROM events "
           "WHERE type = 'prediction' AND pred_score IS NOT NULL AND ts < ?")
_TERMS = r"""
WITH docs AS (SELECT {key} AS doc, string_split(trim(regexp_replace(lower(text), '[^\p{{L}}\p{{N}}]+', ' ', 'g')), ' ') AS w
              FROM {table} WHERE text IS NOT NULL),
grams AS (SELECT doc, list_distinct(list_filter(w || list_transform(range(1, len(w)), lambda k: w[k] || ' ' || w[k + 1]),
                                                lambda t: t <> '')) AS terms FROM docs)
SELECT term, count(*) AS docs{examples} FROM (SELECT doc, unnest(terms) AS term FROM grams) GROUP BY term
"""
_NOVEL = """
WITH recent AS ({recent}), known AS ({known})
SELECT r.term, r.docs AS recent, coalesce(k.docs, 0) AS release, r.examples
FROM recent r LEFT JOIN known k USING (term)
WHERE r.docs >= ? AND coalesce(k.docs, 0) * ? <= r.docs * ? / 10.0
"""


def drift_config(ws: Workspace) -> dict:
    return {**DEFAULTS, **ws.config.get("drift", {})}


def drift_report(ws: Workspace, release: pa.Table | None, *, release_name: str | None = None,
                 since: datetime | None = None, queue: int = 0, actor: Actor = WATCHER,
                 job: Steps | None = None) -> dict:
    """Recent production against a release's examples (`id`, `text`, `label`; None: no release yet): the
    measures, the novel terms and the checks. With `queue`, the items carrying the top `queue` novel
    terms are queued with the reason `novelty`. `job` hears of the reading and the measuring (3 steps).
    """
    job = job or Steps(None, 3)
    job.advance(stage="reading the window")
    cfg = drift_config(ws)
    with ws.store().connect() as tx:
        newest = tx.value("SELECT max(ts) FROM events WHERE type IN ('prediction', 'correction', 'error')")
        start = since or (newest - timedelta(days=float(cfg["window_days"])) if newest else None)
        window = tx.arrow(_WINDOW, [start]) if start else pa.table({"type": pa.array([], pa.string())})
        before = tx.arrow(_BEFORE, [start]) if start else None
    report = {"window": {"from": start, "to": newest, "events": window.num_rows}, "release": release_name}
    job.advance(stage=f"measuring {window.num_rows:,} events")
    report.update(_measures(window, before, release, cfg))
    job.advance(stage="checking the thresholds")
    report["checks"] = _checks(report, cfg)
    if queue and report["novel_terms"]:
        report["queued"] = _queue_novelty(ws, report["novel_terms"][:queue], actor)
    return report


def _measures(window: pa.Table, before: pa.Table | None, release: pa.Table | None, cfg: dict) -> dict:
    predictions = window.filter(pc.equal(window["type"], "prediction")) if window.num_rows else window
    requests = predictions.num_rows + (_count(window, "error"))
    out = {"requests": requests, "label_mix": [], "confidence": [], "novel_terms": [],
           "error_rate": _count(window, "error") / requests if requests else None,
           "correction_rate": _count(window, "correction") / predictions.num_rows if predictions.num_rows else None}
    if release is None or not predictions.num_rows:
        return out
    reference = _shares(release["label"].to_pylist())
    for version in sorted(set(predictions["model_version"].to_pylist())):
        rows = predictions.filter(pc.equal(predictions["model_version"], version))
        out["label_mix"].append({"model_version": version, "predictions": rows.num_rows,
                                 **_label_shift(_shares(rows["pred_label"].to_pylist()), reference)})
        scores = rows["pred_score"].drop_null().to_numpy()
        earlier = before.filter(pc.equal(before["model_version"], version))["pred_score"].to_numpy()
        if len(scores) and len(earlier):
            out["confidence"].append({"model_version": version, "ks": _ks(scores, earlier),
                                      "median": float(np.median(scores)), "median_before": float(np.median(earlier))})
    out["novel_terms"] = _novel_terms(window.filter(pc.is_valid(window["text"])), release, cfg)
    return out


def _count(window: pa.Table, kind: str) -> int:
    return int(pc.sum(pc.equal(window["type"], kind)).as_py() or 0) if window.num_rows else 0


def _shares(labels: list) -> dict[str, float]:
    names, counts = np.unique(np.asarray([str(x) for x in labels if x is not None], dtype=object), return_counts=True)
    return dict(zip(names.tolist(), (counts / counts.sum()).tolist())) if len(names) else {}


def _label_shift(recent: dict[str, float], reference: dict[str, float]) -> dict:
    labels = sorted(set(recent) | set(reference))
    p = np.maximum(np.array([recent.get(k, 0.0) for k in labels]), _FLOOR)
    q = np.maximum(np.array([reference.get(k, 0.0) for k in labels]), _FLOOR)
    p, q = p / p.sum(), q / q.sum()
    parts = (p - q) * np.log(p / q)
    m = (p + q) / 2
    js = math.sqrt(max(0.0, 0.5 * float(np.sum(p * np.log2(p / m)) + np.sum(q * np.log2(q / m)))))
    top = np.argsort(-parts)[:10]
    return {"psi": float(parts.sum()), "js": js,
            "by_label": [{"label": labels[k], "recent": float(p[k]), "release": float(q[k]), "psi": float(parts[k])}
                         for k in top]}


def _ks(a: np.ndarray, b: np.ndarray) -> float:
    """The Kolmogorov-Smirnov distance between two samples: the largest gap between their CDFs."""
    grid = np.sort(np.concatenate([a, b]))
    return float(np.max(np.abs(np.searchsorted(np.sort(a), grid, side="right") / len(a)
                               - np.searchsorted(np.sort(b), grid, side="right") / len(b))))


def _novel_terms(window: pa.Table, release: pa.Table, cfg: dict) -> list[dict]:
    docs = window.group_by("item_id").aggregate([("text", "min")]).rename_columns(["item_id", "text"])
    release = release.select(["id", "text"])
    n_recent, n_release = docs.num_rows, release.num_rows
    if not n_recent or not n_release:
        return []
    with scratch() as tx, tx.registered(docs) as recent_table, tx.registered(release) as release_table:
        rows = tx.rows(_NOVEL.format(
            recent=_TERMS.format(key="item_id", table=recent_table,
                                 examples=f", min(doc, {int(cfg['novelty_examples'])}) AS examples"),
            known=_TERMS.format(key="id", table=release_table, examples="")),
            [int(cfg["novelty_min_count"]), n_recent, n_release])
    found = [{**row, "g2": g2} for row in rows
             if (g2 := _g2(row["recent"], n_recent, row["release"], n_release)) >= float(cfg["novelty_min_g2"])]
    found.sort(key=lambda t: (-t["g2"], t["term"].count(" "), t["term"]))
    novel_words = {t["term"]: t["recent"] for t in found if " " not in t["term"]}
    return [t for t in found if " " not in t["term"]  # a 2-gram that only repeats a novel word says nothing more
            or not any(novel_words.get(word, 0) >= t["recent"] for word in t["term"].split())]


def _g2(a: int, n_a: int, b: int, n_b: int) -> float:
    """Dunning's log-likelihood ratio for a term in a of n_a texts against b of n_b texts."""
    total, both = n_a + n_b, a + b
    expected_a, expected_b = n_a * both / total, n_b * both / total
    terms = [(a, expected_a), (b, expected_b), (n_a - a, n_a - expected_a), (n_b - b, n_b - expected_b)]
    return 2.0 * sum(o * math.log(o / e) for o, e in terms if o > 0 and e > 0)


def _checks(report: dict, cfg: dict) -> list[dict]:
    enough = report["requests"] >= int(cfg["min_events"])
    few = f"{report['requests']:,} requests in the window; drift is judged from {cfg['min_events']:,} ([drift] min_events)"
    if report["release"] is None:
        return [{"name": "release", "status": "skip", "message": "no release yet to compare production with"}]

    def check(name: str, value, limit, what: str, detail: str = "") -> dict:
        if not enough or value is None:
            return {"name": name, "status": "skip", "message": few if not enough else f"no {what} to measure"}
        ok = value <= float(limit)
        return {"name": name, "status": "pass" if ok else "fail", "value": value,
                "message": f"{what} {value:.3g} ({'within' if ok else 'over'} {float(limit):g}){detail}"}

    worst_mix = max(report["label_mix"], key=lambda m: m["psi"], default=None)
    worst_ks = max(report["confidence"], key=lambda c: c["ks"], default=None)
    novel = report["novel_terms"]
    return [
        check("label mix", worst_mix and worst_mix["psi"], cfg["max_psi"],
              f"label PSI{' of model ' + worst_mix['model_version'] if worst_mix else ''}"),
        check("label distance", worst_mix and worst_mix["js"], cfg["max_js"], "label Jensen-Shannon distance"),
        check("confidence", worst_ks and worst_ks["ks"], cfg["max_score_shift"], "score distribution shift (KS)"),
        check("error rate", report["error_rate"], cfg["max_error_rate"], "error rate"),
        check("correction rate", report["correction_rate"], cfg["max_correction_rate"], "correction rate"),
        check("novel vocabulary", len(novel), cfg["max_novel_terms"], "novel terms",
              ": " + ", ".join(repr(t["term"]) for t in novel[:5]) if novel else ""),
    ]


def _queue_novelty(ws: Workspace, terms: list[dict], actor: Actor) -> int:
    items = list(dict.fromkeys(i for t in terms for i in t["examples"]))
    with ws.store().atomic() as tx:
        log_reasons(tx, ws, actor, items, reason="novelty", scores=[1.0] * len(items),
                    details=[{"terms": [t["term"] for t in terms if i in t["examples"]]} for i in items])
    return len(items)
