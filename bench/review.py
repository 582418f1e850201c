"""The review queue and label decisions at 10 million items.

Setup (timed, reported, not a target): a workspace with the BANKING77 taxonomy, whose store gets
10 million items written straight into `events` with SQL (one prediction each, a user correction for
about 10%, an error for about 2%), then one library call that brings `items` up to date
(`sync_items`), as the first call after a big ingest does.

queue page: `review.queue_page` with several reviewer filters, median of several calls, against the very
SELECT the library ran, executed on a DuckDB connection kept open (same data, same run).
decision:   `review.decide` on different items, against a single-row INSERT into `decisions` on an
open connection.
open+close: a store connection on the full store (part of every library call), against the same
on an empty store.
after ingest: the first queue page after `ingest_spool` of 1,000 new events (the page pays the
incremental `sync_items`), against the raw SELECT; the ingest itself is reported beside it.
"""

from __future__ import annotations

import json
import re
import statistics
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import duckdb

from bench import result
from bench.capture_ingest import spool_events
from feedback import ingest_spool, init_workspace
from feedback.roles import Actor
from feedback.store import Store, Tx
from feedback.review import QueueFilter, decide, queue_page

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"
ITEMS = 10_000_000
QUEUE_TARGET_MS = 100
DECIDE_TARGET_MS = 50
RUNS = 7  # timed calls per queue page (after one untimed warm-up)
DECISIONS = 20  # different items decided
OPENS = 20
INGESTED = 1_000  # events per small ingest, a few seconds of production traffic
INGESTS = 3
WORDS_PER_TEXT = (5, 17)  # BANKING77 requests have about 11 words
FILTERS = [  # (what a reviewer does, filter, keyword arguments of queue)
    ("corrections of model v2", QueueFilter(reason="correction", model_version="v2"), {}),
    ("status new, predicted card_arrival", QueueFilter(status="new", pred_label="card_arrival"), {}),
    ("text search 'refund'", QueueFilter(text="refund"), {}),
    ("whole queue, page 101 (offset 5,000)", QueueFilter(), {"offset": 5000}),
]


def run(scale: float) -> list[dict]:
    n = max(1_000, round(ITEMS * scale))
    labels = json.loads((SAMPLE / "taxonomy.json").read_text())
    with tempfile.TemporaryDirectory(prefix="feedback-bench-") as tmp:
        tmp = Path(tmp)
        ws = init_workspace(tmp / "ws", dataset="bench", labels=labels)
        empty = init_workspace(tmp / "empty", dataset="bench", labels=labels)
        rows = setup(ws, n, labels)
        rows += [timed_page(ws, n, what, flt, kwargs) for what, flt, kwargs in FILTERS]
        rows.append(decision(ws, n, labels))
        rows.append(open_close(ws, empty, n))
        rows += after_ingest(ws, n)
        return rows


def setup(ws, n: int, labels: list[str]) -> list[dict]:
    start = time.perf_counter()
    events = generate(ws.path("store"), n, labels)
    generated = time.perf_counter() - start
    start = time.perf_counter()
    queue_page(ws, limit=1)
    synced = time.perf_counter() - start
    return [
        result("review queue", f"setup: {events:,} events for {n:,} items written with SQL", generated, "s",
               target="informational", ok=True),
        result("review queue", f"first sync of items after the bulk load ({n:,} items)", synced, "s",
               target="informational", ok=True),
    ]


