"""Bulk decisions: `decide_many` (what `feedback label --file` runs) beside a raw INSERT of the same rows.

A workspace with 10,000 x scale ingested predictions (the sample's 77-intent taxonomy); every item gets one
decision through `feedback.review.decide_many`, with its checks (taxonomy, role, the item exists,
staleness) per row, one transaction per chunk of 5,000. Baseline: DuckDB alone inserting the same
number of decision rows (ids, item, label, reviewer, time) from Arrow into a table of a fresh file.
Target: 10,000 decisions in under 5 s.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow as pa

from bench import result
from feedback import ingest_files, init_workspace
from feedback.review import decide_many
from feedback.roles import Actor

ITEMS, TARGET_S = 10_000, 5.0
TAXONOMY = Path(__file__).resolve().parent.parent / "sample_data" / "taxonomy.json"


def run(scale: float) -> list[dict]:
    n = max(100, round(ITEMS * scale))
    labels = sorted(json.loads(TAXONOMY.read_text()))
    with tempfile.TemporaryDirectory(prefix="feedback-bench-bulk-") as tmp:
        root = Path(tmp)
        ws = init_workspace(root / "ws", dataset="banking77", labels=labels)
        events = root / "events.jsonl"
        events.write_text("".join(json.dumps({"type": "prediction", "item_id": f"r{i:06d}", "input": {"text": f"t {i}"},
                                              "prediction": {"label": labels[i % len(labels)], "score": 0.4}}) + "\n"
                                  for i in range(n)))
        ingest_files(ws, [events])
        rows = [(k, {"item_id": f"r{k:06d}", "label": labels[(k + 1) % len(labels)]}) for k in range(n)]
        start = time.perf_counter()
        done = decide_many(ws, Actor("reviewer", "reviewer"), rows)
        ours = time.perf_counter() - start
        raw = raw_insert(root / "raw.duckdb", n, labels)
    return [
        result("bulk decisions", f"decide_many, {n:,} decisions", ours, "s", baseline=raw,
               target=f"< {TARGET_S * n / ITEMS:g} s", ok=ours < TARGET_S * n / ITEMS),
        result("bulk decisions", "decisions recorded, errors", done["decided"], "rows",
               target=f"exactly {n:,}, 0 errors", ok=done["decided"] == n and not done["errors"]),
    ]


def raw_insert(path: Path, n: int, labels: list[str]) -> float:
    """DuckDB alone: connect, insert n decision rows from Arrow in one transaction, close."""
    table = pa.table({"decision_id": [f"d{i}" for i in range(n)], "item_id": [f"r{i:06d}" for i in range(n)],
                      "label": [labels[(i + 1) % len(labels)] for i in range(n)], "reviewer": ["reviewer"] * n})
    start = time.perf_counter()
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE decisions (decision_id VARCHAR PRIMARY KEY, item_id VARCHAR, label VARCHAR, "
                "reviewer VARCHAR, decided_at TIMESTAMP DEFAULT now())")
    con.register("incoming", table)
    con.execute("INSERT INTO decisions (decision_id, item_id, label, reviewer) SELECT * FROM incoming")
    con.close()
    return time.perf_counter() - start
