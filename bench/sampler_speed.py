"""A sampler run over a pool of 1,000,000 unlabeled items with stored probabilities, picking 1,000.

Setup (not timed): a workspace whose store gets N prediction events and their `items` rows
written with SQL (ingesting a million events would only time the ingest). Each event has a
top-5 probability map over BANKING77 labels, drawn from a hash of its number (top label
between 0.5 and 0.99, so no item is queued for low confidence), one model version, and a
text of the sample log (cycled, with a numeric suffix after the first pass).

Timed: `sample(ws, budget=1000)` with the defaults (margin, k-means diversity, stored
probabilities): lock, read, score, cluster, queue and record. Baseline: DuckDB alone
computing the margin top-1,000 in one SQL query on the same store (no eligibility filter, no
diversity step, nothing written).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import pyarrow as pa

from bench import result
from feedback import init_workspace
from feedback.learn import sample

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"
POOL = 1_000_000
BUDGET = 1_000
TARGET_S = 10.0
_RAW = """
WITH latest AS (SELECT item_id, list_sort(CAST(json_extract(pred_probs, '$.*') AS DOUBLE[]), 'DESC') AS p FROM events
                WHERE seq IN (SELECT max(seq) FROM events WHERE type = 'prediction' GROUP BY item_id))
SELECT item_id, 1 - (p[1] - coalesce(p[2], 0)) AS margin FROM latest ORDER BY margin DESC LIMIT ?
"""


def run(scale: float) -> list[dict]:
    n, budget = max(1_000, round(POOL * scale)), max(10, round(BUDGET * scale))
    with tempfile.TemporaryDirectory(prefix="feedback-bench-") as tmp:
        ws = seed(Path(tmp) / "ws", n)
        start = time.perf_counter()
        ws.store().arrow(_RAW, [budget])
        raw = time.perf_counter() - start
        start = time.perf_counter()
        run_ = sample(ws, budget=budget)
        ours = time.perf_counter() - start
    return [
        result("sampler", f"sample --budget {budget:,} over {n:,} items (margin, kmeans)", ours, "s", baseline=raw,
               target=f"< {TARGET_S:g} s", ok=ours < TARGET_S),
        result("sampler", f"items queued by the run: {run_['picked']:,}", run_["picked"], "items",
               target=f"exactly {budget:,}", ok=run_["picked"] == budget),
    ]


def seed(root: Path, n: int):
    """A workspace with `n` unlabeled predicted items, written with SQL (see the module docstring)."""
    events = [json.loads(line) for line in (SAMPLE / "events.jsonl").read_text().splitlines()]
    texts = list(dict.fromkeys(e["input"]["text"] for e in events if e["type"] == "prediction"))
    labels = json.loads((SAMPLE / "taxonomy.json").read_text())
    ws = init_workspace(root, dataset="bench", labels=labels)
    table = pa.table({"k": range(len(texts)), "text": texts})
    with ws.store().atomic() as tx, tx.registered(table) as sample_texts:
        tx.execute(f"""
            CREATE TEMP TABLE seeded AS
            WITH u AS (
                SELECT i, printf('req-%07d', i) AS item_id, TIMESTAMP '2026-10-01' + to_seconds(i) AS ts,
                       s.text || CASE WHEN i >= ? THEN ' (' || (i // ?) || ')' ELSE '' END AS text,
                       0.5 + 0.49 * (hash(i, 1) % 1000000) / 1e6 AS p1,
                       0.3 + 0.69 * (hash(i, 2) % 1000000) / 1e6 AS f2, 0.5 * (hash(i, 3) % 1000000) / 1e6 AS f3
                FROM range(?) t(i) JOIN {sample_texts} s ON s.k = i % ?),
            p AS (SELECT *, (1 - p1) * f2 AS p2, (1 - p1) * (1 - f2) * f3 AS p3 FROM u)
            SELECT *, [(?::VARCHAR[])[1 + (i + k * 13) % ?] FOR k IN range(5)] AS names,
                   [p1, p2, p3, (1 - p1 - p2 - p3) / 2, (1 - p1 - p2 - p3) / 4] AS probs
            FROM p""", [len(texts), len(texts), n, len(texts), labels, len(labels)])
        tx.execute("INSERT INTO events (seq, event_id, type, item_id, ts, received_at, ingested_at, input_text, "
                   "pred_label, pred_score, pred_probs, model, model_version, source, schema_version) "
                   "SELECT i + 1, 'evt-' || i, 'prediction', item_id, ts, ts, ts, text, names[1], p1, "
                   "to_json(map(names, probs)), 'intent-clf', 'v1', 'bench', 1 FROM seeded")
        tx.execute("INSERT INTO items SELECT item_id, text, names[1], p1, 'v1', NULL, false, 'bench', ts, ts, "
                   "[]::VARCHAR[], 0.0 FROM seeded")
        tx.execute("INSERT INTO state_marks VALUES ('items', ?, now()::TIMESTAMP)", [n])
    return ws
