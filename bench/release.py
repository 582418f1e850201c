"""A release of N labeled examples against DuckDB's own `COPY (SELECT ...) TO` Parquet of the same rows.

Setup (not timed): a workspace whose store holds N labeled items, inserted with SQL straight
into `events`, `items`, `reviews` and `decisions` in the shape the review flow leaves them
(one prediction event and one reviewer decision per item), because labeling a million items
through the review API would take hours. Texts are the sample log's, cycled with a numeric
suffix after the first pass so that every text is distinct; labels are the sample's
predicted labels. The store's items watermark is set, so the release does not rebuild `items`.

Each side runs in a fresh subprocess that reports its wall time and peak RSS
(`ru_maxrss`): the release (`create_release` with `group_by = "exact"`, since near-duplicate
grouping is capped at `near_duplicate_max` examples) and DuckDB's COPY of id, text and label of
the labeled items to one Parquet file, with zstd like the release's files. COPY runs before and
after the release; the baseline is the mean of the two.

The floor row times what no release can skip, done by DuckDB alone: that COPY of the data,
then a COPY of the index's columns with the MD5 row hash (no sorting, splits, digests or
gates). The target is the release within 2x of the floor, measured in the same run; the ratio
to the COPY of the data alone is shown too.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa

from bench import result
from feedback import init_workspace
from feedback.release.select import ROW_MD5
from feedback.roles import Actor
from feedback.workspace import Workspace

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = 1_000_000
TARGET = 2.0  # at most this many times the floor: DuckDB's COPY of the data plus the index
MEMORY_MB = 1024
_LABELED = "FROM items i JOIN reviews r USING (item_id) WHERE r.status = 'labeled'"
_COPY = "COPY (SELECT {columns} " + _LABELED + ") TO '{path}' (FORMAT parquet, COMPRESSION zstd)"
_DATA = "i.item_id AS id, i.text, r.current_label AS label"
_INDEX = f"i.item_id AS id, r.current_label AS label, {ROW_MD5} AS row_hash, r.label_decision_id, r.label_reviewer"


def run(scale: float) -> list[dict]:
    n = max(1_000, round(EXAMPLES * scale))
    with tempfile.TemporaryDirectory(prefix="feedback-bench-") as tmp:
        root = Path(tmp) / "ws"
        seed(root, n)
        before = child("copy", root)
        ours = child("release", root)
        floor = child("floor", root)
        after = child("copy", root)
    copy_s = (before["seconds"] + after["seconds"]) / 2
    copy_mb = max(before["peak_mb"], after["peak_mb"])
    return [
        result("release", f"create_release, {n:,} examples (group_by exact), against the floor", ours["seconds"], "s",
               baseline=floor["seconds"], target=f"<= {TARGET:g}x the floor",
               ok=ours["seconds"] <= TARGET * floor["seconds"]),
        result("release", "floor: COPY of the data, then COPY of the index (id, label, MD5 row hash, decision, "
               "reviewer)", floor["seconds"], "s", baseline=copy_s, target="informational", ok=True),
        result("release", f"create_release, {n:,} examples, against DuckDB's COPY of the data alone", ours["seconds"],
               "s", baseline=copy_s, target="informational", ok=True),
        result("release", "peak memory of the release process", ours["peak_mb"], "MB", baseline=copy_mb,
               target=f"< {MEMORY_MB:,} MB", ok=ours["peak_mb"] < MEMORY_MB),
        result("release", f"examples released: {ours['examples']:,}", ours["examples"], "examples",
               target=f"exactly {n:,}", ok=ours["examples"] == n),
    ]


def seed(root: Path, n: int) -> Workspace:
    """A workspace with `n` labeled items, written with SQL (see the module docstring)."""
    lines = (REPO / "sample_data" / "events.jsonl").read_text().splitlines()
    samples = [json.loads(line) for line in lines]
    base = {e["input"]["text"]: e["prediction"]["label"] for e in samples if e["type"] == "prediction"}
    labels = json.loads((REPO / "sample_data" / "taxonomy.json").read_text())
    ws = init_workspace(root, dataset="bench", labels=labels)
    (root / "feedback.toml").write_text((root / "feedback.toml").read_text() + '\n[release]\ngroup_by = "exact"\n')
    table = pa.table({"k": range(len(base)), "text": list(base), "label": list(base.values())})
    with ws.store().atomic() as tx, tx.registered(table) as samples_table:
        tx.execute(f"""
            CREATE TEMP TABLE seeded AS
            SELECT i, printf('req-%07d', i) AS item_id,
                   s.text || CASE WHEN i >= ? THEN ' (' || (i // ?) || ')' ELSE '' END AS text, s.label,
                   TIMESTAMP '2026-10-01' + to_seconds(i) AS ts, 'r' || (i % 7) AS reviewer
            FROM range(?) t(i) JOIN {samples_table} s ON s.k = i % ?""", [len(base), len(base), n, len(base)])
        tx.execute("INSERT INTO events (seq, event_id, type, item_id, ts, received_at, ingested_at, input_text, "
                   "pred_label, pred_score, model, model_version, source, schema_version) "
                   "SELECT i + 1, 'evt-' || i, 'prediction', item_id, ts, ts, ts, text, label, 0.9, 'intent-clf', "
                   "'v1', 'bench', 1 FROM seeded")
        tx.execute("INSERT INTO items (item_id, text, pred_label, pred_score, model_version, corr_label, has_error, "
                   "source, first_ts, last_ts, reasons, priority) SELECT item_id, text, label, 0.9, 'v1', NULL, false, "
                   "'bench', ts, ts, []::VARCHAR[], 0.0 FROM seeded")
        tx.execute("INSERT INTO decisions SELECT 'd-' || i, item_id, 'label', label, reviewer, 'reviewer', "
                   "ts + INTERVAL 1 HOUR, NULL, NULL, NULL, NULL FROM seeded")
        tx.execute("INSERT INTO reviews SELECT item_id, 'labeled', label, 'd-' || i, reviewer, [reviewer], "
                   "'d-' || i, ts + INTERVAL 1 HOUR, NULL, NULL FROM seeded")
        tx.execute("INSERT INTO state_marks VALUES ('items', ?, now()::TIMESTAMP)", [n])
    return ws


def child(kind: str, root: Path) -> dict:
    """Run one side in a fresh process; its wall time (without imports) and peak RSS."""
    out = subprocess.run([sys.executable, "-m", "bench.release", kind, str(root)], cwd=REPO, check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout)


def _side(kind: str, root: str) -> dict:
    import resource

    import pandas  # noqa: F401  (pyarrow imports it on first use; imports are not timed)

    from feedback.release import create_release

    ws = Workspace(root)
    ws.store()  # migrations checked before the clock starts
    start = time.perf_counter()
    if kind == "release":
        examples = create_release(ws, by=Actor("bench", "admin"))["examples"]
    else:
        with ws.store().connect() as tx:
            tx.execute(_COPY.format(columns=_DATA, path=Path(root) / "copy.parquet"))
            if kind == "floor":
                tx.execute(_COPY.format(columns=_INDEX, path=Path(root) / "index.parquet"))
        examples = None
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "examples": examples,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


if __name__ == "__main__":
    print(json.dumps(_side(*sys.argv[1:])))
