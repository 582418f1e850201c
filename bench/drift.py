"""Drift and novelty of 1,000,000 production events against a release of 100,000 examples.

Setup (not timed): the release bench's workspace of N labeled items (`bench.release.seed`), released
with `group_by = "exact"`, then 10 x N production predictions written with SQL into `events`: the
sample log's texts and labels cycled, every tenth text with a new product name, so that novel
vocabulary has something to find, and the label mix tilted. Timed: `monitor.drift` over the window
of those events (read, label mix, score shift, rates, words and 2-grams of a million texts) against
DuckDB scanning the same columns of the same events into Arrow, in the same run. Target: seconds,
not minutes (under 60 s), and the injected term found first.
"""

from __future__ import annotations

import tempfile
import time
from datetime import datetime
from pathlib import Path

from bench import result
from bench.release import seed
from feedback.monitor import drift
from feedback.release import create_release
from feedback.roles import Actor

EXAMPLES, PRODUCTION = 100_000, 1_000_000
START = datetime(2026, 11, 1)
TERM = "zorbapay"
TARGET_S = 60.0


def run(scale: float) -> list[dict]:
    n, events = max(1_000, round(EXAMPLES * scale)), max(10_000, round(PRODUCTION * scale))
    with tempfile.TemporaryDirectory(prefix="feedback-bench-drift-") as tmp:
        ws = seed(Path(tmp) / "ws", n)
        create_release(ws, by=Actor("bench", "admin"))
        produce(ws, events, offset=n)
        started = time.perf_counter()
        report = drift(ws, since=START)
        ours = time.perf_counter() - started
        started = time.perf_counter()
        scanned = ws.store().arrow("SELECT item_id, type, ts, pred_label, pred_score, model_version, input_text "
                                   "FROM events WHERE ts >= ?", [START]).num_rows
        scan = time.perf_counter() - started
    top = report["novel_terms"][0]["term"] if report["novel_terms"] else None
    return [
        result("drift", f"feedback drift, {events:,} events against a {n:,}-example release", ours, "s",
               baseline=scan, target=f"< {TARGET_S:g} s", ok=ours < TARGET_S),
        result("drift", f"DuckDB scan of the same {scanned:,} events into Arrow (the baseline)", scan, "s",
               target="informational", ok=True),
        result("drift", f"top novel term: {top!r} (injected: {TERM!r})", float(top == TERM), "found",
               target="the injected term first", ok=top == TERM),
    ]


def produce(ws, events: int, *, offset: int) -> None:
    """`events` production predictions after START, with TERM in every tenth text and a tilted label mix."""
    with ws.store().atomic() as tx:
        base = tx.value("SELECT max(seq) FROM events")
        tx.execute(f"""
            INSERT INTO events (seq, event_id, type, item_id, ts, received_at, ingested_at, input_text, pred_label,
                                pred_score, model, model_version, source, schema_version)
            SELECT ? + i, 'prod-' || i, 'prediction', 'prod-' || i, ? + to_seconds(i % 2000000),
                   ? + to_seconds(i % 2000000), now()::TIMESTAMP,
                   e.input_text || CASE WHEN i % 10 = 0 THEN ' with {TERM}' ELSE '' END,
                   CASE WHEN i % 4 = 0 THEN 'card_arrival' ELSE e.pred_label END, 0.5 + (i % 50) / 100.0,
                   'intent-clf', 'v1', 'bench', 1
            FROM range(?) t(i) JOIN (SELECT row_number() OVER () - 1 AS k, input_text, pred_label FROM events
                                      WHERE seq <= ?) e ON e.k = i % ?
            """, [base, START, START, events, offset, offset])