def generate(path: Path, n: int, labels: list[str]) -> int:
    """Write `n` items' events into the store file; return how many events."""
    texts = {json.loads(line).get("input", {}).get("text") for line in (SAMPLE / "events.jsonl").open()}
    vocabulary = sorted({w for t in texts if t for w in re.findall(r"[a-z']+", t.lower())})
    low, high = WORDS_PER_TEXT
    words = ", ".join(f"CASE WHEN {j} < {low} + hash(i, 'k') % {high - low + 1} "
                      f"THEN words[1 + (hash(i, {j}) % {len(vocabulary)})::INT] END" for j in range(high))
    con = duckdb.connect(str(path))
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(
            f"""
            INSERT INTO events
            WITH consts AS (SELECT $words::VARCHAR[] AS words, $labels::VARCHAR[] AS labels),
            item AS (
                SELECT i, printf('req-%09d', i) AS item_id,
                       TIMESTAMP '2026-01-01' + to_seconds(i * 25_000_000 // $n) AS ts,
                       concat_ws(' ', {words}) AS text,
                       labels[1 + (hash(i, 'p') % 77)::INT] AS pred_label,
                       labels[1 + ((hash(i, 'p') + CASE WHEN hash(i, 'a') % 10 = 0 THEN 0  -- nine in ten corrections
                                    ELSE 1 + hash(i, 'q') % 76 END) % 77)::INT] AS corr_label,  -- disagree
                       pow((hash(i, 's') % 1_000_000) / 1e6, 0.4) AS score,
                       hash(i, 'c') % 100 < 10 AS corrected,
                       hash(i, 'e') % 100 < 2 AS failed,
                       printf('u%04d', hash(i, 'u') % 300) AS user_id,
                       printf('spool:seg-%06d.jsonl', i // 20_000) AS segment
                FROM range($n) t(i), consts
            )
            SELECT 3 * i + k AS seq, printf('evt-%011d', 3 * i + k), kind, item_id,
                   ts + to_seconds(CASE k WHEN 1 THEN 0 WHEN 2 THEN 60 + hash(i, 't') % 7200 ELSE 1 END),
                   ts + to_seconds(k + 1), ts + to_seconds(600),
                   CASE WHEN kind <> 'correction' THEN text END,
                   CASE WHEN kind <> 'correction' THEN json_object('text', text) END,
                   CASE WHEN kind = 'prediction' THEN pred_label END,
                   CASE WHEN kind = 'prediction' THEN score END,
                   CASE WHEN kind = 'prediction' THEN json_object(pred_label, round(score, 4)) END,
                   CASE WHEN kind = 'prediction' THEN 'intent-clf' END,
                   CASE WHEN kind = 'prediction' THEN CASE WHEN i < 0.4 * $n THEN 'v1' ELSE 'v2' END END,
                   CASE WHEN kind = 'correction' THEN corr_label END,
                   CASE WHEN kind = 'correction' THEN user_id END,
                   NULL,
                   CASE WHEN kind = 'error' THEN 'timeout' END,
                   CASE WHEN kind = 'error' THEN 'model intent-clf timed out after 2 s' END,
                   json_object('user_id', user_id,
                               'channel', CASE hash(i, 'h') % 3 WHEN 0 THEN 'app' WHEN 1 THEN 'web' ELSE 'chat' END,
                               'source', CASE WHEN hash(i, 'b') % 4 = 0 THEN 'banking77:test'
                                              ELSE 'banking77:train' END),
                   segment, md5(item_id || kind), 1
            FROM item, (VALUES (1, 'prediction'), (2, 'correction'), (3, 'error')) AS kinds(k, kind)
            WHERE k = 1 OR (k = 2 AND corrected) OR (k = 3 AND failed)
            """,
            {"n": n, "words": vocabulary, "labels": labels},
        )
        con.execute("CHECKPOINT")
        return con.execute("SELECT count(*) FROM events").fetchone()[0]
    finally:
        con.close()


def timed_page(ws, n: int, what: str, flt: QueueFilter, kwargs: dict) -> dict:
    with recorded() as statements:
        queue_page(ws, flt, limit=50, **kwargs)  # warm-up, and the SELECT the library runs
    ours = median_ms(lambda: queue_page(ws, flt, limit=50, **kwargs), RUNS)
    return result("review queue", f"queue page of 50, {what}, {n:,} items", ours, "ms",
                  baseline=raw_select_ms(ws, *statements[-1]), target=f"< {QUEUE_TARGET_MS} ms",
                  ok=ours < QUEUE_TARGET_MS)


def raw_select_ms(ws, sql: str, params: list) -> float:
    """Median time of a SELECT on a DuckDB connection kept open (after one warm-up run)."""
    with open_connection(ws) as con:
        con.execute(sql, params).fetchall()
        return median_ms(lambda: con.execute(sql, params).fetchall(), RUNS)


def decision(ws, n: int, labels: list[str]) -> dict:
    actor = Actor("bench-reviewer", "reviewer")
    items = [r["item_id"] for r in queue_page(ws, QueueFilter(reason="correction"), limit=2 * DECISIONS)]
    ours = statistics.median(timed_ms(lambda: decide(ws, actor, item_id, labels[k % len(labels)]))
                             for k, item_id in enumerate(items[:DECISIONS]))
    with open_connection(ws) as con:
        insert = ("INSERT INTO decisions VALUES (?, ?, 'label', ?, 'bench-raw', 'reviewer', now()::TIMESTAMP, "
                  "NULL, NULL, NULL, NULL)")
        raw = statistics.median(
            timed_ms(lambda: con.execute(insert, [f"d-raw-{k}", item_id, labels[k % len(labels)]]))
            for k, item_id in enumerate(items[DECISIONS:]))
    return result("review queue", f"decide: one label decision, {n:,} items", ours, "ms", baseline=raw,
                  target=f"< {DECIDE_TARGET_MS} ms", ok=ours < DECIDE_TARGET_MS)


def open_close(ws, empty, n: int) -> dict:
    def open_and_close(store: Store):
        with store.connect():
            pass

    full, blank = Store(ws.path("store")), Store(empty.path("store"))
    ours = median_ms(lambda: open_and_close(full), OPENS)
    raw = median_ms(lambda: open_and_close(blank), OPENS)
    return result("review queue", f"store connection open + close, {n:,} items (baseline: empty store)", ours, "ms",
                  baseline=raw, target="informational", ok=True)


def after_ingest(ws, n: int) -> list[dict]:
    lines = (SAMPLE / "events.jsonl").read_bytes().splitlines()
    events = [{k: v for k, v in json.loads(line).items() if k != "event_id"} for line in lines]
    flt = QueueFilter(reason="correction", model_version="v2")
    ingests, pages = [], []
    for _ in range(INGESTS):
        spool_events(ws, events, INGESTED)
        ingests.append(timed_ms(lambda: ingest_spool(ws)))
        with recorded() as statements:
            pages.append(timed_ms(lambda: queue_page(ws, flt, limit=50)))
    return [
        result("review queue", f"ingest_spool of {INGESTED:,} events into the store of {n:,} items",
               statistics.median(ingests), "ms", target="informational", ok=True),
        result("review queue", f"queue page of 50, corrections of model v2, {n:,} items, first call after that ingest",
               statistics.median(pages), "ms", baseline=raw_select_ms(ws, *statements[-1]),
               target=f"< {QUEUE_TARGET_MS} ms", ok=statistics.median(pages) < QUEUE_TARGET_MS),
    ]


@contextmanager
def recorded(unit=Tx):
    """Record the (sql, params) of every `rows` call of a unit of work (`Tx`, or `PgTx`) made inside the block."""
    statements, original = [], unit.rows

    def rows(self, sql, params=None):
        statements.append((sql, params))
        return original(self, sql, params)

    unit.rows = rows
    try:
        yield statements
    finally:
        unit.rows = original


@contextmanager
def open_connection(ws):
    """A raw DuckDB connection to the store, configured like the library's; closed at the end of the block
    (while it is open, the library's connections in this process would share its database instance)."""
    con = duckdb.connect(str(ws.path("store")))
    con.execute("SET TimeZone = 'UTC'")
    try:
        yield con
    finally:
        con.close()


def timed_ms(call) -> float:
    start = time.perf_counter()
    call()
    return (time.perf_counter() - start) * 1000


def median_ms(call, runs: int) -> float:
    return statistics.median(timed_ms(call) for _ in range(runs))
